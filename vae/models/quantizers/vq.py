"""Vector quantization (van den Oord et al. 2017): each D-dim vector to its nearest codebook
entry, by Euclidean distance or, with `cosine=True`, by cosine similarity (both sides
l2-normalized, as in Yu et al. 2022's ViT-VQGAN, sec. 3.2)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def straight_through(x: jax.Array, value: jax.Array) -> jax.Array:
    """`value` forward, the identity's gradient into x backward: x + sg(value - x)."""
    return x + jax.lax.stop_gradient(value - x)


def l2_normalize(x: jax.Array, eps: float = 1e-6) -> jax.Array:
    """x / max(||x||, eps) along the last axis."""
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


def nearest_code(flat: jax.Array, codebook: jax.Array, cosine: bool = False) -> tuple[jax.Array, jax.Array]:
    """flat [N, D], codebook [K, D] -> (codes [N] of the nearest entries, those entries [N, D]).
    Euclidean: argmin ||x||^2 - 2 x.e + ||e||^2 (no [N, K, D] difference); cosine: argmax of the
    normalized dot product, returning the normalized entries."""
    if cosine:
        flat, codebook = l2_normalize(flat), l2_normalize(codebook)
        codes = jnp.argmax(flat @ codebook.T, axis=1)
    else:
        d2 = jnp.sum(flat**2, 1, keepdims=True) - 2 * flat @ codebook.T + jnp.sum(codebook**2, 1)[None]
        codes = jnp.argmin(d2, axis=1)
    return codes, codebook[codes]


def rotation_trick(e: jax.Array, q: jax.Array, eps: float = 1e-6) -> jax.Array:
    """The rotation trick (Fifty et al. 2024, eq. 4-5), an alternative to the straight-through
    estimator: e [..., D] (encoder output) -> a value equal to q [..., D] (its code vector),
    computed as sg(lambda R) e, where R is the rotation (Householder form) taking e/|e| to q/|q|
    and lambda = |q| / |e|. The decoder's gradient reaches e rotated and scaled by that fixed
    map (R^T lambda g) instead of copied unchanged:

        R e = e - 2 r (r . e) + 2 q_hat (e_hat . e),   r = (e_hat + q_hat) / |e_hat + q_hat|.
    """
    sg = jax.lax.stop_gradient
    e_norm = jnp.maximum(jnp.linalg.norm(e, axis=-1, keepdims=True), eps)
    q_norm = jnp.linalg.norm(q, axis=-1, keepdims=True)
    e_hat, q_hat = sg(e / e_norm), sg(q / jnp.maximum(q_norm, eps))
    r = e_hat + q_hat
    r = r / jnp.maximum(jnp.linalg.norm(r, axis=-1, keepdims=True), eps)
    rotated = (e - 2 * r * jnp.sum(r * e, axis=-1, keepdims=True)
               + 2 * q_hat * jnp.sum(e_hat * e, axis=-1, keepdims=True))
    return sg(q_norm / e_norm) * rotated
