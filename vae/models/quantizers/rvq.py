"""Residual vector quantization (Zeghidour et al. 2021, SoundStream, algorithm 1): Q codebooks
quantize in turn what the previous ones left,

    r_0 = z,   c_q = nearest(r_{q-1}, C_q),   r_q = r_{q-1} - C_q[c_q],   z_q = sum_q C_q[c_q],

so Q codebooks of K entries address K^Q vectors. Gradients pass straight through the sum."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vae.models.quantizers.vq import nearest_code, straight_through


def residual_quantize(z: jax.Array, codebooks: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """z [N, D], codebooks [Q, K, D] -> (z_q [N, D] straight-through, codes [N, Q], the residuals
    each codebook saw [Q, N, D] (for EMA updates of codebook q toward them), and the entries each
    chose [Q, N, D] (with their gradient to the codebooks, for a codebook loss))."""
    residual, total, codes, seen, chosen = z, jnp.zeros_like(z), [], [], []
    for q in range(codebooks.shape[0]):
        seen.append(residual)
        c, entries = nearest_code(residual, codebooks[q])
        codes.append(c)
        chosen.append(entries)
        total = total + entries
        residual = residual - entries
    return straight_through(z, total), jnp.stack(codes, axis=-1), jnp.stack(seen), jnp.stack(chosen)
