"""The training loop of the samplers that learn by gradient (flows, the two-stage VAE, the code
prior): Adam on minibatches drawn with replacement, one jitted program per step, a held-out
share of the data for the reported validation loss."""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vae.samplers.base import SamplerError


def split_held_out(data: np.ndarray, key: jax.Array, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(train, held_out) rows of `data`, a random `fraction` held out (at least one row each when
    fraction > 0; none held out when fraction == 0)."""
    if not 0.0 <= fraction < 1.0:
        raise SamplerError(f"held_out={fraction} must be in [0, 1)")
    n = data.shape[0]
    n_val = 0 if fraction == 0 else min(max(1, int(round(fraction * n))), n - 1)
    order = np.asarray(jax.random.permutation(key, n))
    return data[order[n_val:]], data[order[:n_val]]


def fit_by_gradient(loss_fn: Callable[[Any, jax.Array, jax.Array], jax.Array], params: Any, data: np.ndarray,
                    key: jax.Array, *, steps: int, batch_size: int, learning_rate: float,
                    held_out: float = 0.1, check_every: int = 0, patience: int = 5,
                    eval_batch: int = 2048) -> tuple[Any, dict]:
    """Minimizes mean_b loss_fn(params, batch, key) -> [batch] per-row losses.

    data: [N, ...]. Step t draws `batch_size` rows with replacement with fold_in(key, t); Adam
    with `learning_rate`, gradients clipped at norm 10. With check_every > 0 and held-out rows,
    the held-out loss is measured every check_every steps and the params with the lowest one are
    kept (early stopping: training ends after `patience` checks without improvement, or when the
    loss turns non-finite, reported as diverged_at_step); otherwise the final params, and a
    non-finite loss is an error. Returns the params and a report: train_loss (mean batch loss of the last
    10% of the steps run), held_out_loss (mean per-row loss on the held-out rows, deterministic
    key; with early stopping, that of the kept params, so slightly optimistic), steps run, the
    step kept, and the row counts.
    """
    if steps < 1 or batch_size < 1:
        raise SamplerError(f"steps={steps} and batch_size={batch_size} must be >= 1")
    k_split, k_train, k_eval = jax.random.split(key, 3)
    train, val = split_held_out(np.asarray(data), k_split, held_out)
    optimizer = optax.chain(optax.clip_by_global_norm(10.0), optax.adam(learning_rate))
    train_dev = jnp.asarray(train)
    chunk = check_every if check_every > 0 and val.shape[0] else steps

    def step(carry, t):
        p, opt_state = carry
        k_batch, k_loss = jax.random.split(jax.random.fold_in(k_train, t))
        batch = train_dev[jax.random.randint(k_batch, (batch_size,), 0, train_dev.shape[0])]
        loss, grads = jax.value_and_grad(lambda q: jnp.mean(loss_fn(q, batch, k_loss)))(p)
        updates, opt_state = optimizer.update(grads, opt_state, p)
        return (optax.apply_updates(p, updates), opt_state), loss

    step_fn = jax.jit(step)   # (no donation: early stopping keeps earlier params)

    def run(p, opt_state, first, n):
        # one jitted step per call, not a lax.scan over steps: XLA:CPU ran the PixelCNN's
        # convolutions inside the scan's loop about 10x slower than as a program of their own
        losses = []
        carry = (p, opt_state)
        for t in range(first, first + n):
            carry, loss = step_fn(carry, jnp.asarray(t, jnp.int32))
            losses.append(loss)
        return carry, jnp.stack(losses)

    per_row = jax.jit(lambda p, b: loss_fn(p, b, k_eval))

    def held_out_loss(p) -> float:
        return float(np.concatenate([np.asarray(per_row(p, jnp.asarray(val[i:i + eval_batch])))
                                     for i in range(0, len(val), eval_batch)]).mean())

    opt_state, done, history, diverged = optimizer.init(params), 0, [], None
    best = (math.inf, params, 0)
    since_best = 0
    while done < steps:
        n = min(chunk, steps - done)
        (params, opt_state), losses = run(params, opt_state, done, n)
        losses = np.asarray(losses)
        if not np.all(np.isfinite(losses)):
            first = done + int(np.argmax(~np.isfinite(losses)))
            if not math.isfinite(best[0]):
                raise SamplerError(f"fitting diverged: the loss is not finite from step {first}; lower "
                                   f"learning_rate (it was {learning_rate})")
            diverged = first   # early stopping holds params from before: keep them, say so
            break
        history.append(losses)
        done += n
        if chunk < steps:
            current = held_out_loss(params)
            if current < best[0]:
                best, since_best = (current, params, done), 0
            else:
                since_best += 1
                if since_best >= patience:
                    break
    losses = np.concatenate(history)
    report = {"steps": int(done), "train_loss": float(losses[-max(1, done // 10):].mean()),
              "train_rows": int(train.shape[0]), "held_out_rows": int(val.shape[0])}
    if chunk < steps:
        params = best[1]
        report.update(held_out_loss=best[0], kept_step=int(best[2]))
        if diverged is not None:
            report["diverged_at_step"] = diverged
    elif val.shape[0]:
        report["held_out_loss"] = held_out_loss(params)
    return params, report


def likelihood_report(report: dict, name: str = "log_prob", shift: float = 0.0) -> dict:
    """`fit_by_gradient`'s report for a negative log-likelihood loss, as train_<name> and
    held_out_<name> (-loss - shift: shift undoes a standardization's Jacobian, in nats per row)."""
    out = {f"train_{name}": -report["train_loss"] - shift}
    if "held_out_loss" in report:
        out[f"held_out_{name}"] = -report["held_out_loss"] - shift
    return {**out, **{k: v for k, v in report.items() if k not in ("train_loss", "held_out_loss")}}
