"""Likelihood estimates and latent diagnostics of a trained VAE.

Every function takes a model, its params and a split as images [N, H, W, C] (already
binarized if the model was trained on binary data) and returns plain floats, in nats per
example unless named otherwise.
"""

from __future__ import annotations

import functools
import json
import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vae.data.pipeline import pad_rows
from vae.models import VAE
from vae.models.distributions import bits_per_dim


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield start, min(start + batch_size, n)


def _iwae_batch(model: VAE, params: Any, x: jax.Array, y: jax.Array | None, rng: jax.Array, num_chunks: int,
                chunk_size: int):
    """log (1/k) sum_i p(x, z_i) / q(z_i | x) for k = num_chunks * chunk_size: [batch].

    Uses the model's own `log_importance_weights` (so hierarchical and conditional models get
    their own weights); chunks of samples are folded into a running logsumexp, so memory is
    that of one chunk.
    """
    variables = {"params": params}

    def body(acc, key):
        lw = model.apply(variables, x, chunk_size, y, rngs={"sample": key}, method=type(model).log_importance_weights)
        return jnp.logaddexp(acc, jax.nn.logsumexp(lw, axis=0)), None

    init = jnp.full(x.shape[:1], -jnp.inf, jnp.float32)
    total, _ = jax.lax.scan(body, init, jax.random.split(rng, num_chunks))
    return total - math.log(num_chunks * chunk_size)


