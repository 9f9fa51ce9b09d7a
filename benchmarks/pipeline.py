"""The pipeline section: an epoch of MLP train steps on mnist5k with batches drawn by
vae.data.pipeline.Batcher both ways vae.run can drive it (train.batch_in_step: Batcher.batch as
its own program then the step, or the batch gathered inside the step), against the same steps on
one fixed batch; the overhead reported is that of the form vae.run picks on this backend, and
both forms' overheads are recorded.
"""

from __future__ import annotations

import numpy as np

from benchmarks.jax_steps import toolkit_model, toolkit_runner
from benchmarks.sizes import binary_batch
from benchmarks.timing import interleaved, paired_ratio


def bench_pipeline(args, results):
    """An epoch of steps with batches from Batcher as vae.run draws them, both ways (train.batch_in_step):
    Batcher.batch as its own program then the step, and the batch gathered inside the step."""
    import jax
    import vae
    from vae.data.pipeline import Batcher
    from vae.run import batch_in_step
    from vae.step import make_fused_train_step

    data = vae.data.load("mnist5k", "train")
    model, shape = toolkit_model("mlp")
    batcher = Batcher(data.images, data.labels, batch_size=128, seed=0, dynamic_binarization=True)
    n = batcher.steps_per_epoch
    run_fixed, step, box, fixed = toolkit_runner(model, shape, binary_batch(shape, 128))
    optimizer = vae.make_optimizer(vae.OptimConfig(learning_rate=1e-3), total_steps=100_000)
    fused = make_fused_train_step(model, vae.ELBO(), optimizer, batcher)

    counter = {"step": 0}  # the batch index runs on across runners and repeats

    def epoch_of(step_fn, step_input):
        def epoch(k):
            state = box["state"]
            for _ in range(k):
                for _ in range(n):
                    state, metrics = step_fn(state, step_input(counter["step"]))
                    counter["step"] += 1
                jax.block_until_ready(metrics["loss"])
            box["state"] = state
        return epoch

    runners = {"separate_program": epoch_of(step, batcher.batch), "in_step": epoch_of(fused, batcher.data),
               "fixed_batch": lambda k: run_fixed(k * n)}
    repeats = args.repeats or (3 if args.quick else 7)
    samples = interleaved(runners, repeats, 1, warmup=1)
    used = "in_step" if batch_in_step("auto", batcher) else "separate_program"
    overhead = {k: 100.0 * (paired_ratio(samples[k], samples["fixed_batch"]) - 1.0)
                for k in ("separate_program", "in_step")}
    results["pipeline"] = {
        "steps_per_epoch": n, "batch": 128, "vae_run_uses": used,
        "epoch_s": float(np.median(samples[used])), "fixed_batch_s": float(np.median(samples["fixed_batch"])),
        "overhead_pct": overhead[used], "overhead_pct_by_form": overhead,
        "epoch_s_by_form": {k: float(np.median(samples[k])) for k in ("separate_program", "in_step")},
        "repeats": repeats,
    }
