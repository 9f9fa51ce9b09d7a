"""The `vae` command line: `vae train`, `vae evaluate`, `vae presets`."""

from __future__ import annotations

import argparse
import json
import os
import sys

from vae.config import ConfigError, apply_overrides


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vae", description="Variational autoencoders in JAX.")
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

    sub.add_parser("presets", help="list the presets, one line each")

    x = sub.add_parser("explore", help="draw a figure of a trained run")
    x.add_argument("run_dir", metavar="RUN_DIR")
    x.add_argument("--figure", required=True, help="samples|reconstructions|interpolation|traversals|manifold|"
                   "embedding|curves")
    x.add_argument("--out", default=None, help="PNG path (default: RUN_DIR/figures/<figure>.png)")
    x.add_argument("--dims", default=None, help="comma-separated latent dimensions")
    x.add_argument("--steps", type=int, default=None, help="values per traversal/interpolation (or images/points)")
    x.add_argument("--seed", type=int, default=0)
    x.add_argument("--step", type=int, default=None, help="checkpoint step (default: best, else latest)")

    e = sub.add_parser("evaluate", help="evaluate a trained run and write RUN_DIR/eval.json")
    e.add_argument("run_dir", metavar="RUN_DIR")
    e.add_argument("--iwae-samples", type=int, default=5000, metavar="K",
                   help="importance samples for log p(x) (default 5000; 0 skips it)")
    e.add_argument("--metrics", default="", help="comma-separated disentanglement metrics: "
                   "beta_vae,factor_vae,mig,dci,sap,modularity, or 'all' (datasets with ground-truth factors)")
    e.add_argument("--split", default=None, help="the split to evaluate (default: the run's test split)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--step", type=int, default=None, help="checkpoint step (default: best, else latest)")
    e.add_argument("--points", type=int, default=None,
                   help="points for the disentanglement metrics (default: disentanglement_lib's 10,000)")

    from vae.quality import add_sample_quality_args
    from vae.synthesis import add_synthesize_parser

    add_sample_quality_args(e)
    add_synthesize_parser(sub)
    return parser


def _train(args) -> int:
    from vae.presets import DEFAULT_PRESET, get_preset

    name = args.preset or DEFAULT_PRESET
    config = get_preset(name)
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.no_progress:
        overrides.append("train.progress=false")
    config = apply_overrides(config, overrides)

    from vae.run import default_out_dir, train

    out_dir = args.out or default_out_dir(config)
    summary = train(config, out_dir, resume=args.resume, overwrite=args.overwrite)
    print(f"run directory: {out_dir}")
    print(json.dumps({k: summary[k] for k in ("steps", "test_elbo", "test_recon", "test_kl", "test_bits_per_dim",
                                              "wall_time_s", "train_steps_per_s")}, indent=2))
    return 0


def _presets(args) -> int:
    from vae.presets import list_presets

    presets = list_presets()
    width = max(len(name) for name, _ in presets)
    for name, doc in presets:
        print(f"{name:<{width}}  {doc}")
    return 0


def _explore(args) -> int:
    from vae.explore import Explorer, make_figure
    from vae.plots import save_figure

    dims = tuple(int(d) for d in args.dims.split(",")) if args.dims else None
    explorer = None if args.figure == "curves" else Explorer.from_run(args.run_dir, step=args.step)
    fig = make_figure(explorer, args.figure, dims=dims, steps=args.steps, seed=args.seed, run_dir=args.run_dir)
    path = save_figure(fig, args.out or os.path.join(args.run_dir, "figures", f"{args.figure}.png"))
    print(f"wrote {path}")
    return 0


def _evaluate(args) -> int:
    from vae.evaluate import DISENTANGLEMENT_METRICS, evaluate_run

    metrics = DISENTANGLEMENT_METRICS if args.metrics == "all" else tuple(m for m in args.metrics.split(",") if m)
    result = evaluate_run(args.run_dir, iwae_samples=args.iwae_samples, metrics=metrics, split=args.split,
                          seed=args.seed, step=args.step, num_points=args.points,
                          sample_quality=args.sample_quality, sample_quality_samples=args.sample_quality_samples)
    print(f"wrote {os.path.join(args.run_dir, 'eval.json')}")
    brief = {"elbo": result["elbo"]["elbo"], "active_units": result["latent"]["active_units"]}
    if "iwae" in result:
        brief.update(iwae_log_px=result["iwae"]["log_px"], iwae_k=result["iwae"]["k"])
    for name, values in result.get("disentanglement", {}).items():
        brief[name] = {k: v for k, v in values.items() if isinstance(v, float)}
    if "sample_quality" in result:
        from vae.quality import brief as quality_brief

        brief["sample_quality"] = quality_brief(result["sample_quality"])
    print(json.dumps(brief, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "train":
        from vae.parallel import maybe_initialize_distributed

        maybe_initialize_distributed()
    from vae.data.base import DatasetUnavailableError
    from vae.run import NonFiniteError, RunDirError

    try:
        if args.command == "train":
            return _train(args)
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "explore":
            return _explore(args)
        if args.command == "synthesize":
            from vae.synthesis import run_cli

            return run_cli(args)
        return _presets(args)
    except (ConfigError, RunDirError, DatasetUnavailableError, FileNotFoundError) as err:
        print(f"vae {args.command}: error: {err}", file=sys.stderr)
        return 2
    except NonFiniteError as err:
        print(f"vae {args.command}: error: {err}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    except ValueError as err:
        if args.command not in ("evaluate", "explore"):  # in training a ValueError past config validation is a bug: show it
            raise
        print(f"vae {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
