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


def _pad_same(h: jax.Array, k: int) -> jax.Array:
    """h [B, H, W, C] with k // 2 zero rows and columns on each side (k odd)."""
    p = k // 2
    return jnp.pad(h, ((0, 0), (p, p), (p, p), (0, 0)))


def _shifted_sum(h: jax.Array, kernel: jax.Array) -> jax.Array:
    """sum_ij h_pad[:, i:i+H, j:j+W] * kernel[i, j]: a 'SAME' depthwise correlation; h [B, H, W, C],
    kernel [k, k, C] with k odd."""
    k = kernel.shape[0]
    height, width = h.shape[1:3]
    padded = _pad_same(h, k)
    return sum(padded[:, i:i + height, j:j + width, :] * kernel[i, j] for i in range(k) for j in range(k))


@jax.custom_vjp
def depthwise_same(h: jax.Array, kernel: jax.Array) -> jax.Array:
    """The 'SAME' depthwise correlation of h [B, H, W, C] with kernel [k, k, C] (k odd). Its VJP is
    written out: the input gradient is the same shifted sum of the output gradient with the
    flipped kernel, and the kernel gradient k^2 reductions, so that no shifted copy of the input is
    kept between the passes (autodiff of the shifted sum stored all k^2 of them). Reverse mode only
    (jax.grad, jax.jacrev), like `vae.models.conv_kernels.MatmulConv`."""
    return _shifted_sum(h, kernel)


def _depthwise_fwd(h, kernel):
    return _shifted_sum(h, kernel), (h, kernel)


def _depthwise_bwd(res, g):
    h, kernel = res
    k = kernel.shape[0]
    padded = _pad_same(h, k)

    def tap(t):  # a loop with dynamic slices: unrolled, XLA:CPU materialized every shifted copy
        window = jax.lax.dynamic_slice(padded, (0, t // k, t % k, 0), h.shape)
        return jnp.sum(window * g, axis=(0, 1, 2))

    dk = jax.lax.map(tap, jnp.arange(k * k)).reshape(k, k, -1)
    return _shifted_sum(g, kernel[::-1, ::-1]), dk


depthwise_same.defvjp(_depthwise_fwd, _depthwise_bwd)


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
        return depthwise_same(h, kernel[:, :, 0]) + bias


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
    # a 1x1 convolution as a matrix product over channels (stride 2 'SAME' reads the even pixels)
    return nn.Dense(channels, name=name)(h[:, ::stride, ::stride])


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
        r = self.activation(nn.Dense(wide)(h))
        r = self.activation(DepthwiseConv(5)(r))
        r = nn.Dense(self.channels, name="residual_out")(r)
        return _skip(h, self.channels, 1, "skip") + RESIDUAL_SCALE * SqueezeExcite()(r)
