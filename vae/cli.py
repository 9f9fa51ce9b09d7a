"""The `vae` command line (all of its argparse code): `vae train`, `vae evaluate`, `vae explore`,
`vae synthesize`, `vae fit-sampler`, `vae prepare`, `vae presets`. Each command parses its arguments
and calls the library function a notebook would call.

`--import MODULE` (any command, repeatable) imports a module of yours first, e.g. one that
registers your own variant with `vae.register_variant`, so that its runs train and load here.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from vae.data.base import DatasetUnavailableError
from vae.errors import ConfigError, NonFiniteError, RunDirError
from vae.config import Config, apply_overrides
from vae.data import file_options
from vae.data.prepare import prepare_dataset
from vae.evaluate import DISENTANGLEMENT_METRICS, evaluate_run
from vae.explore import FIGURE_KINDS, Explorer, make_figure
from vae.memory import keep_large_buffers
from vae.parallel import maybe_initialize_distributed
from vae.plots import save_figure
from vae.presets import DEFAULT_PRESET, get_preset, list_presets
from vae.quality import brief as quality_brief
from vae.run import default_out_dir, train, write_model_card
from vae.samplers import fit_sampler, sampler_names
from vae.synthesis import synthesize


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vae", description="Variational autoencoders in JAX.")
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="import this module first (e.g. one that registers your own variant); repeatable")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a preset and write a run directory")
    t.add_argument("--preset", default=None, help="preset name (see `vae presets`); default: quickstart")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set train.steps=500 (repeatable)")
    t.add_argument("--out", default=None, help="run directory (default: runs/<preset>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    t.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    t.add_argument("--seed", type=int, default=None, help="the run's seed (default: the preset's, 0)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--heartbeat-timeout", type=int, default=None, metavar="SECONDS",
                   help="multi-process jobs: a process silent this long counts as dead and the others stop "
                        "(default: JAX's 100 s)")

    sub.add_parser("presets", help="list the presets, one line each")

    x = sub.add_parser("explore", help="draw a figure of a trained run")
    x.add_argument("run_dir", metavar="RUN_DIR")
    x.add_argument("--figure", required=True, help="|".join(FIGURE_KINDS))
    x.add_argument("--out", default=None, help="PNG path (default: RUN_DIR/figures/<figure>.png)")
    x.add_argument("--dims", default=None, help="comma-separated latent dimensions")
    x.add_argument("--steps", type=int, default=None, help="values per traversal/interpolation (or images/points)")
    x.add_argument("--seed", type=int, default=0)
    x.add_argument("--step", type=int, default=None, help="checkpoint step (default: best, else latest)")
    x.add_argument("--range-mode", default=None, help="--figure traversals: the values each dimension takes: "
                   "std (default), quantile, or disentanglement_lib's std_gaussian, fitted_gaussian, "
                   "fixed_interval, conf_interval, minmax")
    x.add_argument("--sampler", default=None, help="--figure samples: draw z from this fitted sampler "
                   "(RUN_DIR/samplers/NAME, see `vae fit-sampler`) instead of the prior")

    e = sub.add_parser("evaluate", help="evaluate a trained run and write RUN_DIR/eval.json")
    e.add_argument("run_dir", metavar="RUN_DIR")
    e.add_argument("--iwae-samples", type=int, default=5000, metavar="K",
                   help="importance samples for log p(x) (default 5000; 0 skips it)")
    e.add_argument("--metrics", default="", help="comma-separated disentanglement metrics: "
                   f"{','.join(DISENTANGLEMENT_METRICS)}, or 'all' (datasets with ground-truth factors)")
    e.add_argument("--split", default=None, help="the split to evaluate (default: the run's test split)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--step", type=int, default=None, help="checkpoint step (default: best, else latest)")
    e.add_argument("--points", type=int, default=None,
                   help="points for the disentanglement metrics (default: disentanglement_lib's 10,000)")
    e.add_argument("--metric-classifier", default="liblinear_ovr", choices=("liblinear_ovr", "multinomial"),
                   help="explicitness and BetaVAE score: scikit-learn 0.20's one-vs-rest liblinear (default, as the "
                        "published study) or today's multinomial LogisticRegression()")
    e.add_argument("--sample-quality", action="store_true",
                   help="fd_classifier (Fréchet distance in the features of a small classifier trained on the "
                        "run's data, not Inception FID), precision/recall, label bias and the Classification "
                        "Accuracy Score of generated samples; the classifier is trained once and cached in "
                        "RUN_DIR/classifier/")
    e.add_argument("--sample-quality-samples", type=int, default=None, metavar="N",
                   help="generated samples for --sample-quality (default: as many as the split's images)")
    e.add_argument("--sampler", default=None,
                   help="--sample-quality: generate from this fitted sampler instead of the prior")

    s = sub.add_parser("synthesize", help="export samples of a trained run as .npz (and PNGs) with provenance")
    s.add_argument("run_dir", metavar="RUN_DIR")
    s.add_argument("-n", "--num", type=int, required=True, help="number of samples")
    s.add_argument("--out", default=None, help="output .npz (default: RUN_DIR/synthetic/samples_seed<SEED>.npz)")
    s.add_argument("--label", type=int, default=None, help="generate this class only (conditional models)")
    s.add_argument("--balanced", action="store_true",
                   help="equal shares of every class (unconditional models: via the dataset classifier)")
    s.add_argument("--temperature", type=float, default=1.0, help="z ~ temperature * p(z) (default 1)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--batch-size", type=int, default=500)
    s.add_argument("--png-dir", default=None, help="also write one PNG per sample here, with provenance text chunks")
    s.add_argument("--uint8", action="store_true", help="store images as uint8 (default: float32 decoder means)")
    s.add_argument("--compress", action="store_true", help="deflate the .npz")
    s.add_argument("--step", type=int, default=None, help="checkpoint step (default: best, else latest)")
    s.add_argument("--max-draws", type=int, default=None, help="cap on samples drawn for --balanced rejection")
    s.add_argument("--classifier-steps", type=int, default=None,
                   help="training steps of the dataset classifier (--balanced, unconditional models)")
    s.add_argument("--sampler", default=None,
                   help="draw z from this fitted sampler (RUN_DIR/samplers/NAME) instead of the prior")

    p = sub.add_parser("prepare", help="convert a folder of images or an .npz/.npy to a prepared dataset "
                                       "(array_record files) that training streams: data.name=DEST")
    p.add_argument("src", metavar="SRC", help="a folder of images, or an .npz / .npy file")
    p.add_argument("dest", metavar="DEST", help="the prepared dataset's folder (must not exist)")
    p.add_argument("--set", dest="options", action="append", default=[], metavar="data.KEY=VALUE",
                   help="a data option applied while converting: data.test_fraction, data.split_seed, "
                        "data.test_path, data.image_size, data.channels, data.values (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace DEST when it is a prepared dataset")

    f = sub.add_parser("fit-sampler", help="fit a density over a run's latents (or a prior over its codes) and "
                                           "save it in RUN_DIR/samplers/NAME/")
    f.add_argument("run_dir", metavar="RUN_DIR")
    f.add_argument("--sampler", required=True, help="|".join(sampler_names()))
    f.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="a sampler option, e.g. --set components=20 (repeatable)")
    f.add_argument("--as", dest="save_as", default=None, help="save under this name (default: the sampler's)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--step", type=int, default=None, help="checkpoint step (default: best, else latest)")
    return parser


def _train(args) -> int:
    config = get_preset(args.preset or DEFAULT_PRESET)
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.no_progress:
        overrides.append("train.progress=false")
    config = apply_overrides(config, overrides)
    out_dir = args.out or default_out_dir(config)
    summary = train(config, out_dir, resume=args.resume, overwrite=args.overwrite)
    print(f"run directory: {out_dir}")
    print(json.dumps({k: summary[k] for k in ("steps", "test_elbo", "test_recon", "test_kl", "test_bits_per_dim",
                                              "bits_per_dim_convention", "wall_time_s", "train_steps_per_s")},
                     indent=2))
    return 0


def _presets(args) -> int:
    presets = list_presets()
    width = max(len(name) for name, _ in presets)
    for name, doc in presets:
        print(f"{name:<{width}}  {doc}")
    return 0


def _explore(args) -> int:
    dims = tuple(int(d) for d in args.dims.split(",")) if args.dims else None
    explorer = None if args.figure == "curves" else Explorer.from_run(args.run_dir, step=args.step)
    fig = make_figure(explorer, args.figure, dims=dims, steps=args.steps, seed=args.seed, run_dir=args.run_dir,
                      range_mode=args.range_mode,
                      sampler=args.sampler)
    path = save_figure(fig, args.out or os.path.join(args.run_dir, "figures", f"{args.figure}.png"))
    print(f"wrote {path}")
    return 0


def _evaluate(args) -> int:
    metrics = DISENTANGLEMENT_METRICS if args.metrics == "all" else tuple(m for m in args.metrics.split(",") if m)
    result = evaluate_run(args.run_dir, iwae_samples=args.iwae_samples, metrics=metrics, split=args.split,
                          seed=args.seed, step=args.step, num_points=args.points,
                          sample_quality=args.sample_quality, sample_quality_samples=args.sample_quality_samples,
                          sampler=args.sampler, metric_classifier=args.metric_classifier)
    print(f"wrote {os.path.join(args.run_dir, 'eval.json')}")
    brief = {"elbo": result["elbo"]["elbo"] if "elbo" in result else None,
             "mse_per_pixel": result["reconstruction"]["mse_per_pixel"],
             "active_units": result["latent"]["active_units"]}
    if "absent" in result.get("iwae", {}):
        brief["iwae"] = result["iwae"]["absent"]
    elif "iwae" in result:
        brief.update(iwae_log_px=result["iwae"]["log_px"], iwae_k=result["iwae"]["k"],
                     iwae_mc_stderr=result["iwae"]["mc_stderr"])
    for name, values in result.get("disentanglement", {}).items():
        brief[name] = {k: v for k, v in values.items() if isinstance(v, float)}
    if "sample_quality" in result:
        brief["sample_quality"] = quality_brief(result["sample_quality"])
    print(json.dumps(brief, indent=2))
    return 0


def _synthesize(args) -> int:
    out = args.out or os.path.join(args.run_dir, "synthetic", f"samples_seed{args.seed}.npz")
    result = synthesize(args.run_dir, args.num, out=out, label=args.label, balanced=args.balanced,
                        temperature=args.temperature, seed=args.seed, batch_size=args.batch_size,
                        png_dir=args.png_dir, dtype="uint8" if args.uint8 else "float32", compress=args.compress,
                        max_draws=args.max_draws, classifier_steps=args.classifier_steps, step=args.step,
                        sampler=args.sampler, verbose=True)
    print(f"wrote {result['path']}" + (f" and {result['num_png']} PNGs in {result['png_dir']}" if result["png_dir"]
                                       else ""))
    print(json.dumps({k: result[k] for k in ("num", "shape", "dtype", "label_counts", "unknown_labels", "draws")}
                     | {"labels_from": result["metadata"]["labels_from"]}))
    return 0


def _fit_sampler(args) -> int:
    record = fit_sampler(args.run_dir, args.sampler, args.options, seed=args.seed, step=args.step,
                         save_as=args.save_as)
    name = args.save_as or args.sampler
    write_model_card(args.run_dir)
    print(f"wrote {os.path.join(args.run_dir, 'samplers', name)}")
    print(json.dumps({"sampler": record["sampler"], "options": record["options"], "report": record["report"],
                      "checkpoint_step": record["provenance"]["checkpoint_step"],
                      "fit_seconds": record["provenance"]["fit_seconds"]}, indent=2))
    return 0


PREPARE_OPTIONS = ("test_fraction", "split_seed", "test_path", "image_size", "channels", "values")


def _prepare(args) -> int:
    for item in args.options:
        key = item.split("=", 1)[0].strip()
        if key.removeprefix("data.") not in PREPARE_OPTIONS or not key.startswith("data."):
            raise ConfigError(f"vae prepare --set {item!r}: allowed keys are "
                              f"{', '.join('data.' + k for k in PREPARE_OPTIONS)}")
    config = apply_overrides(Config(), [f"data.name={args.src}", *args.options])
    meta = prepare_dataset(args.src, args.dest, file_options(config.data), overwrite=args.overwrite)
    print(f"wrote {os.path.abspath(args.dest)}: train with --set data.name={args.dest}")
    print(json.dumps({k: meta[k] for k in ("image_shape", "dtype", "values", "num_classes", "splits")}))
    return 0


COMMANDS = {"prepare": _prepare, "train": _train, "evaluate": _evaluate, "explore": _explore, "synthesize": _synthesize,
            "presets": _presets, "fit-sampler": _fit_sampler}
# commands whose ValueErrors are the user's bad request; in training a ValueError past config
# validation is a bug, and is shown with its traceback
_REQUEST_COMMANDS = ("evaluate", "explore", "synthesize", "fit-sampler", "prepare")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    keep_large_buffers()   # XLA:CPU's per-step buffers stay mapped between steps (vae/memory.py)
    for module in args.imports:
        try:
            importlib.import_module(module)
        except ImportError as err:
            print(f"vae: error: --import {module}: {err}", file=sys.stderr)
            return 2
    if args.command == "train":
        maybe_initialize_distributed(args.heartbeat_timeout)
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, RunDirError, DatasetUnavailableError, FileNotFoundError) as err:
        print(f"vae {args.command}: error: {err}", file=sys.stderr)
        return 2
    except NonFiniteError as err:
        print(f"vae {args.command}: error: {err}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    except ValueError as err:
        if args.command not in _REQUEST_COMMANDS:
            raise
        print(f"vae {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
