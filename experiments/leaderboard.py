"""The leaderboard: every mnist5k preset trained on one shared budget with several seeds and
evaluated the same way.

    python -m experiments.leaderboard [--quick] [--out DIR] [--results DIR] [--seeds 0,1,2]
                                      [--steps N] [--iwae-samples K] [--presets a,b,...]
                                      [--report | --rescore-samples a,b,...]

Each (preset, seed) trains in DIR/<preset>/seed<S> with the preset's model and objective and the
shared budget (BUDGET: steps, batch size; the preset's own optimizer), then at its last step:

* `vae evaluate` (vae.evaluate.evaluate_run): test ELBO, IWAE log p(x) with k = --iwae-samples
  (1,000) where the variant has a density, reconstruction error (mean squared error per image),
  active units;
* fd_classifier / precision / recall (k = 3; vae.quality.sample_quality, no CAS) of N samples
  from the model's own prior against the test split, in the features of one dataset classifier
  that the whole study shares (trained once, cached in DIR/classifier/; a fresh clone trains it
  again from the same seed, and the table warns if the runs' classifiers did not train alike);
* the same sample-quality metrics with each fitted sampler that applies to the model (SAMPLERS:
  gmm and maf for continuous latents, code_prior or pixelcnn for codes, the manifold mixtures on
  spheres and hyperbolic balls), fitted with its defaults on the training split; the best of them
  by fd_classifier is the row's "best sampler" (chosen on the same test split it is scored on,
  which favours it slightly; said in the table);
* parameters and wall time from the run's summary; steps/s as the median over the run's logged
  intervals (metrics.jsonl), which a pause or a resume does not move (the summary's overall rate
  when fewer than two intervals are logged, as in --quick).

Runs go seed by seed, so a study cut short has every preset at its first seeds.
Resumable: a (preset, seed) whose result.json matches its settings is reused (where its folder is
gone, its record in RESULTS/leaderboard.json is: the study continues on a fresh clone); a run cut
off during training resumes from its last checkpoint. Writes RESULTS/leaderboard.json (every number with how
it was computed: k, seeds, budget, toolkit version, commit), leaderboard.md (mean +- std over
seeds) and leaderboard.png (NLL against fd_classifier, one point per preset).
--rescore-samples: after a change to how some models sample, score their finished runs' samples again
(no training, no IWAE; each record says at which commit its samples were scored).
--quick: tiny budgets and two presets, for the test suite (its numbers mean nothing).
"""

from __future__ import annotations

import json
import os
import time
from types import SimpleNamespace

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

from experiments.common import (carried, committed_runs, device_kind, finished, median_steps_per_s, provenance, reused,
                                study_parser, train_to, write_json, write_results)
from vae.config import apply_overrides
from vae.evaluate import evaluate_run
from vae.presets import get_preset, list_presets
from vae.quality import sample_quality
from vae.samplers import SamplerError, fit_sampler, fitted_samplers, load_sampler
from vae.samplers.store import StaleSamplerError
from vae.trained import load_run
from vae.trained.classifier import load_or_train_classifier

BUDGET = {"steps": 6000, "batch": 128}
SAMPLERS = ("gmm", "maf", "code_prior", "pixelcnn", "hypersphere", "poincare")
QUICK = {"presets": ("quickstart", "ae_mnist5k", "vqvae_mnist5k"), "steps": 20, "batch": 32, "seeds": (0, 1), "iwae": 5,
         "samples": 64}
QUICK_TRAIN = ["train.final_iwae_samples=0", "train.num_samples=4", "data.train_split=train[:512]",
               "data.test_split=test[:128]", "model.hidden=[32]"]
QUICK_SAMPLER = {"gmm": {"components": 2}, "maf": {"steps": 5, "layers": 1, "hidden": (8,)},
                 "code_prior": {"steps": 5, "width": 16, "heads": 2, "depth": 1}}


def mnist5k_presets() -> list[str]:
    """Every registered preset that trains on the built-in mnist5k."""
    return [name for name, _ in list_presets() if get_preset(name).data.name == "mnist5k"]


def run_config(preset: str, seed: int, steps: int, batch: int, quick: bool):
    """The preset with the shared budget and the seed (its model, objective and optimizer kept)."""
    overrides = [f"seed={seed}", f"train.steps={steps}", f"train.batch_size={batch}",
                 f"train.eval_every={steps}", "train.progress=false"]
    cfg = get_preset(preset)
    if cfg.objective.kl_warmup_steps > steps:   # a warm-up longer than the budget would never end
        overrides.append(f"objective.kl_warmup_steps={steps // 2}")
    return apply_overrides(cfg, overrides + (QUICK_TRAIN if quick else []))


