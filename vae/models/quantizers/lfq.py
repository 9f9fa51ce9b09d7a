"""Lookup-free quantization (Yu et al. 2024, "Language Model Beats Diffusion", MAGVIT-v2, sec.
3.1): each of D channels is quantized to its sign, so the implied codebook is {-1, 1}^D (2^D codes,
index sum_i 2^i [z_i > 0]) and no vector is looked up:

    q(z)_i = sign(z_i),   straight-through gradient,

trained with a commitment term ||z - sg(q(z))||^2 and the entropy penalty (eq. 4)

    L_entropy = E_z[H(p(c | z))] - gamma H(E_z[p(c | z)]),   p(c | z) = softmax_c(-||z - c||^2 / tau),

small per-sample entropy (confident codes) and a large batch-average entropy (all codes used).
For codes c in {-1, 1}^D, -||z - c||^2 / tau = 2 z.c / tau + const, so p(c | z) factorizes into D
Bernoullis with p(c_i = 1 | z) = sigmoid(4 z_i / tau), and the per-sample entropy is a sum of D
binary entropies; the batch average does not factorize, so its entropy enumerates all 2^D codes
(up to `max_exact_bits`; above it, the sum of the per-channel marginals' entropies, an upper
bound: `exact_codebook_entropy` tells which). tau is not given in the paper; 0.01 follows common implementations.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from vae.models.quantizers.vq import straight_through


TINY = 1e-12


def _plogp(p: jax.Array) -> jax.Array:
    """p log p with the log's argument floored at 1e-12: the value is xlogy's to ~1e-11, and the
    gradient stays finite where a sigmoid or softmax saturates to exactly 0 (xlogy's is -inf x 0)."""
    return p * jnp.log(jnp.maximum(p, TINY))


def _binary_entropy(p: jax.Array) -> jax.Array:
    """H(Bernoulli(p)) in nats, finite (with a finite gradient) at p = 0 and 1."""
    return -(_plogp(p) + _plogp(1 - p))


class LFQ:
    """Lookup-free quantization over `dim` channels (2^dim codes); stateless."""

    def __init__(self, dim: int, temperature: float = 0.01, diversity_gamma: float = 1.0, max_exact_bits: int = 12):
        if dim < 1:
            raise ValueError(f"LFQ dim must be >= 1, got {dim}")
        if temperature <= 0:
            raise ValueError(f"LFQ temperature must be > 0, got {temperature}")
        self.dim, self.temperature, self.diversity_gamma = int(dim), float(temperature), float(diversity_gamma)
        self.max_exact_bits = int(max_exact_bits)

    @property
    def codebook_size(self) -> int:
        return 2 ** self.dim

    @property
    def exact_codebook_entropy(self) -> bool:
        """Whether `entropy_terms` enumerates the 2^D codes (else it reports an upper bound)."""
        return self.dim <= self.max_exact_bits

    def __call__(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """z [..., D] -> (z_q = sign(z) [..., D] in {-1, 1}, straight-through; codes [...])."""
        bits = (z > 0).astype(jnp.int32)
        return straight_through(z, jnp.where(z > 0, 1.0, -1.0)), jnp.sum(bits << jnp.arange(self.dim, dtype=jnp.int32),
                                                                        axis=-1)

    def codes_to_vectors(self, codes: jax.Array) -> jax.Array:
        """Code indices [...] -> {-1, 1}^D vectors [..., D]."""
        bits = (codes[..., None] >> jnp.arange(self.dim, dtype=jnp.int32)) & 1
        return 2.0 * bits.astype(jnp.float32) - 1.0

    def entropy_terms(self, z: jax.Array) -> dict[str, jax.Array]:
        """For z [N, D] (rows pooled over batch and positions): per-sample entropy E_z[H(p(c|z))],
        the codebook entropy H(E_z[p(c|z)]) (exact up to max_exact_bits, else the marginals' upper
        bound) and the loss E[H] - gamma H(E), in nats."""
        p_one = jax.nn.sigmoid(4.0 * z / self.temperature)                          # [N, D]
        per_sample = jnp.mean(jnp.sum(_binary_entropy(p_one), axis=-1))
        if self.exact_codebook_entropy:
            bits = (np.arange(self.codebook_size)[:, None] >> np.arange(self.dim)) & 1  # numpy: static under jit
            signs = (2.0 * bits - 1.0).astype(np.float32)                                # [K, D]
            logits = 2.0 * z @ signs.T / self.temperature                              # [N, K]
            avg = jnp.mean(jax.nn.softmax(logits, axis=-1), axis=0)
            codebook = -jnp.sum(_plogp(avg))
        else:
            codebook = jnp.sum(_binary_entropy(jnp.mean(p_one, axis=0)))
        return {"sample_entropy": per_sample, "codebook_entropy": codebook,
                "entropy_loss": per_sample - self.diversity_gamma * codebook}
