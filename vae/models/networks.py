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
"""

from __future__ import annotations

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


class ConvEncoder(nn.Module):
    """Stride-2 convolutions with `channels` filters, then a dense head for mean and log-variance."""

    latent_dim: int
    channels: Sequence[int] = (32, 64)
    kernel_size: int = 4
    hidden: int | None = 256
    activation: Callable = nn.relu

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = x
        k = (self.kernel_size, self.kernel_size)
        for c in self.channels:
            h = self.activation(nn.Conv(c, k, strides=(2, 2), padding="SAME")(h))
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
        for c in self.channels[1:]:
            h = self.activation(nn.ConvTranspose(c, k, strides=(2, 2), padding="SAME")(h))
        h = nn.ConvTranspose(out_channels, k, strides=(2, 2), padding="SAME", name="out")(h)
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

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        if len(self.kernel_sizes) != len(self.channels):
            raise ValueError(f"BurgessEncoder: kernel_sizes {tuple(self.kernel_sizes)} and channels "
                             f"{tuple(self.channels)} must have the same length")
        h = x
        for i, (c, k) in enumerate(zip(self.channels, self.kernel_sizes)):
            h = nn.Conv(c, (k, k), strides=(2, 2), padding="SAME", kernel_init=self.kernel_init, name=f"e{i + 1}")(h)
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
            h = nn.ConvTranspose(c, k, strides=(2, 2), padding="SAME", transpose_kernel=True,
                                 kernel_init=self.kernel_init, name=f"d{i + 3}")(h)
            h = self.activation(h)
        h = nn.ConvTranspose(out_channels, k, strides=(2, 2), padding="SAME", transpose_kernel=True,
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
