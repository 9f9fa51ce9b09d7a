"""Finite scalar quantization (Mentzer et al. 2024, "Finite Scalar Quantization: VQ-VAE Made
Simple", sec. 3): each of the D = len(levels) channels is bounded to L_i values and rounded,

    z_hat_i = round(f_i(z_i)),   f_i(z) = tanh(z + s_i) * h_i - o_i,   h_i = (L_i - 1)(1 + eps) / 2,

with o_i = 1/2 and s_i = atanh(o_i / h_i) for even L_i (so the L_i integers -L_i/2 .. L_i/2 - 1
are all reachable) and o_i = s_i = 0 for odd L_i (integers -(L_i-1)/2 .. (L_i-1)/2). Rounding
passes gradients straight through; the output is z_hat_i / floor(L_i / 2), in [-1, 1]. The
implied codebook is the product grid, of size prod L_i, indexed in mixed radix. No codebook is
learned, so there is no commitment or codebook loss and no code collapse to guard against.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from vae.models.quantizers.vq import straight_through

EPS = 1e-3


def round_ste(x: jax.Array) -> jax.Array:
    """round(x) with the identity's gradient (the straight-through estimator)."""
    return straight_through(x, jnp.round(x))


class FSQ:
    """The FSQ quantizer for `levels` (L_1, ..., L_D), each at least 2. Stateless: it has no
    parameters, so it is a plain object, usable inside any linen module."""

    def __init__(self, levels: tuple[int, ...]):
        levels = tuple(int(v) for v in levels)
        if not levels or any(v < 2 for v in levels):
            raise ValueError(f"FSQ levels must be a non-empty sequence of integers >= 2, got {levels!r}")
        self.levels = levels
        self._levels = np.asarray(levels, np.float32)
        self._int_levels = np.asarray(levels, np.int32)
        self._basis = np.cumprod([1, *levels[:-1]]).astype(np.int32)

    @property
    def dim(self) -> int:
        """D: the channels each code spans."""
        return len(self.levels)

    @property
    def codebook_size(self) -> int:
        """prod L_i: the size of the implied codebook."""
        return math.prod(self.levels)

    def bound(self, z: jax.Array) -> jax.Array:
        """f(z) [..., D]: each channel squashed into (-L/2 - 1/2, L/2 + 1/2) around the integers it rounds to."""
        half = (self._levels - 1) * (1 + EPS) / 2
        offset = np.where(self._levels % 2 == 0, 0.5, 0.0).astype(np.float32)
        shift = np.arctanh(offset / half).astype(np.float32)
        return jnp.tanh(z + shift) * half - offset

    def __call__(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """z [..., D] -> (z_q [..., D] in [-1, 1], straight-through; codes [...] in [0, prod L))."""
        rounded = round_ste(self.bound(z))
        return rounded / (self._levels // 2), self.codes_from_integers(jax.lax.stop_gradient(rounded))

    def codes_from_integers(self, rounded: jax.Array) -> jax.Array:
        """Rounded channels [..., D] (integers as floats) -> mixed-radix code indices [...]."""
        digits = (rounded + self._levels // 2).astype(jnp.int32)
        return jnp.sum(digits * self._basis, axis=-1)

    def codes_to_vectors(self, codes: jax.Array) -> jax.Array:
        """Code indices [...] -> their grid vectors z_q [..., D] (the inverse of the indexing)."""
        digits = (codes[..., None] // self._basis) % self._int_levels
        return (digits - self._int_levels // 2).astype(jnp.float32) / (self._levels // 2)