def _sampler_record(run, name: str, quick: bool, seed: int) -> dict | None:
    """The fitted sampler's record (fitting it when missing or stale), None when it does not apply."""
    if name in fitted_samplers(run.run_dir):
        try:
            return load_sampler(run, name).record
        except (StaleSamplerError, SamplerError):
            pass
    try:
        return fit_sampler(run, name, QUICK_SAMPLER.get(name, {}) if quick else None, seed=seed)
    except SamplerError:
        return None


def study_classifier(run, out: str, quick: bool):
    """The dataset classifier every run of the study is scored with, trained once and cached in
    OUT/classifier/ (vae.trained.classifier takes any object with run_dir, config, model and test):
    one feature space for every fd, and 99 runs do not each train their own."""
    shared = SimpleNamespace(run_dir=out, config=run.config, model=run.model, test=run.test)
    return load_or_train_classifier(shared, **({"steps": 20} if quick else {}))


def _quality(q: dict) -> dict:
    return {"fd_classifier": float(q["fd_classifier"]), "precision": float(q["precision"]),
            "recall": float(q["recall"])}


def score_samples(run, out: str, quick: bool, seed: int, samples: int) -> tuple[dict, dict, str | None, object]:
    """fd_classifier / precision / recall of `samples` images from the run's prior and from each fitted
    sampler of SAMPLERS that applies (fitted when missing or stale): (prior, {sampler: scores},
    the best sampler's name or None, the study's classifier)."""
    classifier = study_classifier(run, out, quick)
    prior = _quality(sample_quality(run, num_samples=samples, seed=seed, classifier=classifier, cas=False))
    fitted = {}
    for name in SAMPLERS:
        start = time.perf_counter()
        if _sampler_record(run, name, quick, seed) is None:
            continue
        q = sample_quality(run, num_samples=samples, seed=seed, classifier=classifier, cas=False, sampler=name)
        fitted[name] = {**_quality(q), "seconds": round(time.perf_counter() - start, 1)}
    best = min(fitted, key=lambda n: fitted[n]["fd_classifier"]) if fitted else None
    return prior, fitted, best, classifier


def _rescored(record: dict, record_path: str, run_dir: str, out: str, *, steps: int, samples: int,
              quick: bool) -> dict:
    """The finished run's record with its sample-quality scores made again (the checkpoint and the
    fitted samplers reused; each sampler keeps the seconds its fit and first score took)."""
    run = load_run(run_dir, step=steps)
    prior, fitted, best, _ = score_samples(run, out, quick, record["key"]["seed"], samples)
    for name, entry in fitted.items():
        entry["seconds"] = record["samplers"].get(name, entry)["seconds"]
    record.update(prior=prior, samplers=fitted, best_sampler=best, samples_scored_at=provenance()["commit"])
    write_json(record_path, record)
    return record


def run_one(preset: str, seed: int, out: str, *, steps: int, batch: int, iwae: int, samples: int,
            quick: bool, report: bool = False, rescore: bool = False, committed: list[dict] = ()) -> dict | None:
    """Trains (or reuses: its result.json, else the `committed` records) one (preset, seed) and evaluates
    it; returns its result record (`report`: only a finished run's record, else None; `rescore`: a
    finished run's record with its sample quality scored again, where its folder is here)."""
    run_dir = os.path.join(out, preset, f"seed{seed}")
    record_path = os.path.join(run_dir, "result.json")
    key = {"preset": preset, "seed": seed, "steps": steps, "batch": batch, "iwae_samples": iwae,
           "samples": samples, "quick": quick}
    record = reused(record_path, key, committed)
    if rescore and record is not None and os.path.isfile(record_path):
        return _rescored(record, record_path, run_dir, out, steps=steps, samples=samples, quick=quick)
    if record is not None or report or rescore:
        return record
    cfg = run_config(preset, seed, steps, batch, quick)
    train_to(cfg, run_dir, steps)
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    result = evaluate_run(run_dir, iwae_samples=iwae, step=steps, seed=seed)
    run = load_run(run_dir, step=steps)
    prior, fitted, best, classifier = score_samples(run, out, quick, seed, samples)
    iwae_entry = result.get("iwae", {})
    record = {
        "key": key, "variant": cfg.model.name, "run_dir": run_dir,
        "test_elbo": result.get("elbo", {}).get("elbo"),
        "iwae_nll": -iwae_entry["log_px"] if "log_px" in iwae_entry else None,
        "iwae_k": iwae_entry.get("k"), "no_density": iwae_entry.get("absent"),
        "mse_per_image": result["reconstruction"]["mse_per_image"],
        "active_units": result["latent"].get("active_units"),
        "prior": prior, "samplers": fitted, "best_sampler": best,
        "classifier": {k: v for k, v in classifier.info.items() if k != "cached"},
        "num_params": summary.get("num_params"),
        "steps_per_s": median_steps_per_s(run_dir) or summary.get("train_steps_per_s"),
        "wall_time_s": summary.get("wall_time_s"), "device": device_kind(),
    }
    write_json(record_path, record)
    return record


