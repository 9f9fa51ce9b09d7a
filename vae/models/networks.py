"""Encoder and decoder networks, sized from the image shape.

Encoders map x: [batch, H, W, C] to (mean, log_var): [batch, latent_dim] each.
Decoders map z: [batch, d] to likelihood parameters: [batch, H, W, P], where the decoder's
`image_shape` is (H, W, P) and P is the likelihood's parameter channels (e.g. C for Bernoulli
logits, 30 for a 10-component logistic mixture on RGB), which may differ from the data's C.
Any linen module with these signatures can replace them.

Families (see `build_networks` for how a config's `hidden`/`channels`/`kernel_size` map to each):
  mlp      MLPEncoder / MLPDecoder: dense layers.
  conv     ConvEncoder / ConvDecoder: stride-2 convolutions, mirrored transposed convolutions.
  burgess  BurgessEncoder / BurgessDecoder: the 64x64 conv net of Burgess et al. 2018 as in
           disentanglement_lib (`conv_encoder` / `deconv_decoder`).
  resnet   ResNetEncoder / ResNetDecoder: a small pre-activation residual conv net (GroupNorm,
           no batch norm), nearest-neighbour upsampling in the decoder.
All are sized from the image shape (any H, W): spatial sizes halve with ceil, and decoders crop
where their upsampling overshoots.

Transposed convolutions (ConvDecoder, BurgessDecoder) run through `MatmulConvTranspose` on CPU
and GPU: the same layer as `nn.ConvTranspose` (same parameters, names, shapes and function)
computed as one matrix product plus a pixel shuffle instead of XLA's input-dilated convolution,
whose kernel gradient XLA:CPU computes 4-10x slower (see `conv_transpose_same` and
benchmarks/NOTES.md). The strided convolutions of ConvEncoder and BurgessEncoder run through
`MatmulConv` there: XLA's forward and kernel gradient, with the input gradient (itself a
transposed convolution) computed the same way. On an H100 the whole train step of these nets ran
1.2-8x faster this way than with XLA's convolutions. `conv_impl='xla'` selects plain `nn.Conv` /
`nn.ConvTranspose`.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class MLPEncoder(nn.Module):
    """Flatten, dense layers with `hidden` units, then a dense head for mean and log-variance."""

    latent_dim: int
    hidden: Sequence[int] = (512, 256)
    activation: Callable = nn.relu

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = x.reshape(x.shape[0], -1)
        for width in self.hidden:
            h = self.activation(nn.Dense(width)(h))
        mean = nn.Dense(self.latent_dim, name="mean")(h)
        log_var = nn.Dense(self.latent_dim, name="log_var")(h)
        return mean, log_var


class MLPDecoder(nn.Module):
    """Dense layers with `hidden` units (the encoder's, reversed), then one output per pixel."""

    image_shape: tuple[int, int, int]
    hidden: Sequence[int] = (256, 512)
    activation: Callable = nn.relu

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        h = z
        for width in self.hidden:
            h = self.activation(nn.Dense(width)(h))
        out = nn.Dense(math.prod(self.image_shape), name="out")(h)
        return out.reshape(z.shape[0], *self.image_shape)


def conv_output_size(size: int, num_layers: int) -> int:
    """Spatial size after `num_layers` stride-2 'SAME' convolutions: ceil(size / 2) each time."""
    for _ in range(num_layers):
        size = -(-size // 2)
    return size


CONV_IMPLS = ("auto", "xla", "matmul")


def resolve_conv_impl(impl: str) -> str:
    """'auto' -> 'matmul' on the CPU and GPU backends (where it was measured faster), 'xla' on others."""
    if impl not in CONV_IMPLS:
        raise ValueError(f"unknown conv_impl {impl!r}; allowed: {', '.join(CONV_IMPLS)}")
    if impl == "auto":
        return "matmul" if jax.default_backend() in ("cpu", "gpu") else "xla"
    return impl


def _pair(v) -> tuple:
    """A kernel size, stride or dilation given as an int or a sequence, as a tuple."""
    return (v, v) if isinstance(v, int) else tuple(v)


def _no_dilation(d) -> bool:
    return d is None or all(v == 1 for v in _pair(d))


def _same_strided_2d(layer) -> bool:
    """What both matmul layers need of an nn.Conv / nn.ConvTranspose: a 2-D kernel, 'SAME' padding,
    every stride > 1, no mask and no kernel dilation."""
    ks, strides = _pair(layer.kernel_size), _pair(layer.strides if layer.strides is not None else 1)
    return (len(ks) == 2 and isinstance(layer.padding, str) and layer.padding.upper() == "SAME"
            and layer.mask is None and _no_dilation(layer.kernel_dilation) and all(st > 1 for st in strides))


def _same_transpose_pad_before(k: int, s: int) -> int:
    """pad_a of `lax.conv_transpose(..., padding='SAME')` for kernel k, stride s."""
    return k - 1 if s > k - 1 else -(-(k + s - 2) // 2)


def conv_transpose_same(x: jax.Array, kernel: jax.Array, strides: Sequence[int], *, transpose_kernel: bool = False,
                        method: str = "auto", precision=None) -> jax.Array:
    """`lax.conv_transpose(x, kernel, strides, 'SAME', transpose_kernel=...)` (NHWC, HWIO) without
    an input-dilated convolution.

    x: [B, H, W, Ci]; kernel: [kh, kw, Ci, Co] ([kh, kw, Co, Ci] with transpose_kernel=True, as in
    `nn.ConvTranspose`). Returns [B, s_h * H, s_w * W, Co], the same function as lax.

    Per spatial axis, lax computes out[o] = sum_t x[m] K[t] over s*m + pad_a - t = o. With the
    kernel flipped (K'[t'] = K[k - 1 - t']) and the output shifted by c = k - 1 - pad_a this is
    out[o - c] += x[m] K'[t'] at o = s*m + t'. Writing t' = s*q + r (q < a = ceil(k / s), taps
    padded with zeros to s*a) puts every tap on output row s*(m + q) + r, so in space-to-depth
    form (row M = m + q, sub-pixel r) the layer is a sum of a*a shifted copies of one product.
    Two ways to compute it, the same arithmetic in a different order:

      'col2im'  y = x @ K' ([B*H*W, Ci] x [Ci, kh*kw*Co]), then the a_h*a_w shifted copies of y
                are added (overlap-add), then depth-to-space; PyTorch's CPU algorithm.
      'subpixel' an a_h x a_w stride-1 convolution of x (zero-padded by a-1) to s_h*s_w*Co
                channels, as im2col patches [B*(H+a_h-1)*(W+a_w-1), a_h*a_w*Ci] @ [.., s_h*s_w*Co],
                then depth-to-space (Shi et al. 2016's sub-pixel convolution).
      'auto'    the one with the smaller intermediate arrays (memory traffic decides on CPU):
                col2im moves H*W*kh*kw*Co floats per image, subpixel (H+a_h-1)*(W+a_w-1)*
                (a_h*a_w*Ci + s_h*s_w*Co).

    Both differentiate into plain matrix products, pads and slices (no dilated convolutions).
    """
    if transpose_kernel:  # lax flips the spatial axes and swaps in/out; flipping again cancels
        flipped = jnp.swapaxes(kernel, 2, 3)
    else:
        flipped = kernel[::-1, ::-1]
    b, h, w, ci = x.shape
    kh, kw, _, co = flipped.shape
    sh, sw = (int(s) for s in strides)
    ah, aw = -(-kh // sh), -(-kw // sw)
    # K'[q_h, r_h, q_w, r_w, ci, co], taps beyond the kernel zero
    kp = jnp.pad(flipped, ((0, sh * ah - kh), (0, sw * aw - kw), (0, 0), (0, 0))).reshape(ah, sh, aw, sw, ci, co)
    eh, ew = h + ah - 1, w + aw - 1  # space-to-depth rows/cols of the shifted output
    if method == "auto":
        col2im = h * w * kh * kw * co
        subpixel = eh * ew * (ah * aw * ci + sh * sw * co)
        method = "col2im" if col2im <= subpixel else "subpixel"
    if method == "col2im":
        kmat = kp.transpose(4, 0, 2, 1, 3, 5).reshape(ci, ah * aw * sh * sw * co)  # [ci, (q_h, q_w, r_h, r_w, co)]
        y = jnp.dot(x.reshape(b * h * w, ci), kmat, precision=precision).reshape(b, h, w, ah, aw, sh, sw, co)
        ext = None
        for qh in range(ah):
            for qw in range(aw):
                part = jnp.pad(y[:, :, :, qh, qw], ((0, 0), (qh, ah - 1 - qh), (qw, aw - 1 - qw), (0, 0), (0, 0), (0, 0)))
                ext = part if ext is None else ext + part
    elif method == "subpixel":
        # ext[M, r] = sum_q x[M - q] K'[s q + r]: window u = a - 1 - q over x padded by a - 1
        kmat = kp[::-1, :, ::-1].transpose(0, 2, 4, 1, 3, 5).reshape(ah * aw * ci, sh * sw * co)
        xp = jnp.pad(x, ((0, 0), (ah - 1, ah - 1), (aw - 1, aw - 1), (0, 0)))
        if ah == aw == 1:
            patches = xp.reshape(b * eh * ew, ci)
        else:
            patches = jnp.stack([xp[:, i:i + eh, j:j + ew, :] for i in range(ah) for j in range(aw)], axis=3)
            patches = patches.reshape(b * eh * ew, ah * aw * ci)
        ext = jnp.dot(patches, kmat, precision=precision).reshape(b, eh, ew, sh, sw, co)
    else:
        raise ValueError(f"unknown method {method!r}; allowed: auto, col2im, subpixel")
    ext = ext.transpose(0, 1, 3, 2, 4, 5).reshape(b, sh * eh, sw * ew, co)  # depth-to-space
    out = ext
    for axis, k, s, n in ((1, kh, sh, h), (2, kw, sw, w)):  # out[o] = ext[o + c], o < s * n
        start = k - 1 - _same_transpose_pad_before(k, s)
        short = max(start + s * n - out.shape[axis], 0)
        if start < 0 or short:
            pads = [(0, 0)] * 4
            pads[axis] = (max(-start, 0), short)
            out = jnp.pad(out, pads)
            start = max(start, 0)
        out = jax.lax.slice_in_dim(out, start, start + s * n, axis=axis)
    return out


class MatmulConvTranspose(nn.ConvTranspose):
    """`nn.ConvTranspose` with the same parameters (names, shapes, initialisation, meaning) and the
    same function, computed by `conv_transpose_same` (a matrix product and a pixel shuffle).

    Used for 2-D 'SAME' layers with stride > 1 and no kernel dilation or mask; anything else
    falls back to `nn.ConvTranspose`. `method`: see `conv_transpose_same`. Name instances
    explicitly (e.g. name='ConvTranspose_0') so that parameter paths match nn.ConvTranspose's.
    """

    method: str = "auto"

    def _fast_path(self, inputs) -> bool:
        return _same_strided_2d(self) and inputs.ndim >= 3

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        if not self._fast_path(inputs):
            return super().__call__(inputs)
        kernel_size, strides = _pair(self.kernel_size), _pair(self.strides)
        batch_shape = inputs.shape[:-3]
        if inputs.ndim != 4:  # flatten (or add) batch axes, as nn.ConvTranspose does
            inputs = inputs.reshape((-1,) + inputs.shape[-3:])
        in_features = inputs.shape[-1]
        kernel_shape = kernel_size + ((self.features, in_features) if self.transpose_kernel
                                      else (in_features, self.features))
        kernel = self.param("kernel", self.kernel_init, kernel_shape, self.param_dtype)
        bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
        inputs, kernel, bias = self.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
        y = conv_transpose_same(inputs, kernel, strides, transpose_kernel=self.transpose_kernel, method=self.method,
                                precision=self.precision)
        if bias is not None:
            y = y + bias.reshape((1,) * (y.ndim - 1) + (-1,))
        return y.reshape(batch_shape + y.shape[1:])


_CONV_DIMS = ("NHWC", "HWIO", "NHWC")


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def strided_conv_same(x: jax.Array, kernel: jax.Array, strides: tuple[int, int]) -> jax.Array:
    """`lax.conv_general_dilated(x, kernel, strides, 'SAME')` (NHWC, HWIO) whose input gradient
    is `conv_transpose_same` (matrix products and a pixel shuffle) instead of XLA's input-dilated
    convolution: on 2 CPU cores that gradient took 32 ms of the 36 ms fwd+bwd of the Burgess
    encoder's 32x32x32 -> 16x16x32 layer. Forward and kernel gradient are XLA's.

    Needs H, W divisible by the strides (then the transposed convolution's 'SAME' padding is
    exactly the gradient's). strides: a tuple (static)."""
    return _xla_conv_same(x, kernel, strides)


def _xla_conv_same(x, kernel, strides):
    return jax.lax.conv_general_dilated(x, kernel, strides, "SAME", dimension_numbers=_CONV_DIMS)


def _strided_conv_fwd(x, kernel, strides):
    return strided_conv_same(x, kernel, strides), (x, kernel)


def _strided_conv_bwd(strides, res, g):
    x, kernel = res
    dx = conv_transpose_same(g, kernel, strides, transpose_kernel=True)
    _, kernel_vjp = jax.vjp(lambda k: _xla_conv_same(x, k, strides), kernel)
    (dk,) = kernel_vjp(g)
    return dx, dk


strided_conv_same.defvjp(_strided_conv_fwd, _strided_conv_bwd)


class MatmulConv(nn.Conv):
    """`nn.Conv` with the same parameters and function whose input gradient avoids XLA's slow
    input-dilated convolution on CPU (see `strided_conv_same`). Used for 2-D 'SAME' layers with
    stride > 1 on inputs whose size the stride divides, no dilation, groups or mask; anything
    else falls back to `nn.Conv`'s own code. Name instances as nn.Conv would be named."""

    def _fast_path(self, inputs) -> bool:
        if not (_same_strided_2d(self) and inputs.ndim == 4 and self.feature_group_count == 1
                and _no_dilation(self.input_dilation)):
            return False
        strides = _pair(self.strides)
        return inputs.shape[1] % strides[0] == 0 and inputs.shape[2] % strides[1] == 0

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        if not self._fast_path(inputs):
            return super().__call__(inputs)
        kernel_size, strides = _pair(self.kernel_size), _pair(self.strides)
        kernel = self.param("kernel", self.kernel_init, kernel_size + (inputs.shape[-1], self.features),
                            self.param_dtype)
        bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
        inputs, kernel, bias = self.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
        y = strided_conv_same(inputs, kernel, tuple(int(v) for v in strides))
        return y if bias is None else y + bias.reshape((1, 1, 1, -1))


def conv_layer(impl: str, features: int, kernel_size, strides, name: str | None = None, **kwargs) -> nn.Module:
    """A 'SAME' convolution: nn.Conv ('xla') or MatmulConv ('matmul'); 'auto' picks per backend
    (see resolve_conv_impl). Same parameters either way."""
    cls = MatmulConv if resolve_conv_impl(impl) == "matmul" else nn.Conv
    return cls(features, kernel_size, strides=strides, padding="SAME", name=name, **kwargs)


def conv_transpose_layer(impl: str, features: int, kernel_size, strides, name: str, **kwargs) -> nn.Module:
    """A 'SAME' transposed convolution: nn.ConvTranspose ('xla') or MatmulConvTranspose
    ('matmul'); 'auto' picks per backend (see resolve_conv_impl). Same parameters either way."""
    cls = MatmulConvTranspose if resolve_conv_impl(impl) == "matmul" else nn.ConvTranspose
    return cls(features, kernel_size, strides=strides, padding="SAME", name=name, **kwargs)


class ConvEncoder(nn.Module):
    """Stride-2 convolutions with `channels` filters, then a dense head for mean and log-variance."""

    latent_dim: int
    channels: Sequence[int] = (32, 64)
    kernel_size: int = 4
    hidden: int | None = 256
    activation: Callable = nn.relu
    conv_impl: str = "auto"  # strided convolutions: 'auto' | 'matmul' | 'xla' (see conv_layer)

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = x
        k = (self.kernel_size, self.kernel_size)
        for i, c in enumerate(self.channels):  # named as nn.Conv auto-names them
            h = self.activation(conv_layer(self.conv_impl, c, k, (2, 2), name=f"Conv_{i}")(h))
        h = h.reshape(h.shape[0], -1)
        if self.hidden:
            h = self.activation(nn.Dense(self.hidden)(h))
        mean = nn.Dense(self.latent_dim, name="mean")(h)
        log_var = nn.Dense(self.latent_dim, name="log_var")(h)
        return mean, log_var


class ConvDecoder(nn.Module):
    """Mirror of ConvEncoder: dense to the encoder's last feature map, stride-2 transposed
    convolutions back up, cropped to the image size (so any H, W works, e.g. 28 or 64)."""

    image_shape: tuple[int, int, int]
    channels: Sequence[int] = (64, 32)
    kernel_size: int = 4
    hidden: int | None = 256
    activation: Callable = nn.relu
    conv_impl: str = "auto"  # transposed convolutions: 'auto' | 'matmul' | 'xla' (see conv_transpose_layer)

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        height, width, out_channels = self.image_shape
        n = len(self.channels)
        h0, w0 = conv_output_size(height, n), conv_output_size(width, n)
        k = (self.kernel_size, self.kernel_size)
        h = z
        if self.hidden:
            h = self.activation(nn.Dense(self.hidden)(h))
        h = self.activation(nn.Dense(h0 * w0 * self.channels[0])(h))
        h = h.reshape(z.shape[0], h0, w0, self.channels[0])
        for i, c in enumerate(self.channels[1:]):  # named as nn.ConvTranspose auto-names them
            h = self.activation(conv_transpose_layer(self.conv_impl, c, k, (2, 2), name=f"ConvTranspose_{i}")(h))
        h = conv_transpose_layer(self.conv_impl, out_channels, k, (2, 2), name="out")(h)
        return h[:, :height, :width, :]


ACTIVATIONS: dict[str, Callable] = {
    "relu": nn.relu, "tanh": jnp.tanh, "elu": nn.elu, "leaky_relu": nn.leaky_relu, "silu": nn.silu,
    "swish": nn.swish, "gelu": nn.gelu,
}


def get_activation(activation: str | Callable) -> Callable:
    """An activation function from its name (a key of ACTIVATIONS) or the function itself."""
    if callable(activation):
        return activation
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; allowed: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[activation]


# --------------------------------------------------------------------------------------------
# Burgess et al. 2018 / disentanglement_lib
# --------------------------------------------------------------------------------------------

class BurgessEncoder(nn.Module):
    """The convolutional encoder of Burgess et al. 2018, "Understanding disentangling in
    beta-VAE" (arXiv:1804.03599, Appendix A.1), as implemented by disentanglement_lib
    (Locatello et al. 2019) in `conv_encoder`, disentanglement_lib/methods/shared/architectures.py.

    x [batch, H, W, C] -> 4 convolutions, stride 2, 'same' padding, ReLU, with 32, 32, 64, 64
    filters of sizes 4x4, 4x4, 2x2, 2x2 -> flatten -> dense 256, ReLU -> dense heads `mean` and
    `log_var` [batch, latent_dim]. For 64x64 inputs the last feature map is 4x4x64, so the
    dense layer maps 1024 -> 256.

    Differences, all deliberate:
      * The kernel sizes are disentanglement_lib's (4, 4, 2, 2): its e3/e4 use kernel_size=2.
        The paper's appendix has four 4x4 layers of 32 channels and a second dense 256 layer;
        `kernel_sizes=(4, 4, 4, 4)` gives the 4x4-everywhere variant.
      * Any H, W works (disentanglement_lib assumes 64x64): each 'same' stride-2 layer gives
        ceil(size / 2). Flax's 'SAME' padding is TensorFlow's (extra padding at the end), so for
        64x64 inputs the function equals disentanglement_lib's given the same weights.
      * Weights start from Glorot-uniform kernels and zero biases, TensorFlow's `tf.layers`
        defaults (Flax's own default is LeCun-normal); only the random draws differ.
    Layers are named e1..e4 (convs), e5 (dense), mean, log_var.
    """

    latent_dim: int
    channels: Sequence[int] = (32, 32, 64, 64)
    kernel_sizes: Sequence[int] = (4, 4, 2, 2)
    hidden: int = 256
    activation: Callable = nn.relu
    kernel_init: Callable = nn.initializers.glorot_uniform()
    conv_impl: str = "auto"  # strided convolutions: 'auto' | 'matmul' | 'xla' (see conv_layer)

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        if len(self.kernel_sizes) != len(self.channels):
            raise ValueError(f"BurgessEncoder: kernel_sizes {tuple(self.kernel_sizes)} and channels "
                             f"{tuple(self.channels)} must have the same length")
        h = x
        for i, (c, k) in enumerate(zip(self.channels, self.kernel_sizes)):
            h = conv_layer(self.conv_impl, c, (k, k), (2, 2), kernel_init=self.kernel_init, name=f"e{i + 1}")(h)
            h = self.activation(h)
        h = h.reshape(h.shape[0], -1)
        h = self.activation(nn.Dense(self.hidden, kernel_init=self.kernel_init, name=f"e{len(self.channels) + 1}")(h))
        mean = nn.Dense(self.latent_dim, kernel_init=self.kernel_init, name="mean")(h)
        log_var = nn.Dense(self.latent_dim, kernel_init=self.kernel_init, name="log_var")(h)
        return mean, log_var


class BurgessDecoder(nn.Module):
    """The transposed-convolution decoder of Burgess et al. 2018 (Appendix A.1) as implemented by
    disentanglement_lib in `deconv_decoder` (disentanglement_lib/methods/shared/architectures.py).

    z [batch, d] -> dense 256, ReLU -> dense h0 * w0 * 64, ReLU -> reshape [h0, w0, 64] ->
    4x4 stride-2 'same' transposed convolutions with 64, 32, 32 filters (ReLU) -> a last 4x4
    stride-2 transposed convolution to P channels, no activation -> crop to [batch, H, W, P].
    h0, w0 = the size after len(channels) + 1 halvings (ceil): 4x4 for 64x64, so the second dense
    layer is 256 -> 1024 exactly as in disentanglement_lib (which hard-codes 4x4x64).

    Differences, all deliberate:
      * Any H, W works: the initial map is sized from the image and the output cropped (e.g.
        28x28: 2x2 -> 32x32 -> crop), like ConvDecoder.
      * The transposed convolutions use `transpose_kernel=True`, so their kernels have
        TensorFlow's conv2d_transpose layout (kh, kw, out, in) and meaning (the gradient of a
        'same' convolution); with the same weights the function equals disentanglement_lib's.
      * Glorot-uniform kernels, zero biases (the `tf.layers` defaults), as in BurgessEncoder.
    Layers are named d1, d2 (dense), d3..d5 (transposed convs), out.
    """

    image_shape: tuple[int, int, int]
    channels: Sequence[int] = (64, 32, 32)
    map_channels: int = 64
    kernel_size: int = 4
    hidden: int = 256
    activation: Callable = nn.relu
    kernel_init: Callable = nn.initializers.glorot_uniform()
    conv_impl: str = "auto"  # transposed convolutions: 'auto' | 'matmul' | 'xla' (see conv_transpose_layer)

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        height, width, out_channels = self.image_shape
        n = len(self.channels) + 1
        h0, w0 = conv_output_size(height, n), conv_output_size(width, n)
        k = (self.kernel_size, self.kernel_size)
        h = self.activation(nn.Dense(self.hidden, kernel_init=self.kernel_init, name="d1")(z))
        h = self.activation(nn.Dense(h0 * w0 * self.map_channels, kernel_init=self.kernel_init, name="d2")(h))
        h = h.reshape(z.shape[0], h0, w0, self.map_channels)
        for i, c in enumerate(self.channels):
            h = conv_transpose_layer(self.conv_impl, c, k, (2, 2), transpose_kernel=True,
                                     kernel_init=self.kernel_init, name=f"d{i + 3}")(h)
            h = self.activation(h)
        h = conv_transpose_layer(self.conv_impl, out_channels, k, (2, 2), transpose_kernel=True,
                                 kernel_init=self.kernel_init, name="out")(h)
        return h[:, :height, :width, :]


# --------------------------------------------------------------------------------------------
# A small residual conv net
# --------------------------------------------------------------------------------------------

NORMS = ("group", "none")


def _norm(kind: str | None, name: str):
    """GroupNorm with gcd(channels, 32) groups (Wu & He 2018; 32 groups where the width allows),
    or nothing. No batch norm: it would need mutable batch statistics in the train state."""
    if kind in (None, "none"):
        return lambda h: h
    if kind != "group":
        raise ValueError(f"unknown norm {kind!r}; allowed: {', '.join(NORMS)} (or None)")

    def apply(h):
        return nn.GroupNorm(num_groups=math.gcd(h.shape[-1], 32), name=name)(h)

    return apply


def upsample_nearest(h: jax.Array, factor: int = 2) -> jax.Array:
    """[batch, H, W, C] -> [batch, factor * H, factor * W, C] by repeating pixels."""
    return jnp.repeat(jnp.repeat(h, factor, axis=1), factor, axis=2)


class ResidualBlock(nn.Module):
    """Pre-activation residual block (He et al. 2016, "Identity Mappings in Deep Residual
    Networks") at constant width: x + conv3x3(act(norm(conv3x3(act(norm(x)))))).

    zero_init: start the second convolution's kernel (and bias) at zero, so the block starts as
      the identity (SkipInit, De & Smith 2020; Fixup, Zhang et al. 2019): this keeps activations
      at their input scale without batch norm. The kernel still gets gradients and trains.
    Submodules: norm1, conv1, norm2, conv2.
    """

    activation: Callable = nn.silu
    norm: str | None = "group"
    zero_init: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        h = self.activation(_norm(self.norm, "norm1")(x))
        h = nn.Conv(c, (3, 3), padding="SAME", name="conv1")(h)
        h = self.activation(_norm(self.norm, "norm2")(h))
        init = nn.initializers.zeros if self.zero_init else nn.linear.default_kernel_init
        h = nn.Conv(c, (3, 3), padding="SAME", kernel_init=init, name="conv2")(h)
        return x + h


class ResNetEncoder(nn.Module):
    """A small residual conv encoder, e.g. for 32x32 colour images (any H, W works).

    x [batch, H, W, C] -> 3x3 conv `stem` to channels[0] -> stage 0: `blocks_per_stage`
    ResidualBlocks at full resolution -> for each later stage i: a 3x3 stride-2 'same' conv
    `down{i}` to channels[i] (ceil halving), then its residual blocks -> norm, activation ->
    flatten -> dense layers of `hidden` units -> dense heads `mean`, `log_var` [batch, latent_dim].

    With the defaults on 32x32x3: 32x32x64 -> 16x16x128 -> 8x8x256 -> 16384 -> 256 -> d.
    norm: 'group' (GroupNorm, see `_norm`) or None/'none'; never batch norm.
    """

    latent_dim: int
    channels: Sequence[int] = (64, 128, 256)
    blocks_per_stage: int = 1
    hidden: Sequence[int] = (256,)
    activation: Callable = nn.silu
    norm: str | None = "group"
    zero_init: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = nn.Conv(self.channels[0], (3, 3), padding="SAME", name="stem")(x)
        for i, c in enumerate(self.channels):
            if i:
                h = nn.Conv(c, (3, 3), strides=(2, 2), padding="SAME", name=f"down{i}")(h)
            for j in range(self.blocks_per_stage):
                h = ResidualBlock(self.activation, self.norm, self.zero_init, name=f"stage{i}_block{j}")(h)
        h = self.activation(_norm(self.norm, "norm_out")(h))
        h = h.reshape(h.shape[0], -1)
        for k, w in enumerate(self.hidden):
            h = self.activation(nn.Dense(w, name=f"hidden{k}")(h))
        mean = nn.Dense(self.latent_dim, name="mean")(h)
        log_var = nn.Dense(self.latent_dim, name="log_var")(h)
        return mean, log_var


class ResNetDecoder(nn.Module):
    """Mirror of ResNetEncoder, upsampling by nearest neighbour + 3x3 conv (no transposed convs:
    they are slow in XLA on CPU and prone to checkerboard artefacts, Odena et al. 2016).

    z [batch, d] -> dense layers of `hidden` units (pass the encoder's reversed) -> dense
    `to_map` to the encoder's last feature map [h, w, channels[0]] -> stage 0's residual blocks ->
    for each later stage i: nearest-neighbour x2 upsampling, cropped to the encoder's size at
    that level, a 3x3 conv `up{i}` to channels[i], its residual blocks -> norm, activation ->
    3x3 conv `out` to P channels, no activation: [batch, H, W, P].

    channels: stage widths from the lowest resolution up (the encoder's reversed), default
      (256, 128, 64); len(channels) - 1 upsamplings.
    """

    image_shape: tuple[int, int, int]
    channels: Sequence[int] = (256, 128, 64)
    blocks_per_stage: int = 1
    hidden: Sequence[int] = (256,)
    activation: Callable = nn.silu
    norm: str | None = "group"
    zero_init: bool = True

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        height, width, out_channels = self.image_shape
        n = len(self.channels)
        # sizes[l]: the encoder's feature map size after l halvings
        sizes = [(conv_output_size(height, l), conv_output_size(width, l)) for l in range(n)]
        h = z
        for k, w in enumerate(self.hidden):
            h = self.activation(nn.Dense(w, name=f"hidden{k}")(h))
        h0, w0 = sizes[-1]
        h = nn.Dense(h0 * w0 * self.channels[0], name="to_map")(h).reshape(z.shape[0], h0, w0, self.channels[0])
        for i, c in enumerate(self.channels):
            if i:
                hi, wi = sizes[n - 1 - i]
                h = upsample_nearest(h)[:, :hi, :wi, :]
                h = nn.Conv(c, (3, 3), padding="SAME", name=f"up{i}")(h)
            for j in range(self.blocks_per_stage):
                h = ResidualBlock(self.activation, self.norm, self.zero_init, name=f"stage{i}_block{j}")(h)
        h = self.activation(_norm(self.norm, "norm_out")(h))
        return nn.Conv(out_channels, (3, 3), padding="SAME", name="out")(h)


# --------------------------------------------------------------------------------------------
# From a config
# --------------------------------------------------------------------------------------------

ARCHITECTURES = ("mlp", "conv", "burgess", "resnet")


def build_networks(architecture: str, latent_dim: int, image_shape: tuple[int, int, int], out_channels: int, *,
                   hidden: Sequence[int] = (512, 256), channels: Sequence[int] = (32, 64), kernel_size: int = 4,
                   activation: str | Callable | None = None,
                   decoder_image_shape: tuple[int, int, int] | None = None) -> tuple[nn.Module, nn.Module]:
    """(encoder, decoder) of an architecture family.

    image_shape: the encoder's input (H, W, C) (C only informs; encoders adapt to their input).
    out_channels: P, the likelihood's parameter channels; the decoder outputs [batch, H, W, P].
    activation: a name in ACTIVATIONS or a function; None: the family's default (relu; silu
      for resnet). decoder_image_shape: optional, must equal (H, W, out_channels) if given.

    How `hidden`, `channels` and `kernel_size` are used:
      mlp      hidden: the encoder's dense widths, reversed for the decoder. channels and
               kernel_size unused.
      conv     channels: the stride-2 conv widths (reversed for the decoder), kernel_size their
               kernel; hidden[0]: one dense layer in each (ConvEncoder / ConvDecoder).
      burgess  fixed: the published architecture (see BurgessEncoder); hidden, channels and
               kernel_size are ignored.
      resnet   channels: the stage widths at full, 1/2, 1/4, ... resolution (any length >= 1:
               len - 1 downsamplings; the decoder's reversed), e.g. (64, 128, 256); hidden: the
               dense layers between the last feature map and the latent (reversed in the
               decoder); kernel_size ignored (3x3 throughout); 1 block per stage, GroupNorm.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; allowed: {', '.join(ARCHITECTURES)}")
    if len(image_shape) != 3:
        raise ValueError(f"image_shape must be (H, W, C), got {tuple(image_shape)!r}")
    height, width = int(image_shape[0]), int(image_shape[1])
    dec_shape = (height, width, int(out_channels))
    if decoder_image_shape is not None and tuple(int(s) for s in decoder_image_shape) != dec_shape:
        raise ValueError(f"decoder_image_shape {tuple(decoder_image_shape)!r} must be (H, W, out_channels) = "
                         f"{dec_shape!r}")
    hidden, channels = tuple(int(h) for h in hidden), tuple(int(c) for c in channels)
    kw = {} if activation is None else {"activation": get_activation(activation)}
    if architecture == "mlp":
        return (MLPEncoder(latent_dim, hidden=hidden, **kw),
                MLPDecoder(dec_shape, hidden=tuple(reversed(hidden)), **kw))
    if architecture == "conv":
        dense = hidden[0] if hidden else None
        return (ConvEncoder(latent_dim, channels=channels, kernel_size=kernel_size, hidden=dense, **kw),
                ConvDecoder(dec_shape, channels=tuple(reversed(channels)), kernel_size=kernel_size, hidden=dense,
                            **kw))
    if architecture == "burgess":
        return BurgessEncoder(latent_dim, **kw), BurgessDecoder(dec_shape, **kw)
    if not channels:
        raise ValueError("resnet needs at least one stage width in channels")
    return (ResNetEncoder(latent_dim, channels=channels, hidden=hidden, **kw),
            ResNetDecoder(dec_shape, channels=tuple(reversed(channels)), hidden=tuple(reversed(hidden)), **kw))
