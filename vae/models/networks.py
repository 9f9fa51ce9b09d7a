"""Encoder and decoder networks, sized from the image shape.

Encoders map x: [batch, H, W, C] to (mean, log_var): [batch, latent_dim] each.
Decoders map z: [batch, latent_dim] to likelihood parameters: [batch, H, W, C].
Any linen module with these signatures can replace them.
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
