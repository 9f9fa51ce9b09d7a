"""The residual cells of `vae.models.nvae` (Vahdat & Kautz 2020, fig. 3), without batch norm:
the bottom-up encoder cell (two 3x3 convolutions), the top-down generative cell (1x1 expansion,
5x5 depthwise convolution, 1x1 projection), both ending in squeeze-and-excitation, their
residual branch scaled by 0.1 as in the authors' code."""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

RESIDUAL_SCALE = 0.1


def soft_clamp(x: jax.Array, bound: float | None) -> jax.Array:
    """bound * tanh(x / bound): NVAE's smooth clamp of the Gaussian parameters (None: identity)."""
    return x if bound is None else bound * jnp.tanh(x / bound)


def upsample2(h: jax.Array) -> jax.Array:
    """Nearest-neighbour upsampling by 2: [B, H, W, C] -> [B, 2H, 2W, C]."""
    return jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)


class DepthwiseConv(nn.Module):
    """A k x k depthwise ('SAME', stride 1) convolution written as k^2 shifted products: the
    same values as nn.Conv(C, (k, k), feature_group_count=C), whose gradient on XLA:CPU is
    several times slower (benchmarks/NOTES.md, "nvae on the CPU")."""

    kernel_size: int = 5

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        k, c = self.kernel_size, h.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, 1, c))
        bias = self.param("bias", nn.initializers.zeros_init(), (c,))
        p = k // 2
        padded = jnp.pad(h, ((0, 0), (p, k - 1 - p), (p, k - 1 - p), (0, 0)))
        height, width = h.shape[1:3]
        out = sum(padded[:, i:i + height, j:j + width, :] * kernel[i, j, 0] for i in range(k) for j in range(k))
        return out + bias


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): channels gated by a two-layer function of their
    spatial means (reduction 16, at least 4 hidden units)."""

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        c = h.shape[-1]
        s = nn.relu(nn.Dense(max(c // 16, 4))(jnp.mean(h, axis=(1, 2))))
        return h * jax.nn.sigmoid(nn.Dense(c, name="gate")(s))[:, None, None, :]


def _skip(h: jax.Array, channels: int, stride: int, name: str) -> jax.Array:
    if stride == 1 and h.shape[-1] == channels:
        return h
    return nn.Conv(channels, (1, 1), strides=stride, name=name)(h)


class EncoderCell(nn.Module):
    """Bottom-up residual cell (fig. 3b less its batch norms): h + 0.1 SE(conv3(act(conv3(act(h))))),
    halving H and W when `downsample` (the skip is then a strided 1x1 convolution)."""

    channels: int
    downsample: bool = False
    activation: Callable = nn.swish

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        stride = 2 if self.downsample else 1
        r = nn.Conv(self.channels, (3, 3), strides=stride)(self.activation(h))
        r = nn.Conv(self.channels, (3, 3), name="residual_out")(self.activation(r))
        return _skip(h, self.channels, stride, "skip") + RESIDUAL_SCALE * SqueezeExcite()(r)


class DecoderCell(nn.Module):
    """Top-down residual cell (fig. 3a less its batch norms): 1x1 expansion by `expand`, act,
    5x5 depthwise convolution, act, 1x1 projection, SE; doubling H and W first when `upsample`
    (nearest neighbour, then a 1x1 convolution on the skip when the width changes)."""

    channels: int
    expand: int = 6
    upsample: bool = False
    activation: Callable = nn.swish

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        if self.upsample:
            h = upsample2(h)
        wide = self.channels * self.expand
        r = self.activation(nn.Conv(wide, (1, 1))(h))
        r = self.activation(DepthwiseConv(5)(r))
        r = nn.Conv(self.channels, (1, 1), name="residual_out")(r)
        return _skip(h, self.channels, 1, "skip") + RESIDUAL_SCALE * SqueezeExcite()(r)
