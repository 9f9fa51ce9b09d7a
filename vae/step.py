"""The step: train state, optimizer, and the jitted train and evaluation steps.

State is explicit: `TrainState` holds params, optimizer state, step and RNG key, and the train
step is a pure function `(state, batch) -> (state, metrics)` compiled once with `jax.jit`.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from vae.config import OptimConfig
from vae.objectives.base import Objective


@struct.dataclass
class TrainState:
    """step: int32 []; params: the model's 'params' collection; opt_state: optax state;
    rng: uint32 [2] base key (step keys are fold_in(rng, step), so no key is carried between
    steps); extra: objective-owned state (e.g. a second network's params), {} for the ELBO."""

    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array
    extra: Any


def learning_rate_schedule(config: OptimConfig, total_steps: int) -> optax.Schedule:
    """Linear warm-up from 0 over `warmup_steps`, then constant or cosine decay to
    `learning_rate * end_learning_rate_factor` at `total_steps`."""
    lr, warmup = config.learning_rate, config.warmup_steps
    if config.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(total_steps, warmup + 1),
                                                  end_value=lr * config.end_learning_rate_factor)
    if config.schedule == "piecewise":
        main = optax.piecewise_constant_schedule(lr, {int(b): float(s) for b, s in zip(config.boundaries, config.scales)})
    else:
        main = optax.constant_schedule(lr)
    if warmup:
        return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])
    return main


def make_optimizer(config: OptimConfig, total_steps: int) -> optax.GradientTransformation:
    """The optax optimizer a config describes (with optional global-norm clipping first)."""
    schedule = learning_rate_schedule(config, total_steps)
    if config.optimizer == "adamw":
        opt = optax.adamw(schedule, b1=config.b1, b2=config.b2, eps=config.eps, weight_decay=config.weight_decay)
    else:
        opt = optax.adam(schedule, b1=config.b1, b2=config.b2, eps=config.eps)
    if config.clip_norm is not None:
        opt = optax.chain(optax.clip_by_global_norm(config.clip_norm), opt)
    return opt


def init_params(model: nn.Module, image_shape: tuple[int, int, int], key: jax.Array) -> Any:
    """The model's 'params' for images of `image_shape`, from a dummy batch of shape [1, *image_shape]."""
    init_key, sample_key = jax.random.split(key)
    dummy = jnp.zeros((1, *image_shape), jnp.float32)
    y = jnp.zeros((1,), jnp.int32) if getattr(model, "num_classes", 0) else None

    def init(init_key, sample_key, dummy, y):
        return model.init({"params": init_key, "sample": sample_key}, dummy, y)["params"]

    # Run once, so compiled without XLA's backend optimizations: the same values, several times
    # sooner for the conv nets (benchmarks/NOTES.md, "figures moved out of docstrings").
    lowered = jax.jit(init).lower(init_key, sample_key, dummy, y)
    try:
        compiled = lowered.compile(compiler_options={"xla_backend_optimization_level": 0})
    except Exception:  # noqa: BLE001 - a backend without that option compiles as usual
        compiled = lowered.compile()
    return compiled(init_key, sample_key, dummy, y)


def create_train_state(model: nn.Module, optimizer: optax.GradientTransformation,
                       image_shape: tuple[int, int, int], seed: int, objective: Objective | None = None) -> TrainState:
    """Initialises params (and the objective's extra state: `objective.init_extra`) from `seed`."""
    root = jax.random.PRNGKey(seed)
    init_key, extra_key, run_key = jax.random.split(root, 3)
    params = init_params(model, image_shape, init_key)
    extra = objective.init_extra(model, params, extra_key, image_shape) if objective is not None else {}
    return TrainState(step=jnp.asarray(0, jnp.int32), params=params, opt_state=optimizer.init(params),
                      rng=run_key, extra=extra)


