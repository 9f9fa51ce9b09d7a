"""Convolution layers computed as matrix products, with flax's parameters and function.

`MatmulConvTranspose` is `nn.ConvTranspose` (same parameters, names, shapes and function)
computed by `conv_transpose_same` as one matrix product plus a pixel shuffle instead of XLA's
input-dilated convolution, whose kernel gradient XLA:CPU computes several times slower.
`MatmulConv` is `nn.Conv` with XLA's forward and kernel gradient and its input gradient (itself a
transposed convolution) computed the same way (`strided_conv_same`, a custom VJP); on small
patches (a first layer) it is one product of explicit patches (`patch_conv_same`). Whole train
steps of the conv nets ran faster this way on the CPU and on an H100 (measured in
benchmarks/NOTES.md, "Why the conv layers are matrix products"). `conv_layer` and
`conv_transpose_layer` build either form from a `conv_impl` ('auto', 'matmul', 'xla'; see
`resolve_conv_impl`) with the same parameter tree, so checkpoints load either way.
`conv_output_size` gives the spatial size after stride-2 'SAME' convolutions, which the network
families use to size their feature maps.
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


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
    convolution, which on the CPU took most of the fwd+bwd time of the Burgess encoder's
    32x32x32 -> 16x16x32 layer (measured in benchmarks/NOTES.md). Forward and kernel gradient are
    XLA's.

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

# Patch size (kh * kw * in-channels) up to which MatmulConv builds the patches itself: the first
# layer of an image encoder (1 or 3 input channels), whose kernel gradient XLA:CPU's convolution
# took 3.4 ms for and one matrix product of the patches 1.3 ms (Burgess e1, batch 64).
PATCH_CONV_MAX = 16


def _same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def patch_conv_same(x: jax.Array, kernel: jax.Array, strides: tuple[int, int]) -> jax.Array:
    """`lax.conv_general_dilated(x, kernel, strides, 'SAME')` (NHWC, HWIO) as patches [N, h, w,
    kh * kw * C] (strided slices of the padded input) times the kernel [kh * kw * C, O]: its
    kernel gradient is one matrix product. For small patches (PATCH_CONV_MAX); the patches are
    kept as one array (an optimization barrier) so XLA does not refold them into the product."""
    n, h, w, c = x.shape
    kh, kw, _, o = kernel.shape
    sh, sw = strides
    xp = jnp.pad(x, ((0, 0), _same_pads(h, kh, sh), _same_pads(w, kw, sw), (0, 0)))
    oh, ow = -(-h // sh), -(-w // sw)
    cols = [xp[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :] for i in range(kh) for j in range(kw)]
    patches = jax.lax.optimization_barrier(jnp.concatenate(cols, axis=-1))
    return (patches.reshape(-1, kh * kw * c) @ kernel.reshape(kh * kw * c, o)).reshape(n, oh, ow, o)


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
        strides = tuple(int(v) for v in strides)
        if kernel_size[0] * kernel_size[1] * inputs.shape[-1] <= PATCH_CONV_MAX:
            y = patch_conv_same(inputs, kernel, strides)
        else:
            y = strided_conv_same(inputs, kernel, strides)
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
