"""Loading a trained run back from its directory.

    runs/<name>/config.json, checkpoints/<step>/ (see `vae.run`)

`load_run(RUN_DIR)` rebuilds the config, the model (through the variant registry), the params
of a checkpoint and the test split as evaluation saw it. A run of a variant registered outside
the package (a notebook or script) needs that variant registered again: load_run imports the
module recorded in RUN_DIR/variant.json when it can, and otherwise says what to import.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from typing import Any

import numpy as np

from vae import data as vdata
from vae import registry
from vae.checkpoint import Checkpointer
from vae.config import Config
from vae.data.pipeline import prepare, prepared_values
from vae.models import for_data
from vae.variants import build_model

EVAL_SEED = 0  # evaluation splits are binarized and sampled identically in every run
VARIANT_FILE = "variant.json"


@dataclasses.dataclass
class LoadedRun:
    """A trained run, rebuilt from its directory: config, model, params (and the objective's
    extra state), the checkpoint step, and the test split prepared as evaluation saw it."""

    run_dir: str
    config: Config
    model: Any
    params: Any
    extra: Any
    step: int
    test: Any
    test_images: np.ndarray


def write_variant_record(run_dir: str, name: str) -> None:
    """Records in RUN_DIR/variant.json which module declared variant `name` (so that loading
    the run can import it again)."""
    variant = registry.get(name)
    with open(os.path.join(run_dir, VARIANT_FILE), "w") as f:
        json.dump({"name": name, "module": variant.module, "paper": variant.paper}, f, indent=2)


def _ensure_variant(run_dir: str, config_dict: dict) -> None:
    """Registers the run's variant if it is not: by importing the module variant.json names."""
    name = config_dict.get("model", {}).get("name", "vae")
    if name in registry.names():
        return
    path = os.path.join(run_dir, VARIANT_FILE)
    module = None
    if os.path.exists(path):
        with open(path) as f:
            module = json.load(f).get("module")
    if module and module != "__main__":
        try:
            importlib.import_module(module)  # a plugin: the user's module that registers the variant
        except ImportError:
            pass
    if name not in registry.names():
        where = f"module {module!r}" if module else "code not recorded in the run"
        raise FileNotFoundError(
            f"{run_dir} was trained with model.name={name!r}, which is not registered here (it was declared in "
            f"{where}); register it first (import that module, or run the cell that calls vae.register_variant), "
            f"or pass `--import MODULE` to the vae command")


def checkpoint_steps(run_dir: str) -> list[int]:
    """The steps of RUN_DIR's checkpoints, ascending; FileNotFoundError naming the path when the
    directory, its config.json or its checkpoints are missing."""
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    config_path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"{run_dir} holds no run: {config_path} is missing")
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    steps = sorted(int(n) for n in os.listdir(ckpt_dir) if n.isdigit()) if os.path.isdir(ckpt_dir) else []
    if not steps:
        raise FileNotFoundError(f"{run_dir} holds no checkpoint (nothing in {ckpt_dir})")
    return steps


def load_run(run_dir: str | os.PathLike, step: int | None = None, split: str | None = None) -> LoadedRun:
    """Loads RUN_DIR's config and a checkpoint (default: the best one, else the latest).

    Raises FileNotFoundError naming the path when the directory, its config.json, its
    checkpoints or the asked-for step are missing, or when the run's variant is not registered.
    """
    run_dir = os.fspath(run_dir)
    steps = checkpoint_steps(run_dir)
    if step is not None and int(step) not in steps:
        raise FileNotFoundError(f"{run_dir} has no checkpoint at step {step} in {os.path.join(run_dir, 'checkpoints')}; "
                                f"steps there: {', '.join(map(str, steps))}")
    with open(os.path.join(run_dir, "config.json")) as f:
        raw = json.load(f)
    _ensure_variant(run_dir, raw)
    config = Config.from_dict(raw)
    split = split or config.data.test_split
    test_ds = vdata.load_split(config.data, split)
    model = build_model(config.model, test_ds.info.image_shape, test_ds.info.num_classes)
    # told what the data are as in training: the values recorded from the training split (the
    # test split alone could look different, e.g. binary by chance), else the test split's own
    values = (raw.get("dataset") or {}).get("values") or test_ds.info.values
    info = dataclasses.replace(test_ds.info, values=values, binary=values == "binary")
    model = for_data(model, prepared_values(info, config.data.binarize), test_ds.info.vectors)
    checkpointer = Checkpointer(os.path.join(run_dir, "checkpoints"), keep=config.train.keep_checkpoints)
    try:
        step = step if step is not None else (checkpointer.best_step() or checkpointer.latest_step())
        state, _ = checkpointer.restore(step=step)
    finally:
        checkpointer.close()
    test_images = prepare(test_ds, config.data.binarize, train=False, seed=EVAL_SEED)
    return LoadedRun(run_dir, config, model, state["params"], state.get("extra", {}), int(step), test_ds, test_images)
