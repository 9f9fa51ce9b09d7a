"""A training run: the loop that ties data, model, objective and checkpoints to a run directory.

    runs/<name>/
      config.json        the full resolved config
      metrics.jsonl      one JSON object per logged step (train and test)
      checkpoints/       orbax checkpoints: the latest N and the best
      figures/           reconstructions.png, samples.png, traversals.png, interpolations.png
      summary.json       final test metrics, steps, wall time, steps/s
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import sys
import threading
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from vae import data as vdata
from vae.checkpoint import Checkpointer
from vae.config import Config, ConfigError
from vae.data.pipeline import Batcher, eval_batches, prepare
from vae.evaluate import encode_split, iwae_log_likelihood, latent_diagnostics
from vae.explore import Explorer, make_figure, write_run_figures
from vae.models import VAE, build_model
from vae.objectives import build_objective
from vae.parallel import batch_sharding, blocks_each_step, check_batch_size, make_mesh, state_sharding
from vae.plots import save_figure
from vae.train import (
    count_params,
    create_train_state,
    evaluate,
    learning_rate_schedule,
    make_eval_step,
    check_splits,
    make_fused_train_step,
    make_optimizer,
    make_train_step,
)

EVAL_SEED = 0  # evaluation splits are binarized and sampled identically in every run
RESUMABLE_SECTIONS = ("train",)


class RunDirError(ValueError):
    """The output directory cannot be used as asked (holds another run, or has nothing to resume)."""


def batch_in_step(setting: str, batcher: Batcher) -> bool:
    """Whether train.batch_in_step=`setting` gathers batches inside the train step: 'auto' and 'on' do
    wherever the Batcher allows it (not in multi-process runs). An epoch of MLP steps took longer than
    the step alone by 47-71% (H100) and 7-9% (2 CPU cores) with the batch as a second program, and by
    8% and 5-6% with it inside (benchmarks/NOTES.md)."""
    if not batcher.fusable:  # multi-process batches are assembled on the host
        return False
    return setting != "off"


def batch_splits(setting: int, architecture: str, objective, devices: int, batch_size: int) -> int:
    """The parts train.batch_splits=`setting` splits each batch into (see TrainConfig). Auto (0): 2
    on the CPU for convolutional nets, where two independent halves of the step ran 1.02-1.23x
    faster than one pass on 2 cores (conv VAE 1.08, Burgess 1.09-1.15, ResNet 1.22; 4 parts were
    0.89-1.42x, and an MLP lost 9%: benchmarks/NOTES.md); 1 elsewhere. An explicit value the
    objective or device count cannot take is a ConfigError."""
    if setting == 0:
        ok = (jax.default_backend() == "cpu" and architecture in ("conv", "burgess", "resnet")
              and getattr(objective, "per_example", False) and devices == 1 and batch_size % 2 == 0)
        return 2 if ok else 1
    try:
        check_splits(setting, objective, key="train.batch_splits")
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if setting > 1 and batch_size % (setting * devices):
        raise ConfigError(f"train.batch_splits={setting} with {devices} devices needs train.batch_size divisible "
                          f"by {setting * devices}, got {batch_size}")
    return setting


def default_out_dir(config: Config) -> str:
    return os.path.join("runs", config.name)


def _prepare_out_dir(out_dir: str, config: Config, resume: bool, overwrite: bool) -> Config:
    """Checks the run directory and returns the config to run (the saved one when resuming)."""
    config_path = os.path.join(out_dir, "config.json")
    exists = os.path.exists(config_path)
    if resume:
        if not exists:
            raise RunDirError(f"--resume: {out_dir} holds no run (no config.json); start it without --resume")
        with open(config_path) as f:
            saved = Config.from_dict(json.load(f))
        changed = _changed_keys(saved, config, ignore=RESUMABLE_SECTIONS)
        if changed:
            raise RunDirError(f"--resume: the config differs from the run's saved config in {', '.join(changed)}; "
                              f"only train.* settings may change when resuming")
        return dataclasses.replace(saved, train=config.train)
    if exists:
        if not overwrite:
            raise RunDirError(f"{out_dir} already holds a run; pass --resume to continue it, --overwrite to replace "
                              f"it, or --out DIR for a new directory")
        for name in ("checkpoints", "figures", "metrics.jsonl", "summary.json", "config.json"):
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


def _load_split(config: Config, key: str):
    split = getattr(config.data, key)
    try:
        return vdata.load(config.data.name, split, data_dir=config.data.data_dir)
    except vdata.DatasetUnavailableError:
        raise
    except ValueError as err:  # a split the dataset does not have
        raise ConfigError(f"data.{key}={split!r} is not allowed: {err}") from None


def _truncate_metrics(path: str, last_step: int) -> None:
    """Drops log lines written after the checkpoint we resume from, so the log has no duplicates."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = [line for line in f if line.strip() and json.loads(line)["step"] <= last_step]
    with open(path, "w") as f:
        f.writelines(lines)