def _split_rows(a: jax.Array, i: int, splits: int) -> jax.Array:
    """Rows i, i + splits, i + 2 splits, ... of a: every device's shard of a batch sharded over
    rows holds rows of every part."""
    return a.reshape(a.shape[0] // splits, splits, *a.shape[1:])[:, i]


def _check_objective(objective: Any) -> Objective:
    if not isinstance(objective, Objective):
        raise TypeError(f"the train step takes a vae.objectives.Objective (subclass it and implement compute); "
                        f"got {type(objective).__name__}")
    return objective


def check_splits(splits: int, objective: Objective, key: str = "splits") -> int:
    """`splits` if the objective can be split that many ways (see make_train_step), else a
    ValueError naming `key`."""
    if not isinstance(splits, int) or splits < 1:
        raise ValueError(f"{key}={splits!r} is not allowed; it must be an int >= 1")
    if splits > 1 and not getattr(objective, "per_example", False):
        raise ValueError(f"{key}={splits} needs a per-example objective (its loss a mean over examples, "
                         f"as the ELBO without free bits and IWAE); {type(objective).__name__} uses batch "
                         "statistics, so use 1")
    return splits


def _step_fn(model: nn.Module, objective: Objective, optimizer: optax.GradientTransformation,
             schedule: optax.Schedule | None, splits: int = 1) -> Callable:
    """The pure `(state, batch) -> (state, metrics)` of one training step (not jitted)."""
    compute = _check_objective(objective).compute

    def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        rng = jax.random.fold_in(state.rng, state.step)
        loss_rng, extra_rng = jax.random.split(rng)

        def loss_fn(params):
            if splits == 1:
                loss, metrics, aux = compute(model, params, batch, loss_rng, state.step, state.extra)
                return loss, (metrics, aux)
            # a per-example objective over `splits` equal parts of the batch, each with its own
            # key: the same loss and gradient in expectation as one pass, as independent chains
            # of ops that XLA:CPU runs side by side on its cores
            losses, parts = [], []
            for i in range(splits):
                part = jax.tree_util.tree_map(lambda a: _split_rows(a, i, splits), batch)
                loss_i, metrics_i, _ = compute(model, params, part, jax.random.fold_in(loss_rng, i), state.step,
                                               state.extra)
                losses.append(loss_i)
                parts.append({k: jnp.mean(v) for k, v in metrics_i.items()})
            metrics = {k: jnp.mean(jnp.stack([m[k] for m in parts])) for k in parts[0]}
            return jnp.mean(jnp.stack(losses)), (metrics, None)

        (loss, (metrics, aux)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        metrics = {k: jnp.mean(v) for k, v in metrics.items()}
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)

        def update(_):
            updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
            return optax.apply_updates(state.params, updates), opt_state

        # A non-finite loss or gradient leaves params, optimizer and extra state as they were. A
        # branch, not jnp.where(finite, new, old) over the state: the select is a second pass
        # over every parameter and Adam moment, which cost several times what the branch does
        # (benchmarks/NOTES.md, "figures moved out of docstrings").
        params, opt_state = jax.lax.cond(finite, update, lambda _: (state.params, state.opt_state), None)
        extra, extra_metrics = state.extra, {}
        if type(objective).update_extra is not Objective.update_extra:
            # The objective's own update (a discriminator, EMA statistics) runs outside the branch:
            # inside a conditional XLA:CPU ran a discriminator's convolutions ~20x slower
            # (benchmarks/NOTES.md, "Model zoo II"). A non-finite step discards its result.
            new_params, new_extra, new_metrics = objective.update_extra(model, params, state.extra, aux, batch,
                                                                        extra_rng, state.step)
            new_metrics = {k: jnp.mean(v) for k, v in new_metrics.items()}
            zeros = jax.tree_util.tree_map(jnp.zeros_like, new_metrics)
            params, extra, extra_metrics = jax.lax.cond(
                finite, lambda _: (new_params, new_extra, new_metrics), lambda _: (params, state.extra, zeros), None)
        metrics.update(extra_metrics)
        metrics["grad_norm"] = grad_norm
        metrics["nonfinite"] = 1.0 - finite.astype(jnp.float32)
        metrics["nonfinite_loss"] = 1.0 - jnp.isfinite(loss).astype(jnp.float32)
        if schedule is not None:
            metrics["lr"] = schedule(state.step)
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state, extra=extra), metrics

    return train_step


