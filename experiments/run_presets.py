"""Trains presets one after another and prints a table: preset, steps, wall time, test loss/ELBO.

    python -m experiments.run_presets [--presets a,b,...] [--zoo] [--zoo3] [--steps N] [--sprites-steps N]
                                      [--evaluate] [--iwae-samples K] [--out DIR]

--zoo: the presets of vae/presets/zoo.py plus quickstart (the model zoo on equal terms).
--zoo3: the same for vae/presets/zoo3.py (posteriors, geometries, bounds, hierarchies).
--evaluate: after training, `vae evaluate --sample-quality` at the last step of each run (reconstruction error,
fd_classifier, precision / recall, IWAE with k = --iwae-samples where the variant has a density).
Writes DIR/presets_table.json. Each run goes to DIR/<preset> (replaced if present).
"""

from __future__ import annotations

import argparse
import json
import os

from vae.config import apply_overrides
from vae.evaluate import evaluate_run
from vae.presets import get_preset, list_presets, zoo, zoo3
from vae.run import train


def _round(value, digits=2):
    return None if value is None else round(value, digits)


def evaluated(run_dir: str, iwae_samples: int, step: int) -> dict:
    """The columns `vae evaluate --sample-quality --step STEP` adds to a row. The table evaluates
    the last step (the budget's end), not the default best-loss checkpoint: an adversarial
    term's or a schedule's loss does not compare across steps."""
    result = evaluate_run(run_dir, iwae_samples=iwae_samples, sample_quality=True, step=step)
    quality, iwae = result["sample_quality"], result.get("iwae", {})
    return {"mse_per_image": _round(result["reconstruction"]["mse_per_image"]),
            "eval_iwae": _round(iwae.get("log_px")), "eval_iwae_k": iwae.get("k"),
            "fd_classifier": _round(quality["fd_classifier"]), "precision": _round(quality["precision"], 3),
            "recall": _round(quality["recall"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="", help="comma-separated names (default: all offline presets)")
    parser.add_argument("--steps", type=int, default=None, help="override train.steps for every preset")
    parser.add_argument("--sprites-steps", type=int, default=None, help="override train.steps for sprites presets")
    parser.add_argument("--zoo", action="store_true", help="the zoo presets (vae/presets/zoo.py) and quickstart")
    parser.add_argument("--zoo3", action="store_true", help="the presets of vae/presets/zoo3.py and quickstart")
    parser.add_argument("--evaluate", action="store_true", help="add vae evaluate --sample-quality columns")
    parser.add_argument("--iwae-samples", type=int, default=1000, help="k of the evaluation's IWAE (--evaluate)")
    parser.add_argument("--out", default="runs/presets")
    args = parser.parse_args()
    default = [n for n, _ in list_presets()]
    if args.zoo or args.zoo3:
        default = ["quickstart", *(zoo.PRESETS if args.zoo else ()), *(zoo3.PRESETS if args.zoo3 else ())]
    names = [n for n in args.presets.split(",") if n] or default
    rows = []
    for name in names:
        cfg = get_preset(name)
        if cfg.data.name not in ("mnist5k", "sprites"):
            print(f"skipping {name}: needs the TFDS dataset {cfg.data.name!r}")
            continue
        overrides = ["train.progress=false"]
        steps = args.sprites_steps if cfg.data.name == "sprites" and args.sprites_steps else args.steps
        if steps:
            overrides += [f"train.steps={steps}", f"train.eval_every={steps}"]
        cfg = apply_overrides(cfg, overrides)
        s = train(cfg, os.path.join(args.out, name), overwrite=True)
        row = {"preset": name, "steps": s["steps"], "wall_time_s": round(s["wall_time_s"], 1),
               "steps_per_s": round(s["train_steps_per_s"] or 0, 1), "test_loss": round(s["test"]["loss"], 2),
               "test_elbo": _round(s["test_elbo"]), "test_recon": _round(s["test_recon"]),
               "test_iwae": None if not s["test_iwae"] else round(s["test_iwae"]["log_px"], 2),
               "iwae_k": None if not s["test_iwae"] else s["test_iwae"]["k"], "active_units": s["active_units"]}
        if args.evaluate:
            row.update(evaluated(os.path.join(args.out, name), args.iwae_samples, s["steps"]))
        rows.append(row)
        print(json.dumps(row), flush=True)
    columns = ["preset", "steps", "wall_time_s", "steps_per_s", "test_loss", "test_elbo", "test_recon", "test_iwae",
               "iwae_k", "active_units"]
    if args.evaluate:
        columns += ["mse_per_image", "eval_iwae", "eval_iwae_k", "fd_classifier", "precision", "recall"]
    print("\n| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for r in rows:
        print("| " + " | ".join("—" if r[c] is None else str(r[c]) for c in columns) + " |")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "presets_table.json"), "w") as f:
        json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
