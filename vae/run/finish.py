"""Finishing a run: the final estimates on the test split (IWAE with train.final_iwae_samples,
latent diagnostics), the run's figures, and summary.json."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from vae import registry
from vae.explore import Explorer, make_figure, write_run_figures
from vae.models.bits import bits_per_dim_convention
from vae.plots import save_figure
from vae.step import count_params
from vae.trained.estimators import encode_split, iwae_log_likelihood, latent_diagnostics
from vae.trained.rundir import EVAL_SEED


def final_estimates(config, model, params, test_ds, test_images) -> dict[str, Any]:
    """{'iwae': the IWAE estimate with k = train.final_iwae_samples (absent when 0, or when the
    variant defines no density), 'latent': latent diagnostics, 'bits_per_dim_convention': how
    bits/dim are formed for this likelihood and data} on the prepared test split."""
    tc = config.train
    final: dict[str, Any] = {"bits_per_dim_convention": bits_per_dim_convention(getattr(model, "likelihood", None))}
    if tc.final_iwae_samples and registry.get(config.model.name).has_density:
        final["iwae"] = iwae_log_likelihood(model, params, test_images, tc.final_iwae_samples, labels=test_ds.labels,
                                            chunk_size=min(tc.final_iwae_samples, 100), seed=EVAL_SEED)
    means, log_vars = encode_split(model, params, test_images, labels=test_ds.labels)
    final["latent"] = latent_diagnostics(means, log_vars)
    return final


def run_figures(config, model, params, test_ds, test_images, out_dir: str) -> dict[str, str]:
    """Writes samples, reconstructions, traversals and interpolations into OUT_DIR/figures/;
    returns {name: path}. Vector data get none ({}): these figures draw images."""
    if test_ds.info.vectors:
        return {}
    explorer = Explorer(model, params, data=dataclasses.replace(test_ds, images=test_images))
    figures = {kind: save_figure(make_figure(explorer, kind, steps=steps, seed=config.seed),
                                 os.path.join(out_dir, "figures", f"{kind}.png"))
               for kind, steps in (("samples", config.train.num_samples), ("reconstructions", None))}
    figures.update(write_run_figures(explorer, out_dir, seed=config.seed))
    return figures


def write_summary(out_dir: str, config, state, test_metrics: dict, final: dict, figures: dict, *, wall_time: float,
                  train_steps_per_s: float | None, compile_time: float, best_step: int | None, devices: list[str],
                  splits: int, write: bool = True) -> dict:
    """Writes OUT_DIR/summary.json (unless `write` is False: a multi-process job's other processes)
    and returns it."""
    summary = {
        "name": config.name,
        "dataset": config.data.name,
        "steps": int(state.step),
        "test": test_metrics,
        # None for variants without a density (autoencoders): they have no ELBO, KL or bits/dim
        "test_elbo": test_metrics.get("elbo"),
        "test_recon": test_metrics["recon"],
        "test_kl": test_metrics.get("kl"),
        "test_bits_per_dim": test_metrics.get("bits_per_dim"),
        "bits_per_dim_convention": (final.get("bits_per_dim_convention")
                                    if test_metrics.get("bits_per_dim") is not None else None),
        "test_iwae": final.get("iwae"),
        "has_density": registry.get(config.model.name).has_density,
        "active_units": final["latent"]["active_units"],
        "latent": final["latent"],
        "wall_time_s": wall_time,
        "train_steps_per_s": train_steps_per_s,
        "compile_time_s": compile_time,
        "num_params": count_params(state.params),
        "best_step": best_step,
        "devices": devices,
        "batch_splits": splits,
        "figures": {k: os.path.relpath(v, out_dir) for k, v in figures.items()},
    }
    if write:
        with open(os.path.join(out_dir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
    return summary