def make_train_step(model: nn.Module, objective: Objective, optimizer: optax.GradientTransformation,
                    schedule: optax.Schedule | None = None, *, state_sharding: Any = None,
                    batch_sharding: Any = None, splits: int = 1) -> Callable:
    """The jitted step `(state, batch) -> (state, metrics)`; the input state is donated.

    metrics: batch means of the objective's metrics, plus grad_norm, `nonfinite` (1.0 when the
    loss or a gradient was NaN/Inf: that step's update is not applied, so the state is never
    poisoned; the loop decides whether to stop or skip) and lr given a schedule.
    state_sharding / batch_sharding: shardings for data-parallel training over a device mesh
    (see `vae.parallel`); None leaves placement to JAX.
    splits: the objective is evaluated on this many equal parts of the batch (rows i, i + splits,
    ...), part i with key fold_in(key, i), and the loss and metrics are their means: the same
    estimator with independent chains of ops, which XLA:CPU runs side by side on its cores (faster
    for the conv nets: benchmarks/NOTES.md; vae.run's train.batch_splits). Needs `objective.per_example`
    and a batch size it divides; 1 (default) is the plain step.
    """
    return _jit_step(_step_fn(model, objective, optimizer, schedule, check_splits(splits, objective)),
                     state_sharding, batch_sharding)


def make_fused_train_step(model: nn.Module, objective: Objective, optimizer: optax.GradientTransformation,
                          batcher: Any, schedule: optax.Schedule | None = None, *, state_sharding: Any = None,
                          splits: int = 1) -> Callable:
    """Like make_train_step, with the batch built inside the same compiled program:
    `(state, batcher.data(step)) -> (state, metrics)` gathers (and binarizes) batch `state.step`
    of a `vae.data.pipeline.Batcher` on device: one dispatch per step instead of two, with the
    same states and metrics. vae.run uses it by default (train.batch_in_step): it cut the
    pipeline's share of a step on an H100 and on 2 CPU cores (benchmarks/NOTES.md, "pipeline").
    Not for multi-process batchers (their batches are assembled on the host). splits: as in
    make_train_step."""
    if not batcher.fusable:
        raise ValueError("this Batcher assembles batches on the host (multi-process); use make_train_step")
    step_fn = _step_fn(model, objective, optimizer, schedule, check_splits(splits, objective))

    def fused(state: TrainState, data: tuple) -> tuple[TrainState, dict]:
        return step_fn(state, batcher.gather(*data, state.step))

    return _jit_step(fused, state_sharding, batcher.data_sharding)


def _jit_step(step_fn: Callable, state_sharding: Any, input_sharding: Any) -> Callable:
    """`step_fn(state, input)` jitted with the state donated; with a state sharding, placed over the mesh."""
    if state_sharding is None:
        return jax.jit(step_fn, donate_argnums=0)
    return jax.jit(step_fn, donate_argnums=0, in_shardings=(state_sharding, input_sharding),
                   out_shardings=(state_sharding, None))


def make_eval_step(model: nn.Module, objective: Objective) -> Callable:
    """The jitted `(params, batch, rng) -> sums`: masked sums over the batch of each metric
    (batch['mask'] is 1 for real rows, 0 for padding), plus 'count'."""

    def eval_step(params, batch: dict, rng: jax.Array, extra: Any = None, step: Any = 0) -> dict:
        _, metrics = objective(model, params, batch, rng, jnp.asarray(step, jnp.int32), *([] if extra is None else [extra]))
        mask = batch["mask"]
        count = jnp.sum(mask)
        sums = {k: (jnp.sum(v * mask) if jnp.ndim(v) == 1 else v * count) for k, v in metrics.items()}
        sums["count"] = count
        return sums

    return jax.jit(eval_step)


def evaluate(eval_step: Callable, params: Any, batches: Iterable[dict], rng: jax.Array, extra: Any = None,
             step: int = 0) -> dict[str, float]:
    """Means over a whole split of every metric, as Python floats (one sample of z per image)."""
    totals: dict[str, Any] = {}
    for i, batch in enumerate(batches):
        sums = eval_step(params, batch, jax.random.fold_in(rng, i), extra, step)
        totals = sums if not totals else jax.tree_util.tree_map(jnp.add, totals, sums)
    totals = jax.device_get(totals)
    count = float(totals.pop("count"))
    return {k: float(np.asarray(v) / count) for k, v in totals.items()}


def count_params(params: Any) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(params)))