class NonFiniteError(RuntimeError):
    """Training met a NaN or Inf loss or gradient (with train.on_nonfinite='stop')."""


def _validate_data(config: Config, model, train_images: np.ndarray, image_shape) -> None:
    """Bad input is refused before any training work, with the value and what is allowed."""
    if train_images.ndim != 4:
        raise ConfigError(f"images must be [N, H, W, C]; data.name={config.data.name!r} gave shape "
                          f"{train_images.shape}")
    if not np.isfinite(train_images).all():
        bad = int(np.argwhere(~np.isfinite(train_images.reshape(train_images.shape[0], -1)))[0, 0])
        raise ConfigError(f"data.name={config.data.name!r}: image {bad} of the training split has NaN or Inf pixels")
    if config.model.likelihood in ("bernoulli", "logistic_mixture", "categorical") and (
            train_images.min() < 0 or train_images.max() > 1):
        raise ConfigError(f"model.likelihood={config.model.likelihood!r} needs pixel values in [0, 1]; the training "
                          f"images span [{train_images.min():.3g}, {train_images.max():.3g}]")
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


def _restore_latest_good(checkpointer: Checkpointer, template: Any, out_dir: str) -> tuple[Any, dict, int | None]:
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


def _mean_metrics(stacked: dict[str, np.ndarray]) -> dict[str, float]:
    """Means over the logged steps ([steps] per metric), leaving out steps whose update was
    skipped as non-finite."""
    ok = stacked["nonfinite"] == 0
    out = {}
    for k, v in stacked.items():
        if k.startswith("nonfinite"):
            continue
        out[k] = float(v[ok].mean()) if ok.any() else None
    out["skipped_steps"] = int((~ok).sum())
    return out


