"""Samplers compared on mnist5k: each model with its own prior and with samplers fitted after
training, scored by the toolkit's sample-quality metrics.

    python -m experiments.sampler_study [--quick] [--out DIR] [--samples N] [--seed S] [--only PRESET]

Models (their presets, trained once on the presets' budget and reused when DIR/<preset> holds the
final checkpoint): vqvae_mnist5k (uniform codes vs the code prior), vqvae_map_mnist5k (its 2-D
code map: uniform codes vs the gated PixelCNN vs the transformer), ae_mnist5k and quickstart (the
VAE) with normal / gmm / maf, and the VAE also with iaf and two_stage. Each sampler is fitted with
its defaults to the training split (`vae fit-sampler`), and scored at the run's last checkpoint on
N generated images (default 1,000) against the 1,000 test images: fd_classifier, precision and
recall (`vae.quality`, no CAS). Writes DIR/sampler_study.json, DIR/sampler_study.md (the table)
and DIR/figures/<preset>_<sampler>.png (64 samples each). --quick: tiny budgets everywhere, for
the test suite (its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import time

from experiments.common import finished_steps
from vae.config import apply_overrides
from vae.plots import image_grid, save_figure
from vae.presets import get_preset
from vae.quality import sample_quality
from vae.run import train
from vae.samplers import fit_sampler, fitted_samplers, load_sampler
from vae.samplers.store import StaleSamplerError, latent_source
from vae.trained import generate_arrays, load_run
from vae.trained.classifier import load_or_train_classifier

STUDY = (("vqvae_mnist5k", ("normal", "code_prior")),
         ("vqvae_map_mnist5k", ("normal", "pixelcnn", "code_prior")),
         ("ae_mnist5k", ("normal", "gmm", "maf")),
         ("quickstart", ("normal", "gmm", "maf", "iaf", "two_stage")))
QUICK_TRAIN = ["train.steps=20", "train.eval_every=20", "train.final_iwae_samples=0", "train.num_samples=4",
               "data.train_split=train[:512]", "model.hidden=32"]
QUICK_SAMPLER = {"gmm": {"components": 2}, "code_prior": {"steps": 10, "width": 16, "heads": 2, "depth": 1},
                 "pixelcnn": {"steps": 10, "features": 8, "depth": 1},
                 "two_stage": {"steps": 10, "hidden": (16,)}, "maf": {"steps": 10, "layers": 1, "hidden": (16,)},
                 "iaf": {"steps": 10, "layers": 1, "hidden": (16,)}}


def trained_run(preset: str, out: str, quick: bool):
    """The run of `preset` in out/<preset> at its final step, trained unless already there."""
    cfg = apply_overrides(get_preset(preset), ["train.progress=false", *(QUICK_TRAIN if quick else [])])
    run_dir = os.path.join(out, preset)
    if cfg.train.steps not in finished_steps(run_dir):
        train(cfg, run_dir, overwrite=True)
    return load_run(run_dir, step=cfg.train.steps)


def fitted(run, name: str, quick: bool, seed: int) -> dict:
    """The saved sampler's record, fitting it first when missing or stale."""
    if name == "normal":
        return {}
    if name in fitted_samplers(run.run_dir):
        try:
            return load_sampler(run, name).record
        except StaleSamplerError:
            pass
    return fit_sampler(run, name, QUICK_SAMPLER.get(name, {}) if quick else None, seed=seed)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/sampler_study")
    parser.add_argument("--samples", type=int, default=None, help="generated images per row (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny budgets (a smoke test of the study)")
    parser.add_argument("--only", action="append", choices=[p for p, _ in STUDY], metavar="PRESET",
                        help="run only this model's rows (repeatable; default: all)")
    args = parser.parse_args(argv)
    samples = args.samples or (64 if args.quick else 1000)
    rows = []
    for preset, samplers in STUDY:
        if args.only and preset not in args.only:
            continue
        run = trained_run(preset, args.out, args.quick)
        classifier = load_or_train_classifier(run, **({"steps": 20} if args.quick else {}))
        for name in samplers:
            t0 = time.perf_counter()
            record = fitted(run, name, args.quick, args.seed)
            fit_s = time.perf_counter() - t0
            q = sample_quality(run, num_samples=samples, seed=args.seed, classifier=classifier, cas=False,
                               sampler=name)
            latents, _ = latent_source(run, name)
            grid = generate_arrays(run, 64, seed=args.seed, latents=latents)
            save_figure(image_grid(grid, ncols=8, title=f"{preset}, sampler {name}"),
                        os.path.join(args.out, "figures", f"{preset}_{name}.png"))
            report = record.get("report", {})
            rows.append({"model": preset, "sampler": name, "fd_classifier": round(q["fd_classifier"], 2),
                         "precision": round(q["precision"], 3), "recall": round(q["recall"], 3),
                         "held_out_log_prob": report.get("held_out_log_prob", report.get("held_out_elbo")),
                         "fit_seconds": round(fit_s, 1), "checkpoint_step": run.step,
                         "num_generated": samples, "seed": args.seed})
            print(json.dumps(rows[-1]), flush=True)
    columns = ["model", "sampler", "fd_classifier", "precision", "recall", "held_out_log_prob", "fit_seconds"]
    table = "\n".join(["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)] + [
        "| " + " | ".join("—" if r[c] is None else (f"{r[c]:.2f}" if isinstance(r[c], float) and c ==
                                                      "held_out_log_prob" else str(r[c])) for c in columns) + " |"
        for r in rows])
    print("\n" + table)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "sampler_study.json"), "w") as f:
        json.dump({"rows": rows, "how": __doc__.strip().splitlines()[0], "quick": args.quick}, f, indent=2)
    with open(os.path.join(args.out, "sampler_study.md"), "w") as f:
        f.write(table + "\n")
    return rows


if __name__ == "__main__":
    main()