# (column, how to read it from a record) for the table and the JSON summary
COLUMNS = (
    ("test ELBO", lambda r: r["test_elbo"]),
    ("IWAE NLL", lambda r: r["iwae_nll"]),
    ("MSE/image", lambda r: r["mse_per_image"]),
    ("fd prior", lambda r: r["prior"]["fd_classifier"]),
    ("prec prior", lambda r: r["prior"]["precision"]),
    ("rec prior", lambda r: r["prior"]["recall"]),
    ("fd best", lambda r: r["samplers"][r["best_sampler"]]["fd_classifier"] if r["best_sampler"] else None),
    ("prec best", lambda r: r["samplers"][r["best_sampler"]]["precision"] if r["best_sampler"] else None),
    ("rec best", lambda r: r["samplers"][r["best_sampler"]]["recall"] if r["best_sampler"] else None),
    ("active", lambda r: r["active_units"]),
    ("params", lambda r: r["num_params"]),
    ("steps/s", lambda r: r["steps_per_s"]),
    ("wall s", lambda r: r["wall_time_s"]),
)


def summarize(records: list[dict]) -> list[dict]:
    """One row per preset: mean and std over seeds of every column (std None for one seed; None where a
    column does not apply), the seeds and the best samplers chosen."""
    rows = []
    for preset in dict.fromkeys(r["key"]["preset"] for r in records):
        mine = [r for r in records if r["key"]["preset"] == preset]
        row = {"preset": preset, "variant": mine[0]["variant"], "seeds": [r["key"]["seed"] for r in mine],
               "best_samplers": sorted({r["best_sampler"] for r in mine if r["best_sampler"]})}
        for col, read in COLUMNS:
            values = [read(r) for r in mine]
            if any(v is None for v in values):
                row[col] = None
                continue
            values = np.asarray(values, np.float64)
            row[col] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else None}
        rows.append(row)
    return rows


def _cell(value, col: str) -> str:
    if value is None:
        return "—"
    digits = 0 if col in ("params", "wall s") else (3 if col.startswith(("prec", "rec")) else 1)
    mean, std = value["mean"], value["std"]
    if col == "params":
        return f"{mean / 1e6:.2f}M"
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"   # None: one seed


