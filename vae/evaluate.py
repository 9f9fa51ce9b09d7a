"""`vae evaluate`: everything measured on a trained run, written to RUN_DIR/eval.json.

The ELBO on a split, the IWAE estimate of log p(x), latent diagnostics, and on request the
disentanglement metrics (`vae.metrics.disentanglement`) and sample quality (`vae.quality`).
The estimators themselves are in `vae.trained.estimators`.
"""

from __future__ import annotations

import inspect
import json
import os
import time
from typing import Any

import jax

from vae import registry
from vae.data.pipeline import eval_batches
from vae.data.sprites import Sprites
from vae.metrics import compute_all, encoder_mean_fn
from vae.metrics.disentanglement import METRICS
from vae.models.bits import bits_per_dim_convention
from vae.quality import sample_quality as run_sample_quality
from vae.run.card import write_model_card
from vae.step import evaluate, make_eval_step
from vae.trained.estimators import (
    codebook_diagnostics,
    encode_split,
    iwae_log_likelihood,
    latent_diagnostics,
    no_density_reason,
    reconstruction_error,
)
from vae.trained.rundir import EVAL_SEED, load_run
from vae.variants import build_objective
from vae.version import __version__

DISENTANGLEMENT_METRICS = ("beta_vae", "factor_vae", "mig", "dci", "sap", "modularity")


def evaluate_run(run_dir: str, *, iwae_samples: int = 5000, metrics: tuple[str, ...] = (), split: str | None = None,
                 seed: int = 0, step: int | None = None, num_points: int | None = None,
                 write: bool = True, sample_quality: bool = False,
                 sample_quality_samples: int | None = None, sampler: str | None = None,
                 metric_classifier: str = "liblinear_ovr") -> dict[str, Any]:
    """Evaluates a trained run and writes RUN_DIR/eval.json.

    Always: the ELBO and its terms on `split` (one z per image), the reconstruction error, the
    IWAE estimate of log p(x) with k = iwae_samples (0 skips it), and the latent diagnostics.
    Bits/dim take the 8-bit dequantization offset only for a density on 8-bit (or binary) data,
    the plain nll / (D ln 2) on continuous data such as vectors; each entry's
    `bits_per_dim_convention` says which.
    Variants without a density (autoencoders) have no ELBO or IWAE: 'objective' holds their
    loss terms instead, and 'iwae' says why it is absent. `metrics`: disentanglement
    metrics from DISENTANGLEMENT_METRICS, on datasets with ground-truth factors (`sprites`),
    with disentanglement_lib's defaults unless `num_points` scales the numbers of points down;
    metric_classifier: the logistic regression of explicitness and the BetaVAE score,
    'liblinear_ovr' (the published study's) or 'multinomial' (scikit-learn >= 1.5's). Every entry
    records how it was computed (k, number of examples, seed, checkpoint step).
    sampler: with sample_quality, generate from this fitted sampler (RUN_DIR/samplers/<sampler>/)
    instead of the prior. A model with codes also gets its codebook usage on the split
    ('codebook': codes used, perplexity, dead codes).
    """
    unknown = sorted(set(metrics) - set(DISENTANGLEMENT_METRICS))
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; allowed: {', '.join(DISENTANGLEMENT_METRICS)}")
    if iwae_samples < 0:
        raise ValueError(f"iwae_samples={iwae_samples} must be >= 0")
    if sampler is not None and not sample_quality:
        raise ValueError(f"sampler={sampler!r} is used by the sample-quality metrics only: ask for them too "
                         f"(--sample-quality)")
    run = load_run(run_dir, step=step, split=split)
    cfg = run.config
    labels = run.test.labels
    result: dict[str, Any] = {
        "run_dir": os.path.abspath(run_dir), "split": split or cfg.data.test_split, "checkpoint_step": run.step,
        "num_examples": int(run.test_images.shape[0]), "seed": seed, "toolkit_version": __version__,
    }
    t0 = time.perf_counter()
    objective = build_objective(cfg)
    eval_step = make_eval_step(run.model, objective)
    elbo = evaluate(eval_step, run.params, eval_batches(run.test_images, labels, cfg.train.eval_batch_size),
                    jax.random.PRNGKey(EVAL_SEED + seed), run.extra, run.step)
    variant = registry.get(cfg.model.name)
    if variant.has_density:
        result["elbo"] = {**elbo, "seconds": time.perf_counter() - t0,
                          "method": "one reparameterized sample of z per image; closed-form KL where the prior has one",
                          "bits_per_dim_convention": bits_per_dim_convention(getattr(run.model, "likelihood", None))}
    else:
        result["objective"] = {**elbo, "seconds": time.perf_counter() - t0,
                               "method": "the training objective's terms on the split (no ELBO: no density)"}
    result["reconstruction"] = reconstruction_error(run.model, run.params, run.test_images, labels)
    if iwae_samples and not variant.has_density:
        result["iwae"] = {"absent": no_density_reason(cfg.model.name)}
    elif iwae_samples:
        t0 = time.perf_counter()
        result["iwae"] = {**iwae_log_likelihood(run.model, run.params, run.test_images, iwae_samples, labels=labels,
                                                seed=seed),
                          "method": "importance-weighted bound, Burda et al. 2016, eq. 8", "seconds": 0.0}
        result["iwae"]["seconds"] = time.perf_counter() - t0
    means, log_vars = encode_split(run.model, run.params, run.test_images, labels=labels)
    result["latent"] = latent_diagnostics(means, log_vars, seed=seed)
    if hasattr(run.model, "encode_codes"):
        result["codebook"] = codebook_diagnostics(run.model, run.params, run.test_images)
    if metrics:
        result["disentanglement"] = _disentanglement(run, metrics, seed, num_points, metric_classifier)
    if sample_quality:  # fd_classifier, precision/recall, label bias, CAS (see vae.quality)
        result["sample_quality"] = run_sample_quality(run, num_samples=sample_quality_samples, seed=seed,
                                                      sampler=sampler, verbose=True)
    if write:
        with open(os.path.join(run_dir, "eval.json"), "w") as f:
            json.dump(result, f, indent=2)
        write_model_card(run_dir)
    return result


def _disentanglement(run, metrics, seed: int, num_points: int | None, classifier: str) -> dict:
    if run.config.data.name != "sprites":
        raise ValueError(f"disentanglement metrics need a dataset with ground-truth factors that can be rendered "
                         f"(the built-in 'sprites'); this run used {run.config.data.name!r}")
    if getattr(run.model, "num_classes", 0):
        raise ValueError("disentanglement metrics take the encoder mean of images alone; conditional models need labels")
    overrides = {"classifier": classifier}
    if num_points:
        overrides.update(num_train=num_points, num_eval=max(num_points // 2, 1), num_test=max(num_points // 2, 1),
                         num_variance_estimate=num_points)
    accepted = set().union(*(inspect.signature(METRICS[m]).parameters for m in metrics))
    overrides = {k: v for k, v in overrides.items() if k in accepted}
    return compute_all(encoder_mean_fn(run.model, run.params), Sprites(), seed=seed, metrics=tuple(metrics), **overrides)
