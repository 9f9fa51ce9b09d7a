"""Trains presets one after another and prints a table: preset, steps, wall time, test loss/ELBO.

    python -m experiments.run_presets [--presets a,b,...] [--steps N] [--sprites-steps N] [--out DIR]

Writes DIR/presets_table.json. Each run goes to DIR/<preset> (replaced if present).
"""

from __future__ import annotations

import argparse
import json
import os

from vae.config import apply_overrides
from vae.presets import get_preset, list_presets
from vae.run import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="", help="comma-separated names (default: all offline presets)")
    parser.add_argument("--steps", type=int, default=None, help="override train.steps for every preset")
    parser.add_argument("--sprites-steps", type=int, default=None, help="override train.steps for sprites presets")
    parser.add_argument("--out", default="runs/presets")
    args = parser.parse_args()
    names = [n for n in args.presets.split(",") if n] or [n for n, _ in list_presets()]
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
               "test_elbo": round(s["test_elbo"], 2),
               "test_iwae": None if not s["test_iwae"] else round(s["test_iwae"]["log_px"], 2),
               "iwae_k": None if not s["test_iwae"] else s["test_iwae"]["k"], "active_units": s["active_units"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| preset | steps | wall time (s) | steps/s | test loss | test ELBO | test IWAE (k) | active units |\n"
          "|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['preset']} | {r['steps']} | {r['wall_time_s']} | {r['steps_per_s']} | {r['test_loss']} | "
              f"{r['test_elbo']} | {r['test_iwae']} ({r['iwae_k']}) | {r['active_units']} |")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "presets_table.json"), "w") as f:
        json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
