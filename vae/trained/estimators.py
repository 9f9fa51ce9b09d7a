"""Estimators on a trained model: the IWAE log-likelihood, encoding a split, latent diagnostics.

Every function takes a model, its params and a split as images [N, H, W, C] (already
binarized if the model was trained on binary data) and returns plain floats / numpy arrays, in
nats per example unless named otherwise. Model calls go through `TrainedModel`, so repeated
calls on the same model compile once per shape.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vae.models.bits import bits_per_dim, bits_per_dim_convention, takes_8bit_offset
from vae.models.quantizers.codebook import level_usage
from vae.trained.inference import TrainedModel


def iwae_log_likelihood(model: Any, params: Any, images: np.ndarray, num_samples: int = 5000, *,
                        labels: np.ndarray | None = None, batch_size: int = 100, chunk_size: int = 100,
                        seed: int = 0) -> dict[str, Any]:
    """Importance-weighted estimate of log p(x) (Burda et al. 2016, eq. 8) with k = num_samples
    samples from q(z|x) per image; a lower bound in expectation that tightens as k grows.

    Memory is bounded by batch_size * chunk_size decoded images, whatever k and N (the chunk
    used is the largest divisor of k not above chunk_size). For a conditional model this is
    log p(x | y) given `labels`. The first call compiles; later calls on the same model object
    with the same shapes reuse the compiled function.

    Returns log_px (mean over the split, nats), nll, bits_per_dim (with the 8-bit offset only for
    a density on 8-bit data; bits_per_dim_convention says which), k, num_examples, and two
    different errors:
      mc_stderr: the Monte-Carlo standard error of log_px as an estimate of the split's mean
        IWAE bound at this k: sqrt(sum_n v_n) / N with v_n = (k sum w^2 / (sum w)^2 - 1) / (k - 1),
        the delta-method variance of each example's log-mean-weight (None for k = 1). It says how
        much another seed would move the number; it does not cover the bound's gap to log p(x)
        and is optimistic when the weights are heavy-tailed;
      example_stderr: the standard error of the mean over examples (std of the per-example
        estimates / sqrt(N)): how much another sample of N test images would move it.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples={num_samples} must be >= 1")
    conditional = bool(getattr(model, "num_classes", 0))
    if conditional and labels is None:
        raise ValueError("a conditional model needs `labels` for its log-likelihood")
    n = images.shape[0]
    log_px, log_ratio, _ = TrainedModel(model, params).iwae(
        images, labels if conditional else None, num_samples, jax.random.PRNGKey(seed), chunk_size=chunk_size,
        batch_size=batch_size)
    log_px = log_px.astype(np.float64)
    mean = float(log_px.mean())
    mc_stderr = None
    if num_samples > 1:
        k = num_samples
        variances = np.maximum(k * np.exp(log_ratio.astype(np.float64)) - 1.0, 0.0) / (k - 1)
        mc_stderr = float(math.sqrt(variances.sum()) / n)
    return {
        "log_px": mean,
        "nll": -mean,
        "bits_per_dim": bits_per_dim(-mean, int(np.prod(images.shape[1:])),
                                     continuous_8bit=takes_8bit_offset(getattr(model, "likelihood", None))),
        "bits_per_dim_convention": bits_per_dim_convention(getattr(model, "likelihood", None)),
        "k": int(num_samples),
        "mc_stderr": mc_stderr,
        "example_stderr": float(log_px.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0,
        "num_examples": int(n),
    }


def encode_split(model: Any, params: Any, images: np.ndarray, batch_size: int = 500,
                 labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances of a split: [N, d] each (labels: for conditional models;
    log-variances are -inf for a point-mass posterior)."""
    conditional = bool(getattr(model, "num_classes", 0))
    if conditional and labels is None:
        raise ValueError("a conditional model needs `labels` to encode")
    images = np.asarray(images)
    bs = min(batch_size, images.shape[0])
    return TrainedModel(model, params, batch_size=bs, pad="batch").encode(images, labels if conditional else None)


def codebook_diagnostics(model: Any, params: Any, images: np.ndarray, batch_size: int = 500) -> dict[str, Any]:
    """Codebook usage of a discrete model (one with `codebook_size` and `encode_codes`) on a split:
    codes used, perplexity exp(H) of the code frequencies (codebook_size when uniform), dead codes
    (residual VQ: its levels' codes pooled, each level's code k counted as its own)."""
    images = np.asarray(images, np.float32)
    trained = TrainedModel(model, params, batch_size=min(batch_size, images.shape[0]), pad="batch")
    codes = trained.map_apply("encode_codes", lambda m, x, y: m.encode_codes(x, y), images)
    size, levels = int(model.codebook_size), int(getattr(model, "tokens_per_latent", 1))
    usage = level_usage(jnp.asarray(codes).reshape(codes.shape[0], -1, levels), size)
    return {**{k: float(v) for k, v in usage.items()}, "num_codes": size * levels,
            "codes_per_image": int(codes.shape[1]), "num_examples": int(images.shape[0])}


def latent_diagnostics(means: np.ndarray, log_vars: np.ndarray, *, active_threshold: float = 0.01,
                       mi_samples: int = 1, seed: int = 0) -> dict[str, Any]:
    """Per-dimension and aggregate statistics of q(z|x) over a split (standard-normal prior).

    means, log_vars: [N, d].
    - active units (Burda et al. 2016): dimensions with Cov_x(E_q[z_i]) > active_threshold;
    - kl_per_dim: E_x KL(q(z_i|x) || N(0, 1)), nats;
    - mutual information I(x; z) under the empirical data distribution (Hoffman & Johnson 2016):
      E_x E_q(z|x)[log q(z|x) - log q(z)], with q(z) the mixture of the N posteriors,
      estimated with `mi_samples` draws per x; at most log N;
    - collapse summary: how many dimensions carry less than 0.01 nats of KL.
    A point-mass posterior (log_vars all -inf, e.g. a VQ-VAE's) has no KL to a continuous prior
    and no density for the MI: those entries are None, with `point_mass` True.
    """
    means = np.asarray(means, np.float64)
    log_vars = np.asarray(log_vars, np.float64)
    n, d = means.shape
    activity = means.var(axis=0)
    out: dict[str, Any] = {
        "active_units": int(np.sum(activity > active_threshold)),
        "active_threshold": active_threshold,
        "activity_per_dim": activity.tolist(),
        "latent_dim": int(d),
    }
    if np.isneginf(log_vars).all():
        return {**out, "point_mass": True, "kl_per_dim": None, "kl": None, "mutual_information": None,
                "mutual_information_max": math.log(n), "collapsed_dims": None}
    variance = np.exp(log_vars)
    kl_per_dim = 0.5 * (variance + means**2 - 1.0 - log_vars).mean(axis=0)
    rng = np.random.default_rng(seed)
    mi_terms = []
    for _ in range(mi_samples):
        z = means + np.sqrt(variance) * rng.standard_normal(means.shape)          # [N, d]
        log_q_own = np.sum(-0.5 * (math.log(2 * math.pi) + log_vars + (z - means) ** 2 / variance), axis=1)
        log_q_agg = np.empty(n)
        for start in range(0, n, 256):
            stop = min(start + 256, n)
            zz = z[start:stop, None, :]                                             # [b, 1, d]
            lq = np.sum(-0.5 * (math.log(2 * math.pi) + log_vars[None] + (zz - means[None]) ** 2 / variance[None]), -1)
            top = lq.max(axis=1, keepdims=True)
            log_q_agg[start:stop] = (top[:, 0] + np.log(np.exp(lq - top).sum(axis=1))) - math.log(n)
        mi_terms.append(np.mean(log_q_own - log_q_agg))
    collapsed = kl_per_dim < 0.01
    return {
        **out,
        "point_mass": False,
        "kl_per_dim": kl_per_dim.tolist(),
        "kl": float(kl_per_dim.sum()),
        "mutual_information": float(np.mean(mi_terms)),
        "mutual_information_max": math.log(n),
        "collapsed_dims": int(collapsed.sum()),
    }


def no_density_reason(name: str) -> str:
    """Why a variant has no IWAE estimate, in words for eval.json and the command line."""
    return (f"model.name={name!r} is a deterministic autoencoder: it defines no density p(x), so there is no "
            f"ELBO or IWAE log-likelihood; compare it by reconstruction error and sample quality")


def reconstruction_error(model: Any, params: Any, images: np.ndarray, labels: np.ndarray | None = None) -> dict:
    """Squared error between images [N, H, W, C] and the likelihood's mean at the posterior mean
    (`reconstruct`): per pixel and per image (summed over pixels), means over the split."""
    recon = TrainedModel(model, params).reconstruct(images, labels if getattr(model, "num_classes", 0) else None)
    sq = (np.asarray(recon, np.float64) - np.asarray(images, np.float64)) ** 2
    per_image = sq.reshape(sq.shape[0], -1).sum(axis=1)
    return {"mse_per_pixel": float(sq.mean()), "mse_per_image": float(per_image.mean()),
            "num_examples": int(images.shape[0]),
            "method": "decoder mean at the posterior mean vs the split's images (as the model saw them)"}
