"""The `resnet` network family: a small pre-activation residual conv net (GroupNorm, no batch
norm), ResNetEncoder / ResNetDecoder, with nearest-neighbour upsampling in the decoder.

Encoders map x: [batch, H, W, C] to (mean, log_var): [batch, latent_dim] each; decoders map
z: [batch, d] to [batch, H, W, P] (see vae.models.networks). Any H, W works: spatial sizes halve
with ceil and the decoder crops its upsampled maps to the encoder's sizes. Its convolutions are
plain `nn.Conv` (3x3; the downsamplings stride 2).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae.models.conv_kernels import conv_output_size


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

