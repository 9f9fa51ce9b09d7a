"""Fully convolutional networks whose latent is a 2-D map: the encoder and decoder of the VQ-VAE
paper (van den Oord et al. 2017, sec. 4.1), used by `vqvae` with `model.code_map`.

The encoder maps x [batch, H, W, C] to a map [batch, h, w, D] of D-dim vectors (one code per
position), returned flattened position-major as [batch, h * w * D], so the VQ-VAE's
quantization (which splits the last axis into vectors of D) quantizes each position; the
decoder takes the same flat vector back to [batch, H, W, P]. With no dense layer the weights
are shared across positions, which is what lets a small dataset train them and a PixelCNN
prior over the code map (`vae.samplers.pixelcnn`) learn from few images.
"""

from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae.models.conv_kernels import conv_layer, conv_output_size, conv_transpose_layer


def map_shape(image_shape: tuple[int, ...], num_downsamplings: int) -> tuple[int, int]:
    """(h, w): the code map's size after `num_downsamplings` stride-2 'SAME' convolutions."""
    return conv_output_size(int(image_shape[0]), num_downsamplings), conv_output_size(int(image_shape[1]),
                                                                                      num_downsamplings)


class MapResidual(nn.Module):
    """The paper's residual block: x + conv1x1(relu(conv3x3(relu(x))))."""

    hidden: int
    activation: Callable = nn.relu

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = nn.Conv(self.hidden, (3, 3), padding="SAME", name="conv3")(self.activation(x))
        return x + nn.Conv(x.shape[-1], (1, 1), name="conv1")(self.activation(h))


class ConvMapEncoder(nn.Module):
    """x [batch, H, W, C] -> stride-2 4x4 convolutions with `channels` filters -> `res_blocks`
    residual blocks -> relu -> 1x1 convolution to `code_size` -> mean [batch, h * w * code_size]
    (and a zero log-variance of that shape: the VQ-VAE's posterior is deterministic)."""

    code_size: int
    channels: Sequence[int] = (32, 64)
    kernel_size: int = 4
    res_blocks: int = 2
    activation: Callable = nn.relu
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = x
        k = (self.kernel_size, self.kernel_size)
        for i, c in enumerate(self.channels):
            h = conv_layer(self.conv_impl, c, k, (2, 2), name=f"Conv_{i}")(h)
            if i < len(self.channels) - 1:
                h = self.activation(h)
        for j in range(self.res_blocks):
            h = MapResidual(self.channels[-1], self.activation, name=f"res{j}")(h)
        z = nn.Conv(self.code_size, (1, 1), name="to_code")(self.activation(h))
        z = z.reshape(z.shape[0], -1)
        return z, jnp.zeros_like(z)


class ConvMapDecoder(nn.Module):
    """z [batch, h * w * code_size] -> [batch, h, w, code_size] -> 3x3 convolution to channels[0]
    -> `res_blocks` residual blocks -> relu -> stride-2 4x4 transposed convolutions through
    channels[1:] and to P channels, cropped: [batch, H, W, P]. `channels` are the encoder's
    reversed; h, w follow from the image size and len(channels) halvings."""

    image_shape: tuple[int, int, int]
    code_size: int
    channels: Sequence[int] = (64, 32)
    kernel_size: int = 4
    res_blocks: int = 2
    activation: Callable = nn.relu
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        height, width, out_channels = self.image_shape
        h0, w0 = map_shape(self.image_shape, len(self.channels))
        h = z.reshape(z.shape[0], h0, w0, self.code_size)
        h = nn.Conv(self.channels[0], (3, 3), padding="SAME", name="from_code")(h)
        for j in range(self.res_blocks):
            h = MapResidual(self.channels[0], self.activation, name=f"res{j}")(h)
        k = (self.kernel_size, self.kernel_size)
        for i, c in enumerate(self.channels[1:]):
            h = conv_transpose_layer(self.conv_impl, c, k, (2, 2), name=f"ConvTranspose_{i}")(self.activation(h))
        h = conv_transpose_layer(self.conv_impl, out_channels, k, (2, 2), name="out")(self.activation(h))
        return h[:, :height, :width, :]
