"""Convolutions inside `lax.cond` on XLA:CPU, and the train steps of the adversarial variants.

    python -m benchmarks.branch_convs [--repeats N] [--out benchmarks/results_branch_convs.json]

Times, interleaved and after warm-up (medians of `--repeats` rounds of 3 calls):
  * a discriminator update (the PatchGAN term's hinge loss and Adam step on 28x28 images, batch
    64 + 64) as a plain jitted function, and the same function inside `lax.cond(True, ...)`;
  * the toolkit's train step (vae.step.make_train_step) of `vae` (ELBO), `aae`, `vae_gan` and
    `vae` + the PatchGAN term, MLP 784-64 networks, batch 64.
Prints a table and writes JSON. Why it exists: vae.step runs `objective.update_extra` outside the
step's non-finite branch because of the first pair (benchmarks/NOTES.md, "Model zoo II").
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from vae.config import Config
from vae.step import create_train_state, make_optimizer, make_train_step
from vae.variants import build_model, build_objective

SHAPE = (28, 28, 1)
BATCH = 64


def _time(fn, *args) -> float:
    """Seconds per call: 3 calls, after the caller's warm-up."""
    t0 = time.perf_counter()
    out = None
    for _ in range(3):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - t0) / 3


def _setup(name: str, **overrides):
    cfg = Config().replace(**{"model.name": name, "model.hidden": (64,), **overrides})
    model = build_model(cfg.model, SHAPE)
    objective = build_objective(cfg, dataset_size=4000, total_steps=1000)
    optimizer = make_optimizer(cfg.optim, 1000)
    state = create_train_state(model, optimizer, SHAPE, 0, objective)
    batch = {"image": jnp.asarray(np.random.default_rng(0).integers(0, 2, (BATCH, *SHAPE)), jnp.float32),
             "label": jnp.zeros((BATCH,), jnp.int32)}
    return model, objective, optimizer, state, batch


def _disc_update_pair():
    """(plain, in_branch) jitted discriminator updates of the PatchGAN term, and their args."""
    model, objective, _, state, batch = _setup("vae", **{"objective.adversarial": "patchgan"})
    rng, step = jax.random.PRNGKey(0), jnp.asarray(5)

    def update(params, extra):
        _, _, aux = objective.compute(model, params, batch, rng, step, extra)
        return objective.update_extra(model, params, extra, aux, batch, rng, step)[1]

    def in_branch(params, extra):
        return jax.lax.cond(step >= 0, lambda _: update(params, extra), lambda _: extra, None)

    return jax.jit(update), jax.jit(in_branch), (state.params, state.extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results_branch_convs.json")
    args = parser.parse_args()
    plain, branch, pargs = _disc_update_pair()
    cases = {"disc_update_plain": (plain, pargs), "disc_update_in_cond": (branch, pargs)}
    for name, overrides in (("vae", {}), ("aae", {}), ("vae_gan", {}),
                            ("vae+patchgan", {"objective.adversarial": "patchgan"})):
        model, objective, optimizer, state, batch = _setup(name.split("+")[0], **overrides)
        step = make_train_step(model, objective, optimizer)
        holder = {"state": state}

        def run(batch, step=step, holder=holder):  # the state is donated: carry it
            holder["state"], metrics = step(holder["state"], batch)
            return metrics

        cases[f"train_step_{name}"] = (run, (batch,))
    for fn, fargs in cases.values():  # warm-up (compiles)
        jax.block_until_ready(fn(*fargs))
    times = {name: [] for name in cases}
    for r in range(args.repeats):
        order = list(cases)[r % len(cases):] + list(cases)[:r % len(cases)]
        for name in order:
            fn, fargs = cases[name]
            times[name].append(_time(fn, *fargs))
    result = {name: {"median_ms": 1000 * float(np.median(t)), "repeats": len(t)} for name, t in times.items()}
    result["branch_slowdown"] = result["disc_update_in_cond"]["median_ms"] / result["disc_update_plain"]["median_ms"]
    result["backend"] = jax.default_backend()
    print(f"{'case':<28} {'ms / call':>10}")
    for name in cases:
        print(f"{name:<28} {result[name]['median_ms']:>10.1f}")
    print(f"discriminator update inside lax.cond / plain: {result['branch_slowdown']:.1f}x")
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
