"""The training loop: `train(config, out_dir)` sets a run up, steps it, evaluates and checkpoints
every train.eval_every steps, and finishes it (final estimates, figures, summary.json)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import threading
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from vae.checkpoint import Checkpointer
from vae.config import Config, check_variant_fields
from vae.data.pipeline import Batcher, eval_batches, prepare, prepared_values
from vae.data.stream import StreamBatcher
from vae.errors import ConfigError, NonFiniteError
from vae.memory import keep_large_buffers
from vae.models import for_data
from vae.models.precision import with_compute_dtype
from vae.parallel import batch_sharding, blocks_each_step, check_batch_size, make_mesh, state_sharding
from vae.run.card import write_model_card
from vae.run.finish import final_estimates, run_figures, write_summary
from vae.run.trackers import Trackers, check_loggers
from vae.run.setup import (
    batch_in_step,
    batch_splits,
    check_data,
    check_model_fits,
    dataset_record,
    default_out_dir,
    discard_memory_data,
    load_split,
    prepare_out_dir,
    restore_latest_good,
    save_memory_data,
    truncate_metrics,
    with_trained_features,
)
from vae.step import (
    TrainState,
    create_train_state,
    evaluate,
    learning_rate_schedule,
    make_eval_step,
    make_fused_train_step,
    make_optimizer,
    make_train_step,
)
from vae.trained.rundir import EVAL_SEED, write_variant_record
from vae.variants import build_model, build_objective


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


@dataclasses.dataclass
class _Run:
    """Everything a run needs once set up (the state is carried separately)."""

    config: Config
    out_dir: str
    model: Any
    test_ds: Any
    test_images: np.ndarray
    mesh: Any
    splits: int
    batcher: Batcher
    train_step: Callable
    step_input: Callable
    eval_step: Callable
    checkpointer: Checkpointer
    metrics_path: str
    t_start: float
    elapsed_before: float
    carried: list
    trackers: Trackers
    primary: bool = True   # process 0 of a multi-process job writes the run's files; the others train alongside

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.t_start

    def log(self, record: dict) -> None:
        if not self.primary:
            return
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.trackers.log(record)

    def run_eval(self, state: TrainState, step: int) -> dict:
        tc = self.config.train
        m = evaluate(self.eval_step, state.params, eval_batches(self.test_images, self.test_ds.labels,
                                                                tc.eval_batch_size),
                     jax.random.PRNGKey(EVAL_SEED), state.extra, int(state.step))
        self.log({"step": step, "split": "test", **m, "elapsed": self.elapsed()})
        return m

    def check_finite(self, done: int, stacked: dict[str, np.ndarray]) -> None:
        flags = stacked["nonfinite"]
        if self.config.train.on_nonfinite == "skip" or not flags.any():
            return
        i = int(np.argmax(flags))
        bad_step = done - len(flags) + i + 1
        what = "loss" if stacked["nonfinite_loss"][i] else "gradients (grad_norm)"
        path = os.path.join(self.out_dir, "nonfinite_batch.json")
        with open(path, "w") as f:
            json.dump({"step": bad_step, "metric": what, "batch_indices": self.batcher.indices(bad_step - 1).tolist(),
                       "split": self.config.data.train_split}, f)
        raise NonFiniteError(
            f"non-finite {what} at step {bad_step}; the update was not applied and training stopped. The last good "
            f"checkpoint (step {self.checkpointer.latest_step()}) is kept, the batch's indices are in {path}; "
            f"lower optim.learning_rate, set optim.clip_norm, or pass --set train.on_nonfinite=skip")


def _set_up(config: Config, out_dir: str, resume: bool, overwrite: bool, model: Any, t_start: float,
            data: Any = None):
    """Checks everything before any work, builds model, objective, state and steps: (_Run, state)."""
    if not resume:  # a resumed run keeps its saved config, whatever version wrote it
        check_variant_fields(config)
    check_loggers(config.train.loggers)
    config = prepare_out_dir(out_dir, config, resume, overwrite)
    primary = jax.process_index() == 0
    if data is not None and jax.process_count() > 1:
        raise ConfigError("data passed in memory trains in one process; for several, write it to an .npz that "
                          "every process reads (data.name=PATH)")
    if data is not None and not resume:   # (a resumed run reads its saved copy)
        config = save_memory_data(config, out_dir, data)
    tc = config.train
    try:
        train_ds = load_split(config, "train_split", stream=True)   # a prepared dataset streams
        test_ds = load_split(config, "test_split")
        image_shape = train_ds.info.image_shape
        check_data(config, train_ds, test_ds, source="the data passed in memory" if data is not None else None)
        model = model if model is not None else build_model(config.model, image_shape, train_ds.info.num_classes)
        # the likelihood told what the data are: bits/dim's 8-bit offset, the mean's [0, 1] clip
        model = for_data(model, prepared_values(train_ds.info, config.data.binarize), train_ds.info.vectors)
        check_model_fits(config, model, image_shape)
    except ConfigError:
        if data is not None and not resume:   # a refused run leaves no copy of its data behind
            discard_memory_data(out_dir)
        raise
    try:   # the train step's model: its networks in train.compute_dtype (evaluation stays float32)
        step_model = with_compute_dtype(model, tc.compute_dtype)
    except ValueError as err:
        raise ConfigError(f"train.compute_dtype={tc.compute_dtype}: {err}") from None
    mesh = make_mesh(tc.devices)
    try:
        check_batch_size(tc.batch_size, mesh)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    train_images = None if train_ds.images is None else prepare(train_ds, config.data.binarize, train=True,
                                                                seed=config.seed)
    test_images = prepare(test_ds, config.data.binarize, train=False, seed=EVAL_SEED)

    objective = build_objective(config, dataset_size=len(train_ds), total_steps=tc.steps)
    splits = batch_splits(tc.batch_splits, config.model.architecture, objective, mesh.devices.size, tc.batch_size)
    schedule = learning_rate_schedule(config.optim, tc.steps)
    optimizer = make_optimizer(config.optim, tc.steps)
    state = create_train_state(model, optimizer, image_shape, config.seed, objective)
    if not resume:  # (a resumed run restores them from its checkpoint)
        state = with_trained_features(state, objective, config, out_dir, model, test_ds)

    os.makedirs(out_dir, exist_ok=True)
    checkpointer = Checkpointer(os.path.join(out_dir, "checkpoints"), keep=tc.keep_checkpoints)
    metrics_path = os.path.join(out_dir, "metrics.jsonl")
    elapsed_before, carried, restored_step = 0.0, [], None
    if resume:
        state, record, restored_step = restore_latest_good(checkpointer, state, out_dir)
        if restored_step is not None:
            print(f"vae: resuming {out_dir} from step {restored_step}", file=sys.stderr)
        elapsed_before = float(record.get("elapsed", 0.0))
        carried = list(record.get("pending", []))
        truncate_metrics(metrics_path, int(state.step))
    if primary:
        with open(os.path.join(out_dir, "config.json"), "w") as f:
            json.dump({**config.to_dict(), "dataset": dataset_record(train_ds, test_ds, out_dir)}, f, indent=2,
                      sort_keys=True)
        write_variant_record(out_dir, config.model.name)

    parallel = mesh.devices.size > 1
    shardings = state_sharding(state, mesh, tc.shard_params) if parallel else None
    if parallel:
        state = jax.device_put(state, shardings)
    dynamic = config.data.binarize == "dynamic" and not train_ds.info.binary
    if train_images is None:
        batcher = StreamBatcher(train_ds.source, tc.batch_size, seed=config.seed, dynamic_binarization=dynamic,
                                mesh=mesh if parallel else None)
    else:
        batcher = Batcher(train_images, train_ds.labels, tc.batch_size, seed=config.seed,
                          dynamic_binarization=dynamic, mesh=mesh if parallel else None)
    if batch_in_step(tc.batch_in_step, batcher):
        train_step = make_fused_train_step(step_model, objective, optimizer, batcher, schedule,
                                           state_sharding=shardings, splits=splits)
        step_input = batcher.data
    else:
        train_step = make_train_step(step_model, objective, optimizer, schedule, state_sharding=shardings,
                                     batch_sharding=batch_sharding(mesh) if parallel else None, splits=splits)
        step_input = batcher.batch
    # a resumed run's events past its restart step are purged, as metrics.jsonl is truncated there
    trackers = Trackers(tc.loggers if primary else (), out_dir, config,
                        resume_step=int(state.step) + 1 if resume else None)
    run = _Run(config=config, out_dir=out_dir, model=model, test_ds=test_ds, test_images=test_images, mesh=mesh,
               splits=splits, batcher=batcher, train_step=train_step, step_input=step_input,
               eval_step=make_eval_step(model, objective), checkpointer=checkpointer, metrics_path=metrics_path,
               t_start=t_start, elapsed_before=elapsed_before, carried=carried, trackers=trackers, primary=primary)
    return run, state


def _steps(run: _Run, state: TrainState) -> tuple[TrainState, dict, float, int, float]:
    """Steps the run to train.steps: (state, last test metrics, train time, timed steps, compile time).
    Ctrl-C saves a checkpoint at the current step and raises KeyboardInterrupt."""
    config, tc, checkpointer = run.config, run.config.train, run.checkpointer
    block = blocks_each_step(run.mesh)
    start = int(state.step)
    pending: list[dict] = [jax.tree_util.tree_map(jnp.asarray, m) for m in run.carried]
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
                    checkpointer.save(step, state, {"elapsed": run.elapsed(), "config": config.to_dict(),
                                                    "pending": host_pending, "interrupted": True})
                checkpointer.close()
                bar.close()
                print(f"vae: interrupted; saved a checkpoint at step {step} in {run.out_dir} (resume with --resume)",
                      file=sys.stderr)
                raise KeyboardInterrupt
            state, metrics = run.train_step(state, run.step_input(step))
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
                run.check_finite(done, stacked)
                means = _mean_metrics(stacked)
                pending.clear()
                now = time.perf_counter()
                train_time += now - seg_start
                timed_steps += seg_steps
                run.log({"step": done, "split": "train", **means, "elapsed": run.elapsed()})
                rate = timed_steps / train_time if train_time > 0 else float("nan")
                loss_text = "nan" if means["loss"] is None else f"{means['loss']:.2f}"
                bar.set_postfix(loss=loss_text, steps_per_s=f"{rate:.0f}", refresh=False)
                if is_eval:
                    test_metrics = run.run_eval(state, done)
                    shown = "elbo" if "elbo" in test_metrics else "recon"  # (models without a density: recon)
                    bar.set_postfix(loss=loss_text, **{f"test_{shown}": f"{test_metrics[shown]:.2f}"},
                                    steps_per_s=f"{rate:.0f}", refresh=False)
                    checkpointer.save(done, state, {"elapsed": run.elapsed(), "config": config.to_dict()},
                                      metrics={"loss": test_metrics["loss"]})
                seg_start, seg_steps = time.perf_counter(), 0
    bar.close()
    return state, test_metrics, train_time, timed_steps, compile_time


def train(config: Config, out_dir: str | None = None, *, resume: bool = False, overwrite: bool = False,
          model: Any = None, data: Any = None) -> dict:
    """Runs (or resumes) training as `config` says and returns the summary written to summary.json.

    model: a `vae.models.LatentVariableModel` of your own (e.g. with custom encoder/decoder
    modules) instead of the one `config.model` describes; it must accept the dataset's images.
    data: in-memory data instead of config.data.name: images [N, H, W(, C)] (uint8, or floats in
    [0, 1]) or vectors [N, D] (real values; model.architecture=mlp, a gaussian likelihood,
    data.binarize=none), (x, labels), {'images' or 'vectors', 'labels'}, a `vae.data.Dataset`,
    or {'train': ..., 'test': ...}; checked and split like your own files (`vae.data.files`),
    copied to RUN_DIR/data/ and recorded as from memory in config.json (a resumed run reads that
    copy).
    Ctrl-C saves a checkpoint at the current step and raises KeyboardInterrupt; `resume=True`
    continues from the newest readable checkpoint exactly where the data stream left off.
    """
    t_start = time.perf_counter()
    out_dir = out_dir or default_out_dir(config)
    run, state = _set_up(config, out_dir, resume, overwrite, model, t_start, data)
    keep_large_buffers()   # from here on XLA:CPU's per-step buffers stay mapped between steps (vae/memory.py)
    config = run.config
    try:
        state, test_metrics, train_time, timed_steps, compile_time = _steps(run, state)
        if not test_metrics:  # nothing left to train (resumed a finished run): evaluate the restored state
            test_metrics = run.run_eval(state, int(state.step))
        best_step = run.checkpointer.best_step()
        run.checkpointer.close()

        final = final_estimates(config, run.model, state.params, run.test_ds, run.test_images)
        figures = (run_figures(config, run.model, state.params, run.test_ds, run.test_images, out_dir)
                   if run.primary else {})
        run.trackers.figures(figures, int(state.step))
    finally:
        run.trackers.close()
    summary = write_summary(
        out_dir, config, state, test_metrics, final, figures, wall_time=run.elapsed(),
        train_steps_per_s=timed_steps / train_time if train_time > 0 else None, compile_time=compile_time,
        best_step=best_step, devices=[str(d) for d in run.mesh.devices.flat], splits=run.splits, write=run.primary)
    if run.primary:
        write_model_card(out_dir)
    return summary
