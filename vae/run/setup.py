"""Setting up a run: the run directory, the data checks, the device mesh and how each step is
built (batches inside the step or not, batch splits), and restoring a checkpoint to resume."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import types
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vae import data as vdata
from vae.checkpoint import Checkpointer
from vae.config import Config
from vae.data.pipeline import Batcher, prepared_values
from vae.errors import ConfigError, RunDirError
from vae.step import TrainState, check_splits
from vae.trained.classifier import DEFAULT_CLASSIFIER_STEPS, load_or_train_classifier

RESUMABLE_SECTIONS = ("train",)
# Training steps of the dataset classifier whose features a perceptual objective uses: the
# sample-quality metrics' default, so that both share one cached classifier.
FEATURE_CLASSIFIER_STEPS = DEFAULT_CLASSIFIER_STEPS
# Variants and terms built on images (conv cells, SSIM, a conv classifier's or discriminator's
# features): refused on vector data, whose examples have no pixels to convolve.
IMAGE_ONLY_VARIANTS = ("nvae", "msssim_vae", "dfc_vae", "vae_gan")
RUN_FILES = ("checkpoints", "figures", "metrics.jsonl", "summary.json", "config.json", "variant.json", "data")
MEMORY_DATA = "data"   # RUN_DIR/data/{train,test}.npz: a copy of data passed in memory


def default_out_dir(config: Config) -> str:
    return os.path.join("runs", config.name)


def batch_in_step(setting: str, batcher: Batcher) -> bool:
    """Whether train.batch_in_step=`setting` gathers batches inside the train step: 'auto' and 'on' do
    wherever the Batcher allows it (not in multi-process runs, whose batches are assembled on
    the host). Why: a second program per step costs more than gathering inside the step
    (benchmarks/NOTES.md, "pipeline")."""
    if not batcher.fusable:
        return False
    return setting != "off"


AUTO_SPLIT_MIN_ROWS = 16   # the smallest part of an automatic four-way split


def batch_splits(setting: int, architecture: str, objective, devices: int, batch_size: int) -> int:
    """The parts train.batch_splits=`setting` splits each batch into (see TrainConfig). Auto (0), on
    the CPU with one device and a per-example objective: for the burgess and resnet nets 4 when
    each part keeps at least 16 rows, else 2; for the conv nets 2 (independent parts of the step
    ran faster than one pass on 2 cores; four parts faster still for the Burgess and ResNet nets,
    slower for some conv nets; an MLP lost: benchmarks/NOTES.md, "batch splits"); 1 elsewhere. An
    explicit value the objective or device count cannot take is a ConfigError."""
    if setting == 0:
        ok = (jax.default_backend() == "cpu" and architecture in ("conv", "burgess", "resnet")
              and getattr(objective, "per_example", False) and devices == 1 and batch_size % 2 == 0)
        if not ok:
            return 1
        four = architecture in ("burgess", "resnet") and batch_size % 4 == 0
        return 4 if four and batch_size // 4 >= AUTO_SPLIT_MIN_ROWS else 2
    try:
        check_splits(setting, objective, key="train.batch_splits")
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if setting > 1 and batch_size % (setting * devices):
        raise ConfigError(f"train.batch_splits={setting} with {devices} devices needs train.batch_size divisible "
                          f"by {setting * devices}, got {batch_size}")
    return setting


def prepare_out_dir(out_dir: str, config: Config, resume: bool, overwrite: bool) -> Config:
    """Checks the run directory and returns the config to run (the saved one when resuming)."""
    config_path = os.path.join(out_dir, "config.json")
    exists = os.path.exists(config_path)
    if resume:
        if not exists:
            raise RunDirError(f"--resume: {out_dir} holds no run (no config.json); start it without --resume")
        with open(config_path) as f:
            saved = Config.from_dict(json.load(f))
        changed = _changed_keys(saved, config, ignore=RESUMABLE_SECTIONS)
        if os.path.isfile(os.path.join(out_dir, MEMORY_DATA, "SOURCE.txt")):   # its data: the saved copy
            changed = [k for k in changed if k not in ("data.name", "data.test_path", "data.image_size",
                                                       "data.channels")]
        if changed:
            raise RunDirError(f"--resume: the config differs from the run's saved config in {', '.join(changed)}; "
                              f"only train.* settings may change when resuming")
        return dataclasses.replace(saved, train=config.train)
    if exists:
        if not overwrite:
            raise RunDirError(f"{out_dir} already holds a run; pass --resume to continue it, --overwrite to replace "
                              f"it, or --out DIR for a new directory")
        for name in RUN_FILES:
            path = os.path.join(out_dir, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
    return config


def _changed_keys(a: Config, b: Config, ignore: tuple[str, ...]) -> list[str]:
    da, db = a.to_dict(), b.to_dict()
    changed = []
    for section in da:
        if section in ignore or section == "name":
            continue
        if isinstance(da[section], dict):
            changed += [f"{section}.{k}" for k in da[section] if da[section][k] != db[section].get(k)]
        elif da[section] != db[section]:
            changed.append(section)
    return changed


def save_memory_data(config: Config, out_dir: str, data: Any) -> Config:
    """Writes data given in memory to RUN_DIR/data/{train,test}.npz (checked and split as your
    own files are, `vae.data.files.memory_splits`) and returns the config that reads them back,
    so the run can be evaluated, explored and resumed like any other."""
    try:
        train, test, how = vdata.memory_splits(data, vdata.file_options(config.data))
    except vdata.DataFileError as err:
        raise ConfigError(str(err)) from None
    folder = os.path.abspath(os.path.join(out_dir, MEMORY_DATA))
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for name, (x, labels) in (("train", train), ("test", test)):
        paths[name] = os.path.join(folder, f"{name}.npz")
        key = "vectors" if x.ndim == 2 else "images"   # (memory_splits gives vectors as [N, D])
        np.savez(paths[name], **{key: x}, **({} if labels is None else {"labels": labels}))
    with open(os.path.join(folder, "SOURCE.txt"), "w") as f:
        f.write(f"data passed in memory to vae.run.train; {how}\n")
    return dataclasses.replace(config, data=dataclasses.replace(
        config.data, name=paths["train"], test_path=paths["test"], image_size=None, channels=None))


def discard_memory_data(out_dir: str) -> None:
    """Removes the copy `save_memory_data` wrote (and OUT_DIR, when nothing else is in it)."""
    shutil.rmtree(os.path.join(out_dir, MEMORY_DATA), ignore_errors=True)
    if os.path.isdir(out_dir) and not os.listdir(out_dir):
        os.rmdir(out_dir)


def _class_counts(ds) -> list[int] | None:
    if hasattr(ds, "class_counts"):   # a streamed split: counted when it was prepared
        return ds.class_counts
    return None if ds.labels is None else np.bincount(ds.labels, minlength=ds.info.num_classes or 0).tolist()


def dataset_record(train_ds, test_ds, out_dir: str | None = None) -> dict:
    """What config.json records of the data a run read: source, description (for your own files:
    the pixel range found and how the splits were made), shapes, classes, sizes, what the
    values are (`values`: 8bit, binary or continuous; `kind`: images or vectors)."""
    info = train_ds.info
    source = os.path.join(out_dir or "", MEMORY_DATA, "SOURCE.txt")
    memory = out_dir is not None and os.path.isfile(source)
    how = ""
    if memory:
        with open(source) as f:
            how = f.read().strip() + "; "
    return {"name": info.name, "source": "memory" if memory else "named", "description": how + info.description,
            "image_shape": list(info.image_shape), "class_names": list(info.class_names),
            "train_class_counts": _class_counts(train_ds),
            "num_classes": info.num_classes, "binary": bool(info.binary), "values": info.values,
            "kind": "vectors" if info.vectors else "images",
            "train_examples": len(train_ds), "test_examples": len(test_ds)}


def load_split(config: Config, key: str, *, stream: bool = False):
    """The dataset split data.<key> names; a split the dataset lacks is a ConfigError. stream:
    a prepared dataset's split comes back as a StreamedSplit (read batch by batch)."""
    split = getattr(config.data, key)
    try:
        streamed = vdata.stream_split(config.data, split) if stream else None
        return streamed if streamed is not None else vdata.load_split(config.data, split)
    except vdata.DatasetUnavailableError:
        raise
    except vdata.DataFileError as err:  # your own data, unusable as given: the message names the file
        raise ConfigError(str(err)) from None
    except ValueError as err:  # a split the dataset does not have
        raise ConfigError(f"data.{key}={split!r} is not allowed: {err}") from None


