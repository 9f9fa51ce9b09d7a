"""What the studies share: provenance of their results and crash-safe json records."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess

import jax
import numpy as np

from vae.plots import save_figure
from vae.run import train
from vae.trained.rundir import checkpoint_steps
from vae.version import __version__


def provenance() -> dict:
    """The toolkit version, the git commit of this checkout (None outside git) and the machine."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                                cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {"toolkit_version": __version__, "commit": commit, "machine": platform.machine()}


def device_kind() -> str:
    """What this process trains on: "cpu", or the accelerator's name (e.g. "NVIDIA H200"); each run's
    record keeps it, since speeds and wall times are only comparable on the same device."""
    return jax.devices()[0].device_kind


def write_json(path: str, value) -> None:
    """Writes `value` to PATH through PATH.tmp and a rename, so a killed study never leaves half a file."""
    with open(path + ".tmp", "w") as f:
        json.dump(value, f, indent=1)
    os.replace(path + ".tmp", path)


def saved_record(path: str, key: dict) -> dict | None:
    """The record saved at PATH when it was made with the same `key` (the run's settings), else None."""
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        record = json.load(f)
    return record if record.get("key") == key else None


def committed_runs(results_dir: str, name: str) -> list[dict]:
    """The run records in RESULTS/NAME.json, the study's results as last written (and committed), [] without
    the file: a study reuses them when its run folders are gone, so it continues on a fresh clone or another
    machine where it stopped."""
    path = os.path.join(results_dir, f"{name}.json")
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return json.load(f).get("runs", [])


def reused(record_path: str, key: dict, committed: list[dict]) -> dict | None:
    """The record of the run with `key`: from its run folder (RECORD_PATH) if it is there, else from the
    committed results; None when neither has it."""
    record = saved_record(record_path, key)
    return record if record is not None else next((r for r in committed if r.get("key") == key), None)


def carried(committed: list[dict], found: list[dict], identity: tuple[str, ...]) -> list[dict]:
    """The committed records not among `found` made on found's budget (every key field but `identity`,
    which names the run within the study): a call narrowed to some models or presets keeps in its results
    what was recorded of the others."""
    def budget(key: dict) -> dict:
        return {k: v for k, v in key.items() if k not in identity}
    if not found:
        return []
    keys, ref = [r["key"] for r in found], budget(found[0]["key"])
    return [r for r in committed if budget(r["key"]) == ref and r["key"] not in keys]


def finished_steps(run_dir: str) -> list[int]:
    """The steps RUN_DIR has checkpoints of; [] for a run not started."""
    try:
        return checkpoint_steps(run_dir)
    except FileNotFoundError:
        return []


def summary_steps(run_dir: str) -> int | None:
    """The step RUN_DIR/summary.json was written at (the run's last finish); None without it."""
    try:
        with open(os.path.join(run_dir, "summary.json")) as f:
            return json.load(f).get("steps")
    except FileNotFoundError:
        return None


def train_to(cfg, run_dir: str, steps: int) -> bool:
    """Makes RUN_DIR a finished run of `steps` steps (`cfg.train.steps`): its checkpoint at `steps` and its
    summary.json written there. Trains (resuming from the newest checkpoint, if any); a run stopped after its
    last checkpoint but before its summary (a study killed while the run finishes) is only finished, not trained
    again. Returns False when the run was already finished, else True."""
    done = finished_steps(run_dir)
    if steps in done and summary_steps(run_dir) == steps:
        return False
    train(cfg, run_dir, resume=bool(done), overwrite=not done)
    return True


def median_steps_per_s(run_dir: str) -> float | None:
    """The run's typical training speed: the median over its logged intervals of steps / seconds, from
    metrics.jsonl's train rows (None without two of them).

    Robust where the summary's overall rate is not: a study paused (SIGSTOP), resumed (compilation again)
    or sharing the CPU for a while changes a few intervals, not the median."""
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    rows = [r for r in rows if r.get("split") == "train" and "elapsed" in r]
    rates = [(b["step"] - a["step"]) / (b["elapsed"] - a["elapsed"]) for a, b in zip(rows, rows[1:])
             if b["step"] > a["step"] and b["elapsed"] > a["elapsed"]]
    return float(np.median(rates)) if rates else None


def study_parser(doc: str, out: str, steps: int) -> argparse.ArgumentParser:
    """The options every study takes: --out (its runs), --results, --seeds, --steps and --quick."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=out, help="where the runs go")
    parser.add_argument("--results", default="results", help="where the json, table and figures go")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--steps", type=int, default=None, help=f"training steps per run (default {steps})")
    parser.add_argument("--quick", action="store_true", help="tiny budgets (a smoke test of the study)")
    parser.add_argument("--report", action="store_true",
                        help="train nothing: write the results from the runs already finished (a study in progress)")
    parser.epilog = ("Finished runs are reused from their folders under --out or, where those are gone (a fresh "
                     "clone), from the runs recorded in the --results json; the results written keep the runs "
                     "recorded there on the same budget that this call did not plan (--only, --presets).")
    return parser


def finished(records: list, out: str) -> list:
    """The records of the runs that exist (None marks a run --report skipped); an error naming OUT if none does."""
    done = [r for r in records if r is not None]
    if not done:
        raise SystemExit(f"--report: no finished run with these settings in {out!r}; run the study first")
    return done


def write_results(results_dir: str, name: str, data: dict, table: str, figures: dict) -> None:
    """RESULTS/NAME.json (data), RESULTS/NAME.md (table, also printed) and RESULTS/<key>.png per figure."""
    os.makedirs(results_dir, exist_ok=True)
    write_json(os.path.join(results_dir, f"{name}.json"), data)
    with open(os.path.join(results_dir, f"{name}.md"), "w") as f:
        f.write(table)
    for key, fig in figures.items():
        save_figure(fig, os.path.join(results_dir, f"{key}.png"))
    print(table)
