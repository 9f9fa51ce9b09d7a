"""Latent geometry and memorization checks, free of any model: lerp, slerp, the Gaussian grid of
a decoded manifold, and exact nearest neighbours in pixel space."""

from __future__ import annotations

import math
import statistics

import jax
import jax.numpy as jnp
import numpy as np

from vae.data.pipeline import pad_rows
from vae.trained.inference import bucket_size


def slerp(a: np.ndarray, b: np.ndarray, t) -> np.ndarray:
    """Spherical linear interpolation between vectors a and b [d] at t (scalar or [T]).

    Returns [d] for scalar t, else [T, d]. Follows the great circle between the directions of a
    and b (norms are blended by the same weights, so unit vectors stay on the unit sphere);
    t = 0 and t = 1 give a and b exactly. Falls back to linear interpolation when a and b are
    nearly parallel (angle below 1e-4 rad), or either is zero, where slerp is ill-conditioned.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"slerp takes two vectors of the same length; got shapes {a.shape} and {b.shape}")
    t_arr = np.asarray(t, np.float64)
    tt = t_arr.reshape(-1, 1)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    omega = 0.0
    if na > 0 and nb > 0:
        omega = float(np.arccos(np.clip(np.dot(a / na, b / nb), -1.0, 1.0)))
    if omega < 1e-4 or math.sin(omega) < 1e-6:
        out = (1.0 - tt) * a + tt * b
    else:
        s = math.sin(omega)
        out = np.sin((1.0 - tt) * omega) / s * a + np.sin(tt * omega) / s * b
        # make the endpoints exact whatever the rounding of sin
        out = np.where(tt == 0.0, a, np.where(tt == 1.0, b, out))
    return out[0] if t_arr.ndim == 0 else out


def lerp(a: np.ndarray, b: np.ndarray, t) -> np.ndarray:
    """Linear interpolation (1 - t) a + t b; [d] for scalar t, else [T, d]."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    t_arr = np.asarray(t, np.float64)
    out = (1.0 - t_arr.reshape(-1, 1)) * a + t_arr.reshape(-1, 1) * b
    return out[0] if t_arr.ndim == 0 else out


def gaussian_grid(num: int, low: float = 0.05, high: float = 0.95) -> np.ndarray:
    """The standard normal's inverse CDF at `num` evenly spaced probabilities in [low, high]
    (Kingma & Welling 2014, fig. 4): [num] float64."""
    if not 0.0 < low < high < 1.0:
        raise ValueError(f"probabilities must satisfy 0 < low < high < 1, got {low}, {high}")
    nd = statistics.NormalDist()
    return np.array([nd.inv_cdf(p) for p in np.linspace(low, high, num)], np.float64)


@jax.jit
def _nn_chunk(samples, sample_sq, train, train_sq, valid, best_d2, best_idx, offset):
    """Merges one chunk of training images into the running k best (exact squared L2)."""
    k = best_d2.shape[1]
    approx = sample_sq[:, None] - 2.0 * samples @ train.T + train_sq[None, :]      # [S, T]
    approx = jnp.where(valid[None, :], approx, jnp.inf)
    kk = min(k, train.shape[0])
    _, cand = jax.lax.top_k(-approx, kk)                                            # [S, kk]
    diff = samples[:, None, :] - train[cand]                                        # [S, kk, P]
    exact = jnp.sum(diff * diff, axis=-1)
    exact = jnp.where(valid[cand], exact, jnp.inf)
    all_d2 = jnp.concatenate([best_d2, exact], axis=1)
    all_idx = jnp.concatenate([best_idx, cand + offset], axis=1)
    neg, pos = jax.lax.top_k(-all_d2, k)
    return -neg, jnp.take_along_axis(all_idx, pos, axis=1)


def nearest_neighbours(samples: np.ndarray, train_images: np.ndarray, k: int = 1, *,
                       batch_size: int = 256, chunk_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest training images of each sample by L2 distance in pixel space: a
    memorization check for generated samples.

    samples: [S, H, W, C]; train_images: [T, H, W, C]. Returns (indices [S, k] int, distances
    [S, k] float, ascending). Candidates come from the ||a||^2 - 2ab + ||b||^2 expansion, and
    their distances are recomputed exactly, so an image's distance to itself is exactly 0.
    Runs in jitted blocks of `batch_size` samples x `chunk_size` training images.
    """
    samples = np.asarray(samples, np.float32)
    train_images = np.asarray(train_images, np.float32)
    if samples.shape[1:] != train_images.shape[1:]:
        raise ValueError(f"samples {samples.shape[1:]} and training images {train_images.shape[1:]} differ in shape")
    num_train = train_images.shape[0]
    if not 1 <= k <= num_train:
        raise ValueError(f"k={k} must be in 1..{num_train} (the number of training images)")
    s_flat = samples.reshape(samples.shape[0], -1)
    t_flat = train_images.reshape(num_train, -1)
    chunk = min(chunk_size, bucket_size(num_train, chunk_size))
    chunks = []
    for start in range(0, num_train, chunk):
        block = t_flat[start:start + chunk]
        valid = np.arange(chunk) < block.shape[0]
        block = jnp.asarray(pad_rows(block, chunk))
        chunks.append((block, jnp.sum(block * block, axis=1), jnp.asarray(valid), start))
    indices, distances = [], []
    for s0 in range(0, s_flat.shape[0], batch_size):
        sb = s_flat[s0:s0 + batch_size]
        m = sb.shape[0]
        sb = jnp.asarray(pad_rows(sb, bucket_size(m, batch_size)))
        s_sq = jnp.sum(sb * sb, axis=1)
        best_d2 = jnp.full((sb.shape[0], k), jnp.inf, jnp.float32)
        best_idx = jnp.zeros((sb.shape[0], k), jnp.int32)
        for block, block_sq, valid, start in chunks:
            best_d2, best_idx = _nn_chunk(sb, s_sq, block, block_sq, valid, best_d2, best_idx, jnp.int32(start))
        indices.append(np.asarray(best_idx)[:m])
        distances.append(np.sqrt(np.maximum(np.asarray(best_d2)[:m], 0.0)))
    if not indices:
        return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
    return np.concatenate(indices).astype(np.int64), np.concatenate(distances)
