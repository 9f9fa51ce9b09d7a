"""Codebook upkeep for the VQ family: k-means initialization from the first encoder outputs
(as in SoundStream, Zeghidour et al. 2021, sec. 3.3) and dead-code expiry (codes unused for
`threshold` steps are replaced by encoder outputs of the current batch, ibid.)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from vae.models.quantizers.vq import nearest_code


def _reseed_empty(centres: jax.Array, counts: jax.Array, vectors: jax.Array) -> jax.Array:
    """Every centre with no vector moved onto one of the vectors farthest from their centres."""
    _, nearest = nearest_code(vectors, centres)
    far = jnp.argsort(-jnp.sum((vectors - nearest) ** 2, axis=1))          # farthest first
    empty = counts == 0
    slot = jnp.cumsum(empty) - 1                                            # the i-th empty centre takes far[i]
    return jnp.where(empty[:, None], vectors[far[jnp.clip(slot, 0)]], centres)


def _kmeans_plus_plus(vectors: jax.Array, num_codes: int, key: jax.Array) -> jax.Array:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007; the greedy form of scikit-learn):
    each next centre is, of 2 + floor(ln K) rows drawn with probability proportional to their
    squared distance to the nearest centre so far, the one that lowers the total most."""
    keys = jax.random.split(key, num_codes)
    tries = 2 + int(math.log(num_codes))
    first = vectors[jax.random.randint(keys[0], (), 0, vectors.shape[0])]
    centres = jnp.zeros((num_codes, vectors.shape[1]), vectors.dtype).at[0].set(first)
    d2 = jnp.sum((vectors - first) ** 2, axis=1)

    def add(i, carry):
        centres, d2 = carry
        picks = jax.random.categorical(keys[i], jnp.log(jnp.maximum(d2, 1e-30)), shape=(tries,))
        cand = jnp.minimum(d2[None], jnp.sum((vectors[None] - vectors[picks][:, None]) ** 2, axis=-1))  # [tries, N]
        best = jnp.argmin(jnp.sum(cand, axis=1))
        return centres.at[i].set(vectors[picks[best]]), cand[best]

    return jax.lax.fori_loop(1, num_codes, add, (centres, d2))[0]


def kmeans_codebook(vectors: jax.Array, num_codes: int, key: jax.Array, iterations: int = 10) -> jax.Array:
    """k-means on vectors [N, D] (N >= num_codes): k-means++ seeds, then `iterations` Lloyd steps;
    the codebook [num_codes, D]. A centre left without vectors moves onto a far vector, so every
    code starts with at least one assigned vector (for vectors without duplicates)."""
    n = vectors.shape[0]
    if n < num_codes:
        raise ValueError(f"k-means initialization of {num_codes} codes needs at least as many vectors, got {n}")
    centres = _kmeans_plus_plus(vectors, num_codes, key)

    def step(_, centres):
        codes, _ = nearest_code(vectors, centres)
        one_hot = jax.nn.one_hot(codes, num_codes, dtype=vectors.dtype)
        counts = one_hot.sum(0)
        means = (one_hot.T @ vectors) / jnp.maximum(counts, 1)[:, None]
        return _reseed_empty(jnp.where(counts[:, None] > 0, means, centres), counts, vectors)

    centres = jax.lax.fori_loop(0, iterations, step, centres)
    codes, _ = nearest_code(vectors, centres)
    return _reseed_empty(centres, jnp.zeros(num_codes).at[codes].add(1.0), vectors)


def expire_dead_codes(codebook: jax.Array, idle_steps: jax.Array, counts: jax.Array, vectors: jax.Array,
                      key: jax.Array, threshold: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One step of dead-code expiry. codebook [K, D]; idle_steps [K] (steps since each code was
    last used); counts [K] (this batch's uses); vectors [N, D] (this batch's encoder outputs).
    Codes idle for `threshold` steps take random distinct rows of `vectors` (N >= K) and their
    idle count restarts. Returns (codebook, idle_steps, number of codes replaced)."""
    idle = jnp.where(counts > 0, 0, idle_steps + 1)
    dead = idle >= threshold
    rows = vectors[jax.random.permutation(key, vectors.shape[0])[:codebook.shape[0]]]
    return jnp.where(dead[:, None], rows, codebook), jnp.where(dead, 0, idle), jnp.sum(dead)


def level_usage(codes: jax.Array, codebook_size: int) -> dict[str, jax.Array]:
    """`codebook_usage` of codes [..., Q] from Q codebooks of `codebook_size` each (residual VQ's
    levels; Q = 1 for one codebook), level q's code k counted as entry q * codebook_size + k."""
    levels = codes.shape[-1]
    return codebook_usage(codes + codebook_size * jnp.arange(levels), codebook_size * levels)


def codebook_usage(codes: jax.Array, num_codes: int) -> dict[str, jax.Array]:
    """Diagnostics of the codes [...] used in a batch: `codes_used` (distinct codes), `perplexity`
    exp(H(usage)) of the empirical code distribution (num_codes when uniform, 1 when one code takes
    everything) and `dead_codes` (codes not used)."""
    counts = jnp.zeros(num_codes).at[codes.reshape(-1)].add(1.0)
    p = counts / jnp.sum(counts)
    used = jnp.sum(counts > 0).astype(jnp.float32)
    return {"codes_used": used, "perplexity": jnp.exp(-jnp.sum(jax.scipy.special.xlogy(p, p))),
            "dead_codes": num_codes - used}
