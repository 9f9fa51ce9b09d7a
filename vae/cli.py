"""The `vae` command line: `vae train`, `vae presets`."""

from __future__ import annotations

import argparse
import json
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from vae.data.base import DatasetUnavailableError
    from vae.run import RunDirError

    try:
        if args.command == "train":
            return _train(args)
        return _presets(args)
    except (ConfigError, RunDirError, DatasetUnavailableError) as err:
        print(f"vae {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