class _Interrupt:
    """Turns SIGINT into a flag the loop checks between steps, so the state it saves is whole."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def train(config: Config, out_dir: str | None = None, *, resume: bool = False, overwrite: bool = False,
          model: VAE | None = None) -> dict:
    """Runs (or resumes) training as `config` says and returns the summary written to summary.json.

    model: a VAE of your own (e.g. with custom encoder/decoder modules) instead of the one
    `config.model` describes; it must accept the dataset's images.
    Ctrl-C saves a checkpoint at the current step and raises KeyboardInterrupt; `resume=True`
    continues from the newest readable checkpoint exactly where the data stream left off.
    """
    t_start = time.perf_counter()
    out_dir = out_dir or default_out_dir(config)
    config = _prepare_out_dir(out_dir, config, resume, overwrite)
    tc = config.train

    train_ds = _load_split(config, "train_split")
    test_ds = _load_split(config, "test_split")
    image_shape = train_ds.info.image_shape
    model = model if model is not None else build_model(config.model, image_shape, train_ds.info.num_classes)
    _validate_data(config, model, train_ds.images, image_shape)
    mesh = make_mesh(tc.devices)
    try:
        check_batch_size(tc.batch_size, mesh)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    train_images = prepare(train_ds, config.data.binarize, train=True, seed=config.seed)
    test_images = prepare(test_ds, config.data.binarize, train=False, seed=EVAL_SEED)

    objective = build_objective(config.model, config.objective, dataset_size=len(train_ds), total_steps=tc.steps)
    splits = batch_splits(tc.batch_splits, config.model.architecture, objective, mesh.devices.size, tc.batch_size)
    schedule = learning_rate_schedule(config.optim, tc.steps)
    optimizer = make_optimizer(config.optim, tc.steps)
    state = create_train_state(model, optimizer, image_shape, config.seed, objective)

    os.makedirs(out_dir, exist_ok=True)
    checkpointer = Checkpointer(os.path.join(out_dir, "checkpoints"), keep=tc.keep_checkpoints)
    metrics_path = os.path.join(out_dir, "metrics.jsonl")
    elapsed_before, carried = 0.0, []
    if resume:
        state, record, restored_step = _restore_latest_good(checkpointer, state, out_dir)
        if restored_step is not None:
            print(f"vae: resuming {out_dir} from step {restored_step}", file=sys.stderr)
        elapsed_before = float(record.get("elapsed", 0.0))
        carried = list(record.get("pending", []))
        _truncate_metrics(metrics_path, int(state.step))
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        f.write(config.to_json())

    parallel = mesh.devices.size > 1
    shardings = state_sharding(state, mesh, tc.shard_params) if parallel else None
    if parallel:
        state = jax.device_put(state, shardings)
    block = blocks_each_step(mesh)
    batcher = Batcher(train_images, train_ds.labels, tc.batch_size, seed=config.seed,
                      dynamic_binarization=config.data.binarize == "dynamic" and not train_ds.info.binary,
                      mesh=mesh if parallel else None)
    if batch_in_step(tc.batch_in_step, batcher):
        train_step = make_fused_train_step(model, objective, optimizer, batcher, schedule, state_sharding=shardings,
                                           splits=splits)
        step_input = batcher.data
    else:
        train_step = make_train_step(model, objective, optimizer, schedule, state_sharding=shardings,
                                     batch_sharding=batch_sharding(mesh) if parallel else None, splits=splits)
        step_input = batcher.batch
    eval_step = make_eval_step(model, objective)
    eval_rng = jax.random.PRNGKey(EVAL_SEED)

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - t_start

    def log(record: dict) -> None:
        with open(metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def run_eval(step: int) -> dict:
        m = evaluate(eval_step, state.params, eval_batches(test_images, test_ds.labels, tc.eval_batch_size), eval_rng,
                     state.extra, int(state.step))
        log({"step": step, "split": "test", **m, "elapsed": elapsed()})
        return m

    def check_finite(done: int, stacked: dict[str, np.ndarray]) -> None:
        flags = stacked["nonfinite"]
        if tc.on_nonfinite == "skip" or not flags.any():
            return
        i = int(np.argmax(flags))
        bad_step = done - len(flags) + i + 1
        what = "loss" if stacked["nonfinite_loss"][i] else "gradients (grad_norm)"
        path = os.path.join(out_dir, "nonfinite_batch.json")
        with open(path, "w") as f:
            json.dump({"step": bad_step, "metric": what, "batch_indices": batcher.indices(bad_step - 1).tolist(),
                       "split": config.data.train_split}, f)
        raise NonFiniteError(
            f"non-finite {what} at step {bad_step}; the update was not applied and training stopped. The last good "
            f"checkpoint (step {checkpointer.latest_step()}) is kept, the batch's indices are in {path}; "
            f"lower optim.learning_rate, set optim.clip_norm, or pass --set train.on_nonfinite=skip")

    start = int(state.step)
    pending: list[dict] = [jax.tree_util.tree_map(jnp.asarray, m) for m in carried]
    train_time, compile_time, timed_steps = 0.0, 0.0, 0
    test_metrics: dict = {}
    bar = tqdm(total=tc.steps, initial=start, unit="step", disable=not tc.progress, dynamic_ncols=True)
    seg_start, seg_steps = time.perf_counter(), 0
    with _Interrupt() as interrupt:
        for step in range(start, tc.steps):
            if interrupt.requested:
                jax.block_until_ready(state)
                host_pending = [{k: float(v) for k, v in m.items()} for m in jax.device_get(pending)]
                if checkpointer.latest_step() != step:  # (a checkpoint may have just been written here)
                    checkpointer.save(step, state, {"elapsed": elapsed(), "config": config.to_dict(),
                                                    "pending": host_pending, "interrupted": True})
                checkpointer.close()
                bar.close()
                print(f"vae: interrupted; saved a checkpoint at step {step} in {out_dir} (resume with --resume)",
                      file=sys.stderr)
                raise KeyboardInterrupt
            state, metrics = train_step(state, step_input(step))
            pending.append(metrics)
            done = step + 1
            if block:
                jax.block_until_ready(metrics)
            if step == start:
                jax.block_until_ready(metrics)
                compile_time = time.perf_counter() - seg_start
                seg_start, seg_steps = time.perf_counter(), 0
            else:
                seg_steps += 1
            bar.update(1)
            is_eval = done % tc.eval_every == 0 or done == tc.steps
            if done % tc.log_every == 0 or is_eval:
                # one device-to-host transfer per log point serves the NaN check and the means
                host = jax.device_get(pending)
                stacked = {k: np.asarray([m[k] for m in host]) for k in host[0]}
                check_finite(done, stacked)
                means = _mean_metrics(stacked)
                pending.clear()
                now = time.perf_counter()
                train_time += now - seg_start
                timed_steps += seg_steps
                log({"step": done, "split": "train", **means, "elapsed": elapsed()})
                rate = timed_steps / train_time if train_time > 0 else float("nan")
                loss_text = "nan" if means["loss"] is None else f"{means['loss']:.2f}"
                bar.set_postfix(loss=loss_text, steps_per_s=f"{rate:.0f}", refresh=False)
                if is_eval:
                    test_metrics = run_eval(done)
                    bar.set_postfix(loss=loss_text, test_elbo=f"{test_metrics['elbo']:.2f}",
                                    steps_per_s=f"{rate:.0f}", refresh=False)
                    checkpointer.save(done, state, {"elapsed": elapsed(), "config": config.to_dict()},
                                      metrics={"loss": test_metrics["loss"]})
                seg_start, seg_steps = time.perf_counter(), 0
    bar.close()
    if not test_metrics:  # nothing left to train (resumed a finished run): evaluate the restored state
        test_metrics = run_eval(int(state.step))
    best_step = checkpointer.best_step()
    checkpointer.close()

    final = {}
    if tc.final_iwae_samples:
        final["iwae"] = iwae_log_likelihood(model, state.params, test_images, tc.final_iwae_samples,
                                            labels=test_ds.labels, chunk_size=min(tc.final_iwae_samples, 100),
                                            seed=EVAL_SEED)
    means, log_vars = encode_split(model, state.params, test_images, labels=test_ds.labels)
    final["latent"] = latent_diagnostics(means, log_vars)
    explorer = Explorer(model, state.params, data=dataclasses.replace(test_ds, images=test_images))
    figures = {kind: save_figure(make_figure(explorer, kind, steps=steps, seed=config.seed),
                                 os.path.join(out_dir, "figures", f"{kind}.png"))
               for kind, steps in (("samples", tc.num_samples), ("reconstructions", None))}
    figures.update(write_run_figures(explorer, out_dir, seed=config.seed))
    summary = {
        "name": config.name,
        "dataset": config.data.name,
        "steps": int(state.step),
        "test": test_metrics,
        "test_elbo": test_metrics["elbo"],
        "test_recon": test_metrics["recon"],
        "test_kl": test_metrics["kl"],
        "test_bits_per_dim": test_metrics["bits_per_dim"],
        "test_iwae": final.get("iwae"),
        "active_units": final["latent"]["active_units"],
        "latent": final["latent"],
        "wall_time_s": elapsed(),
        "train_steps_per_s": timed_steps / train_time if train_time > 0 else None,
        "compile_time_s": compile_time,
        "num_params": count_params(state.params),
        "best_step": best_step,
        "devices": [str(d) for d in mesh.devices.flat],
        "batch_splits": splits,
        "figures": {k: os.path.relpath(v, out_dir) for k, v in figures.items()},
    }
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


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


def load_run(run_dir: str, step: int | None = None, split: str | None = None) -> LoadedRun:
    """Loads RUN_DIR's config and a checkpoint (default: the best one, else the latest).

    Raises FileNotFoundError naming the path when the directory, its config.json or its
    checkpoints are missing.
    """
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    config_path = os.path.join(run_dir, "config.json")
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"{run_dir} holds no run: {config_path} is missing")
    with open(config_path) as f:
        config = Config.from_dict(json.load(f))
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    if not os.path.isdir(ckpt_dir) or not any(name.isdigit() for name in os.listdir(ckpt_dir)):
        raise FileNotFoundError(f"{run_dir} holds no checkpoint (nothing in {ckpt_dir})")
    split = split or config.data.test_split
    test_ds = vdata.load(config.data.name, split, data_dir=config.data.data_dir)
    model = build_model(config.model, test_ds.info.image_shape, test_ds.info.num_classes)
    checkpointer = Checkpointer(ckpt_dir, keep=config.train.keep_checkpoints)
    try:
        step = step if step is not None else (checkpointer.best_step() or checkpointer.latest_step())
        state, _ = checkpointer.restore(step=step)
    finally:
        checkpointer.close()
    test_images = prepare(test_ds, config.data.binarize, train=False, seed=EVAL_SEED)
    return LoadedRun(run_dir, config, model, state["params"], state.get("extra", {}), int(step), test_ds, test_images)
