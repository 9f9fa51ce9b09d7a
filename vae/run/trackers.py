"""Experiment tracking: where a run's logged metrics and figures go besides metrics.jsonl.

    train.loggers=jsonl,tensorboard          (the default)
    train.loggers=jsonl,tensorboard,wandb,mlflow

`jsonl` (RUN_DIR/metrics.jsonl) is always written: resuming and `vae explore --figure curves`
read it. `tensorboard` writes event files to RUN_DIR/tensorboard/ with tensorboardX (no
TensorFlow): every logged scalar as `<split>/<metric>` and the run's figures as images; a resumed
run purges the events past the step it restarts from, as metrics.jsonl is truncated there.
`wandb` and `mlflow` log the same scalars (and the config as parameters) when those packages are
installed; asking for one that is not is an error before any work.
"""

from __future__ import annotations

import importlib.util
import math
import os
from typing import Any

import numpy as np
from PIL import Image
from tensorboardX import SummaryWriter

from vae.errors import ConfigError

LOGGERS = ("jsonl", "tensorboard", "wandb", "mlflow")
TENSORBOARD_DIR = "tensorboard"


def check_loggers(names: tuple[str, ...]) -> None:
    """ConfigError for an unknown logger or an optional one whose package is not installed."""
    for name in names:
        if name not in LOGGERS:
            raise ConfigError(f"train.loggers: {name!r} is not a logger; choose from {', '.join(LOGGERS)}")
        if name in ("wandb", "mlflow") and importlib.util.find_spec(name) is None:
            raise ConfigError(f"train.loggers asks for {name}, which is not installed here: pip install {name} (or "
                              f"drop it from train.loggers)")


def _scalars(record: dict) -> dict[str, float]:
    return {k: float(v) for k, v in record.items()
            if k not in ("step", "split") and isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(float(v))}


class Trackers:
    """The trackers a run logs to besides metrics.jsonl (see the module docstring). resume_step: for a
    resumed run, the first step it can log again; TensorBoard drops the old events from there on."""

    def __init__(self, names: tuple[str, ...], out_dir: str, config: Any, resume_step: int | None = None):
        check_loggers(names)
        self.names = tuple(names)
        self._tb = self._wandb = self._mlflow = None
        if "tensorboard" in names:
            self._tb = SummaryWriter(os.path.join(out_dir, TENSORBOARD_DIR), purge_step=resume_step,
                                     flush_secs=30)
        if "wandb" in names:
            import wandb  # noqa: PLC0415 - optional
            self._wandb = wandb.init(project="vae", name=config.name, dir=out_dir, config=config.to_dict(),
                                     resume="allow" if resume_step is not None else None)
        if "mlflow" in names:
            import mlflow  # noqa: PLC0415 - optional
            if not os.environ.get("MLFLOW_TRACKING_URI"):
                mlflow.set_tracking_uri("file:" + os.path.join(os.path.abspath(out_dir), "mlruns"))
            self._mlflow = mlflow
            mlflow.start_run(run_name=config.name)
            flat = {}
            for section, values in config.to_dict().items():
                for key, value in (values.items() if isinstance(values, dict) else [("", values)]):
                    flat[f"{section}.{key}".strip(".")] = str(value)[:250]
            mlflow.log_params(flat)

    def log(self, record: dict) -> None:
        """One metrics.jsonl record ({'step', 'split', metric: value, ...})."""
        step, split, values = int(record["step"]), record.get("split", "train"), _scalars(record)
        if self._tb is not None:
            for key, value in values.items():
                self._tb.add_scalar(f"{split}/{key}", value, step)
        if self._wandb is not None:
            self._wandb.log({f"{split}/{k}": v for k, v in values.items()}, step=step)
        if self._mlflow is not None:
            self._mlflow.log_metrics({f"{split}_{k}": v for k, v in values.items()}, step=step)

    def figures(self, paths: dict[str, str], step: int) -> None:
        """The run's PNG figures ({name: path}) as images at `step`."""
        for name, path in sorted(paths.items()):
            if not str(path).endswith(".png") or not os.path.isfile(path):
                continue
            with Image.open(path) as im:
                image = np.asarray(im.convert("RGB"))
            if self._tb is not None:
                self._tb.add_image(f"figures/{name}", image, step, dataformats="HWC")
            if self._wandb is not None:
                import wandb  # noqa: PLC0415 - optional
                self._wandb.log({f"figures/{name}": wandb.Image(image)}, step=step)
            if self._mlflow is not None:
                self._mlflow.log_artifact(path, artifact_path="figures")

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
        if self._mlflow is not None:
            self._mlflow.end_run()