def truncate_metrics(path: str, last_step: int) -> None:
    """Drops log lines written after the checkpoint we resume from, so the log has no duplicates."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = [line for line in f if line.strip() and json.loads(line)["step"] <= last_step]
    with open(path, "w") as f:
        f.writelines(lines)


def _check_vectors(config: Config, values: str, source: str) -> None:
    """What vector data cannot take: image networks, image-only variants and terms, binarization
    and a Bernoulli likelihood of real values. ConfigError naming the option and what is allowed."""
    m, where = config.model, f"vector data ({source})"
    if m.architecture != "mlp":
        raise ConfigError(f"model.architecture={m.architecture!r} is not allowed with {where}: it convolves images; "
                          f"use 'mlp'")
    if m.name in IMAGE_ONLY_VARIANTS:
        raise ConfigError(f"model.name={m.name!r} is not allowed with {where}: it is built on images; use a variant "
                          f"other than {', '.join(IMAGE_ONLY_VARIANTS)}")
    if config.objective.adversarial != "none":
        raise ConfigError(f"objective.adversarial={config.objective.adversarial!r} is not allowed with {where}: its "
                          f"discriminator is an image network; use 'none'")
    if values != "continuous":
        return
    binarize = config.data.binarize
    also = f", and data.binarize=none (not {binarize!r})" if binarize != "none" else ""
    if m.likelihood == "bernoulli":
        raise ConfigError(f"model.likelihood='bernoulli' is not allowed with {where} of real values: it models 0/1 "
                          f"values; use model.likelihood=gaussian (model.learn_sigma=global or pixel fits the "
                          f"scale){also}")
    if binarize != "none":
        raise ConfigError(f"data.binarize={binarize!r} is not allowed with {where} of real values: binarization "
                          f"draws 0/1 values from intensities in [0, 1]; use data.binarize=none")


def check_data(config: Config, train_ds, test_ds=None, source: str | None = None) -> None:
    """Bad input is refused before any model is built, with the value and what is allowed.
    source: what the messages call the data (default: data.name=...)."""
    train_images, info, image_shape = train_ds.images, train_ds.info, train_ds.info.image_shape
    source = source or f"data.name={config.data.name!r}"
    if test_ds is not None and tuple(test_ds.info.image_shape) != tuple(image_shape):
        raise ConfigError(f"{source}: the training split's examples have shape {tuple(image_shape)} but the test "
                          f"split's {tuple(test_ds.info.image_shape)}")
    if train_images is None:   # streamed: `vae prepare` checked every row (NaN, shapes) and kept the range
        if config.data.binarize == "static":
            raise ConfigError(f"data.binarize='static' draws the whole split at once; {source} is a prepared "
                              f"dataset that training streams: use data.binarize=dynamic or none")
        lo, hi = train_ds.value_range
    else:
        if train_images.ndim != 4:
            raise ConfigError(f"images must be [N, H, W, C]; {source} gave shape {train_images.shape}")
        if not np.isfinite(train_images).all():
            bad = int(np.argwhere(~np.isfinite(train_images.reshape(train_images.shape[0], -1)))[0, 0])
            raise ConfigError(f"{source}: image {bad} of the training split has NaN or Inf pixels")
        lo, hi = float(train_images.min()), float(train_images.max())
    values = prepared_values(info, config.data.binarize)
    if info.vectors:
        _check_vectors(config, info.values, source)
    if config.model.likelihood in ("logistic_mixture", "categorical") and values == "continuous":
        raise ConfigError(f"model.likelihood={config.model.likelihood!r} models 8-bit levels, but the values of "
                          f"{source} are continuous (not on the k/255 grid); use 'gaussian', or data.values=8bit to "
                          f"round values in [0, 1] to the levels")
    if config.model.likelihood in ("bernoulli", "logistic_mixture", "categorical") and (lo < 0 or hi > 1):
        raise ConfigError(f"model.likelihood={config.model.likelihood!r} needs pixel values in [0, 1]; the training "
                          f"images span [{lo:.3g}, {hi:.3g}]")


def check_model_fits(config: Config, model, image_shape) -> None:
    """The model takes examples of `image_shape` and reconstructs that shape (ConfigError if not)."""
    x = jnp.zeros((1, *image_shape))
    y = jnp.zeros((1,), jnp.int32) if getattr(model, "num_classes", 0) else None
    keys = {"params": jax.random.PRNGKey(0), "sample": jax.random.PRNGKey(0)}

    def reconstruct_shape():
        variables = model.init(keys, x, y)
        return model.apply(variables, x, y, rngs=keys, method=type(model).reconstruct)

    try:  # shapes only, nothing is computed: catches a (custom) model that does not fit these images
        out = jax.eval_shape(reconstruct_shape)
    except Exception as err:  # noqa: BLE001 - any failure here means the model and data do not fit
        raise ConfigError(f"the model does not accept images of shape {tuple(image_shape)} from "
                          f"data.name={config.data.name!r}: {type(err).__name__}: {str(err).splitlines()[0]}") from None
    if tuple(out.shape[1:]) != tuple(image_shape):
        raise ConfigError(f"the model does not fit images of shape {tuple(image_shape)} from data.name="
                          f"{config.data.name!r}: its reconstructions have shape {tuple(out.shape[1:])}")


def restore_latest_good(checkpointer: Checkpointer, template: Any, out_dir: str) -> tuple[Any, dict, int | None]:
    """Restores the newest checkpoint that reads back whole. A damaged one is reported and moved
    to RUN_DIR/damaged_checkpoints/<step> (kept for inspection, out of the way of new saves)."""
    for step in sorted(checkpointer.all_steps(), reverse=True):
        try:
            state, record = checkpointer.restore(template, step=step)
            return state, record, step
        except Exception as err:  # noqa: BLE001 - any read failure means this checkpoint is unusable
            target = os.path.join(out_dir, "damaged_checkpoints", str(step))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.move(os.path.join(checkpointer.directory, str(step)), target)
            checkpointer.reload()
            print(f"vae: checkpoint at step {step} is damaged ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
                  f"moved it to {target}, trying an earlier one", file=sys.stderr)
    return template, {}, None


def with_trained_features(state: TrainState, objective, config: Config, out_dir: str, model, test_ds) -> TrainState:
    """`state`, with the frozen feature network of an objective that asks for the dataset
    classifier's (`trained_features='classifier'`, DFC-VAE) set to its trained conv params: the
    classifier is trained on the run's training split (or read from OUT_DIR/classifier/, where
    the sample-quality metrics find it too). Other objectives: `state` unchanged."""
    if getattr(objective, "trained_features", None) != "classifier":
        return state
    run = types.SimpleNamespace(run_dir=out_dir, config=config, model=model, test=test_ds)
    try:
        classifier = load_or_train_classifier(run, steps=FEATURE_CLASSIFIER_STEPS, verbose=True)
    except ValueError as err:
        raise ConfigError(f"model.name={config.model.name!r} measures reconstructions in the features of a "
                          f"classifier trained on the dataset's labels: {err}") from None
    template = state.extra["feature_params"]
    trained = {k: classifier.params[k] for k in template}
    return state.replace(extra={**state.extra, "feature_params": trained})
