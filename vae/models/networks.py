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

Modules: vae.models.conv_kernels (the matrix-product convolution layers), vae.models.conv_nets
(conv, burgess), vae.models.resnet_nets (resnet); this one holds the MLP family, the activations
and `build_networks`, and re-exports the public names of the others.

The conv and burgess families' strided and transposed convolutions run through `MatmulConv` /
`MatmulConvTranspose` on CPU and GPU: the same layers as `nn.Conv` / `nn.ConvTranspose` (same
parameters, names, shapes and function) computed as matrix products and a pixel shuffle instead
of XLA's input-dilated convolutions, whose gradients XLA:CPU computes slowly (measured in
benchmarks/NOTES.md; see vae.models.conv_kernels). `conv_impl='xla'` selects plain `nn.Conv` /
`nn.ConvTranspose`.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae.models.conv_kernels import (
    CONV_IMPLS,
    MatmulConv,
    MatmulConvTranspose,
    conv_layer,
    conv_output_size,
    conv_transpose_layer,
    conv_transpose_same,
    patch_conv_same,
    resolve_conv_impl,
    strided_conv_same,
)
from vae.models.conv_nets import BurgessDecoder, BurgessEncoder, ConvDecoder, ConvEncoder
from vae.models.resnet_nets import NORMS, ResidualBlock, ResNetDecoder, ResNetEncoder, upsample_nearest

__all__ = [
    "MLPEncoder", "MLPDecoder", "ConvEncoder", "ConvDecoder", "BurgessEncoder", "BurgessDecoder", "ResidualBlock",
    "ResNetEncoder", "ResNetDecoder", "ACTIVATIONS", "get_activation", "ARCHITECTURES", "build_networks",
    "conv_output_size", "upsample_nearest", "NORMS", "CONV_IMPLS", "resolve_conv_impl", "conv_layer",
    "conv_transpose_layer", "conv_transpose_same", "strided_conv_same", "patch_conv_same",
    "MatmulConv", "MatmulConvTranspose",
]


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