def iwae_log_likelihood(model: VAE, params: Any, images: np.ndarray, num_samples: int = 5000, *,
                        labels: np.ndarray | None = None, batch_size: int = 100, chunk_size: int = 100,
                        seed: int = 0) -> dict[str, float]:
    """Importance-weighted estimate of log p(x) (Burda et al. 2016, eq. 8) with k = num_samples
    samples from q(z|x) per image; a lower bound that tightens as k grows.

    Memory is bounded by batch_size * chunk_size decoded images, whatever k and N (the chunk
    used is the largest divisor of k not above chunk_size).
    For a conditional model this is log p(x | y) given `labels`.
    Returns log_px (mean over the split, nats), nll, bits_per_dim, k, and the per-example
    standard error of the mean.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples={num_samples} must be >= 1")
    # the largest chunk that divides k, so every chunk has the same compiled shape
    chunk_size = max(c for c in range(1, min(chunk_size, num_samples) + 1) if num_samples % c == 0)
    num_chunks = num_samples // chunk_size
    n = images.shape[0]
    batch_size = min(batch_size, n)
    key = jax.random.PRNGKey(seed)
    # compiled per call (not a static-arg cache), so user modules need not be hashable
    batch_fn = jax.jit(functools.partial(_iwae_batch, model, num_chunks=num_chunks, chunk_size=chunk_size))
    values = []
    for i, (start, stop) in enumerate(_batches(n, batch_size)):
        x = jnp.asarray(pad_rows(images[start:stop], batch_size))
        y = None
        if getattr(model, "num_classes", 0):
            if labels is None:
                raise ValueError("a conditional model needs `labels` for its log-likelihood")
            y = jnp.asarray(pad_rows(labels[start:stop], batch_size))
        lp = batch_fn(params, x, y, jax.random.fold_in(key, i))
        values.append(np.asarray(lp)[: stop - start])
    log_px = np.concatenate(values).astype(np.float64)
    num_dims = int(np.prod(images.shape[1:]))
    mean = float(log_px.mean())
    return {
        "log_px": mean,
        "nll": -mean,
        "bits_per_dim": bits_per_dim(-mean, num_dims,
                                     continuous_8bit=not getattr(getattr(model, "likelihood", None), "discrete", True)),
        "k": int(num_samples),
        "stderr": float(log_px.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0,
        "num_examples": int(n),
    }


def _encode(model: VAE, params: Any, x: jax.Array, y: jax.Array | None):
    q = model.apply({"params": params}, x, y, method=type(model).encode)
    return q.mean, q.log_var


def encode_split(model: VAE, params: Any, images: np.ndarray, batch_size: int = 500,
                 labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances of a split: [N, d] each (labels: for conditional models)."""
    n = images.shape[0]
    batch_size = min(batch_size, n)
    encode = jax.jit(functools.partial(_encode, model))
    conditional = bool(getattr(model, "num_classes", 0))
    if conditional and labels is None:
        raise ValueError("a conditional model needs `labels` to encode")
    means, log_vars = [], []
    for start, stop in _batches(n, batch_size):
        y = jnp.asarray(pad_rows(labels[start:stop], batch_size)) if conditional else None
        m, lv = encode(params, jnp.asarray(pad_rows(images[start:stop], batch_size)), y)
        means.append(np.asarray(m)[: stop - start])
        log_vars.append(np.asarray(lv)[: stop - start])
    return np.concatenate(means), np.concatenate(log_vars)


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
    """
    means = np.asarray(means, np.float64)
    log_vars = np.asarray(log_vars, np.float64)
    n, d = means.shape
    variance = np.exp(log_vars)
    activity = means.var(axis=0)
    kl_per_dim = 0.5 * (variance + means**2 - 1.0 - log_vars).mean(axis=0)
    rng = np.random.default_rng(seed)
    mi_terms = []
    for _ in range(mi_samples):
        z = means + np.sqrt(variance) * rng.standard_normal(means.shape)          # [N, d]
        log_q_own = np.sum(-0.5 * (math.log(2 * math.pi) + log_vars + (z - means) ** 2 / variance), axis=1)
        log_q_agg = np.empty(n)
        for start, stop in _batches(n, 256):
            zz = z[start:stop, None, :]                                             # [b, 1, d]
            lq = np.sum(-0.5 * (math.log(2 * math.pi) + log_vars[None] + (zz - means[None]) ** 2 / variance[None]), -1)
            top = lq.max(axis=1, keepdims=True)
            log_q_agg[start:stop] = (top[:, 0] + np.log(np.exp(lq - top).sum(axis=1))) - math.log(n)
        mi_terms.append(np.mean(log_q_own - log_q_agg))
    collapsed = kl_per_dim < 0.01
    return {
        "active_units": int(np.sum(activity > active_threshold)),
        "active_threshold": active_threshold,
        "activity_per_dim": activity.tolist(),
        "kl_per_dim": kl_per_dim.tolist(),
        "kl": float(kl_per_dim.sum()),
        "mutual_information": float(np.mean(mi_terms)),
        "mutual_information_max": math.log(n),
        "collapsed_dims": int(collapsed.sum()),
        "latent_dim": int(d),
    }


DISENTANGLEMENT_METRICS = ("beta_vae", "factor_vae", "mig", "dci", "sap", "modularity")


def evaluate_run(run_dir: str, *, iwae_samples: int = 5000, metrics: tuple[str, ...] = (), split: str | None = None,
                 seed: int = 0, step: int | None = None, num_points: int | None = None,
                 write: bool = True, sample_quality: bool = False,
                 sample_quality_samples: int | None = None) -> dict[str, Any]:
    """Evaluates a trained run and writes RUN_DIR/eval.json.

    Always: the ELBO and its terms on `split` (one z per image), the IWAE estimate of log p(x)
    with k = iwae_samples (0 skips it), and the latent diagnostics. `metrics`: disentanglement
    metrics from DISENTANGLEMENT_METRICS, on datasets with ground-truth factors (`sprites`),
    with disentanglement_lib's defaults unless `num_points` scales the numbers of points down.
    Every entry records how it was computed (k, number of examples, seed, checkpoint step).
    """
    import time

    import vae
    from vae.objectives import build_objective
    from vae.run import EVAL_SEED, load_run
    from vae.data.pipeline import eval_batches
    from vae.train import evaluate, make_eval_step

    unknown = sorted(set(metrics) - set(DISENTANGLEMENT_METRICS))
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; allowed: {', '.join(DISENTANGLEMENT_METRICS)}")
    if iwae_samples < 0:
        raise ValueError(f"iwae_samples={iwae_samples} must be >= 0")
    run = load_run(run_dir, step=step, split=split)
    cfg = run.config
    labels = run.test.labels
    result: dict[str, Any] = {
        "run_dir": os.path.abspath(run_dir), "split": split or cfg.data.test_split, "checkpoint_step": run.step,
        "num_examples": int(run.test_images.shape[0]), "seed": seed, "toolkit_version": vae.__version__,
    }
    t0 = time.perf_counter()
    objective = build_objective(cfg.model, cfg.objective, total_steps=cfg.train.steps)
    eval_step = make_eval_step(run.model, objective)
    elbo = evaluate(eval_step, run.params, eval_batches(run.test_images, labels, cfg.train.eval_batch_size),
                    jax.random.PRNGKey(EVAL_SEED + seed), run.extra, run.step)
    result["elbo"] = {**elbo, "method": "one reparameterized sample of z per image; closed-form KL where the prior has one",
                      "seconds": time.perf_counter() - t0}
    if iwae_samples:
        t0 = time.perf_counter()
        result["iwae"] = {**iwae_log_likelihood(run.model, run.params, run.test_images, iwae_samples, labels=labels,
                                                seed=seed),
                          "method": "importance-weighted bound, Burda et al. 2016, eq. 8", "seconds": 0.0}
        result["iwae"]["seconds"] = time.perf_counter() - t0
    means, log_vars = encode_split(run.model, run.params, run.test_images, labels=labels)
    result["latent"] = latent_diagnostics(means, log_vars, seed=seed)
    if metrics:
        result["disentanglement"] = _disentanglement(run, metrics, seed, num_points)
    if sample_quality:  # fd_classifier, precision/recall, label bias, CAS (see vae.quality)
        from vae.quality import sample_quality as _sample_quality

        result["sample_quality"] = _sample_quality(run, num_samples=sample_quality_samples, seed=seed, verbose=True)
    if write:
        with open(os.path.join(run_dir, "eval.json"), "w") as f:
            json.dump(result, f, indent=2)
    return result


def _disentanglement(run, metrics, seed: int, num_points: int | None) -> dict:
    from vae.metrics import compute_all, encoder_mean_fn

    if run.config.data.name != "sprites":
        raise ValueError(f"disentanglement metrics need a dataset with ground-truth factors that can be rendered "
                         f"(the built-in 'sprites'); this run used {run.config.data.name!r}")
    if getattr(run.model, "num_classes", 0):
        raise ValueError("disentanglement metrics take the encoder mean of images alone; conditional models need labels")
    from vae.data.sprites import Sprites

    overrides = {}
    if num_points:
        overrides = {"num_train": num_points, "num_eval": max(num_points // 2, 1), "num_test": max(num_points // 2, 1),
                     "num_variance_estimate": num_points}
    import inspect

    from vae.metrics.disentanglement import METRICS

    accepted = set().union(*(inspect.signature(METRICS[m]).parameters for m in metrics))
    overrides = {k: v for k, v in overrides.items() if k in accepted}
    return compute_all(encoder_mean_fn(run.model, run.params), Sprites(), seed=seed, metrics=tuple(metrics), **overrides)