def markdown(rows: list[dict], budget: str) -> str:
    """The table: one line per preset, each cell mean ± std over seeds."""
    cols = [c for c, _ in COLUMNS]
    lines = [f"Budget: {budget}. Each cell: mean ± std over the row's seeds (the mean alone for one seed). "
             "NLL: -IWAE log p(x) in nats (— where the variant has no density). fd: fd_classifier (Fréchet "
             "distance in the dataset classifier's features); 'best': the fitted sampler with the lowest fd, "
             "chosen on the test split it is scored on; for a hierarchical model (ladder_vae, nvae) a fitted sampler "
             "draws the top group and the model draws the lower ones given it. steps/s: the median logged interval (a "
             "pause does not move it); wall s: the run's whole time, any pause included.",
             "",
             "| preset | variant | seeds | best sampler | " + " | ".join(cols) + " |",
             "|---|---|---|---|" + "---|" * len(cols)]
    for row in sorted(rows, key=lambda r: (r["IWAE NLL"] or {"mean": np.inf})["mean"]):
        cells = [_cell(row[c], c) for c in cols]
        lines.append(f"| {row['preset']} | {row['variant']} | {len(row['seeds'])} | "
                     f"{', '.join(row['best_samplers']) or '—'} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(rows: list[dict]) -> Figure:
    """IWAE NLL against the better fd_classifier of the prior and the best fitted sampler (a fitted
    sampler can be worse than the prior), one point per preset with a
    density, error bars: std over seeds. Points are numbered by NLL and named in the legend (with
    ~30 presets, names beside the points would overlap); fd is on a log axis, as a few samplers far
    behind would otherwise squeeze the good ones into a corner."""
    dense = sorted((r for r in rows if r["IWAE NLL"] is not None), key=lambda r: r["IWAE NLL"]["mean"])
    fig = Figure(figsize=(10, 6), layout="constrained")
    ax = fig.subplots()
    for i, row in enumerate(dense):
        fd = min((row["fd best"], row["fd prior"]), key=lambda v: np.inf if v is None else v["mean"])
        x, y = fd["mean"], row["IWAE NLL"]["mean"]
        ax.errorbar(x, y, xerr=fd["std"], yerr=row["IWAE NLL"]["std"], fmt="osD^v"[i // 10 % 5], ms=5,
                    color=f"C{i % 10}", capsize=2, label=f"{i + 1}. {row['preset'].replace('_mnist5k', '')}")
        ax.annotate(str(i + 1), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if dense:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(ScalarFormatter())
        ax.tick_params(axis="x", which="minor", labelsize=7)
        fig.legend(loc="outside right upper", fontsize=7, title="by NLL", title_fontsize=8)
    ax.set_xlabel("fd_classifier of samples (the prior or the best fitted sampler, whichever is better); "
                  "lower is better")
    ax.set_ylabel("test NLL, -IWAE log p(x) (nats); lower is better")
    ax.set_title("mnist5k leaderboard: likelihood against sample quality (mean ± std over seeds)", fontsize=10)
    return fig


def main(argv: list[str] | None = None) -> dict:
    parser = study_parser(__doc__, "runs/leaderboard", BUDGET["steps"])
    parser.add_argument("--iwae-samples", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=1000, help="generated images per sample-quality score")
    parser.add_argument("--presets", default="", help="comma-separated presets (default: every mnist5k preset)")
    parser.add_argument("--rescore-samples", default="", metavar="PRESETS",
                        help="train nothing: score the sample quality of these presets' finished runs again (their "
                             "checkpoints and fitted samplers reused), after a change to how a model samples")
    args = parser.parse_args(argv)
    steps, batch = (QUICK["steps"], QUICK["batch"]) if args.quick else (BUDGET["steps"], BUDGET["batch"])
    steps = args.steps or steps
    iwae = QUICK["iwae"] if args.quick else args.iwae_samples
    samples = QUICK["samples"] if args.quick else args.samples
    seeds = QUICK["seeds"] if args.quick else tuple(int(s) for s in args.seeds.split(","))
    known = mnist5k_presets()
    presets = [p for p in args.presets.split(",") if p] or (list(QUICK["presets"]) if args.quick else known)
    rescore = [p for p in args.rescore_samples.split(",") if p]
    unknown = [p for p in presets + rescore if p not in known]
    if unknown:
        raise SystemExit(f"not mnist5k presets: {', '.join(unknown)}; choose from {', '.join(known)}")
    start = time.perf_counter()
    committed = committed_runs(args.results, "leaderboard")
    records = []
    for seed in seeds:   # seed by seed, so a study cut short has every preset at its first seeds
        for preset in presets:
            records.append(run_one(preset, seed, args.out, steps=steps, batch=batch, iwae=iwae, samples=samples,
                                   quick=args.quick, report=args.report or bool(rescore), rescore=preset in rescore,
                                   committed=committed))
            r = records[-1]
            if r is None:
                continue
            print(json.dumps({"preset": preset, "seed": seed, "iwae_nll": r["iwae_nll"],
                              "fd_prior": r["prior"]["fd_classifier"], "best_sampler": r["best_sampler"]}), flush=True)
    records = [r for r in records if r is not None]
    kept = carried(committed, records, ("preset", "seed"))
    records, planned = records + kept, len(seeds) * len(presets) + len(kept)
    records = finished(records, args.out)
    order = presets + [p for p in known if p not in presets]   # this call's presets first, then those kept
    records.sort(key=lambda r: (order.index(r["key"]["preset"]) if r["key"]["preset"] in order else len(order),
                                r["key"]["seed"]))
    seeds = tuple(sorted({r["key"]["seed"] for r in records}))   # --report: the seeds that have finished runs
    budget = (f"{steps} steps of batch {batch} per run (each preset's own optimizer), seeds "
              f"{', '.join(map(str, seeds))}, IWAE k = {iwae}, {samples} samples per sample-quality score"
              + (f"; {len(records)} of the {planned} planned runs" if len(records) < planned else "")
              + (" (--quick: numbers mean nothing)" if args.quick else ""))
    trained = {json.dumps({k: v for k, v in r["classifier"].items() if k not in ("train_seconds", "cache")},
                          sort_keys=True) for r in records}
    if len(trained) > 1:   # runs from several clones, each of which trained the study's classifier again
        budget += (f"; WARNING: the fd columns come from {len(trained)} classifiers that trained differently, "
                   "so they compare only within each")
    rows = summarize(records)
    board = {"budget": {"steps": steps, "batch": batch, "seeds": list(seeds), "iwae_samples": iwae,
                        "samples": samples, "quick": args.quick},
             "how": "vae.evaluate.evaluate_run at each run's last step (test ELBO, IWAE, reconstruction, active "
                    "units, sample quality from the prior) and vae.quality.sample_quality with each fitted sampler "
                    "of SAMPLERS that applies, fitted with its defaults on the training split; fd_classifier, "
                    "precision/recall with k = 3 against the test split",
             **provenance(),
             "wall_seconds_this_call": round(time.perf_counter() - start, 1), "rows": rows, "runs": records}
    write_results(args.results, "leaderboard", board, markdown(rows, budget), {"leaderboard": figure(rows)})
    return board


if __name__ == "__main__":
    main()
