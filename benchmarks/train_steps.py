"""The train-step section: for each model and batch (the MLP, conv and Burgess nets; on a GPU also
a large batch of each) the toolkit's step with vae.run's batch splits, the same step in one pass,
the conv nets with XLA's convolutions, the plain flax MLP step, the roofline runners and the
PyTorch baselines, timed interleaved; the entry reports per-runner steps/s and ms/step (medians)
and the paired throughput ratios (toolkit/torch against the faster torch setting of each repeat,
toolkit/plain, matmul/XLA convolutions, splits/one pass, the MLP's roofline).
"""

from __future__ import annotations

import numpy as np

from benchmarks.jax_steps import plain_mlp_runner, toolkit_model, toolkit_runner
from benchmarks.roofline import matmul_runner, mlp_flops_entry, mlp_gemms_runner
from benchmarks.sizes import binary_batch
from benchmarks.timing import interleaved, on_gpu, paired_ratio, usable_cores
from benchmarks.torch_baselines import torch_device, torch_runner


def step_configs(args) -> list[tuple[str, str, int, int]]:
    """(key, arch, batch, steps per repeat). The issue's batch sizes everywhere; on a GPU, where these
    are launch-bound, also a large batch of each model and 10x the steps per repeat."""
    gpu = on_gpu()
    scale = 10 if gpu else 1
    configs = [("mlp", "mlp", 128, (40 if args.quick else 100) * scale),
               ("conv", "conv", 128, (4 if args.quick else 10) * scale),
               ("burgess", "burgess", 64, (2 if args.quick else 5) * scale)]
    if gpu:
        configs += [("mlp_b4096", "mlp", 4096, 20 if args.quick else 100),
                    ("conv_b2048", "conv", 2048, 10 if args.quick else 40),
                    ("burgess_b1024", "burgess", 1024, 5 if args.quick else 20)]
    return configs


def auto_splits(arch: str, batch: int) -> int:
    """The batch splits vae.run picks for this architecture with the ELBO on one device."""
    import vae
    from vae.run import batch_splits

    return batch_splits(0, arch, vae.ELBO(), 1, batch)


def bench_steps(args, results, with_torch):
    import jax

    gpu = on_gpu()
    repeats = args.repeats or (3 if args.quick else 7)
    tdev = torch_device() if with_torch else None
    out = {}
    for key, arch, batch, inner in step_configs(args):
        model, shape = toolkit_model(arch)
        x = binary_batch(shape, batch)
        splits = auto_splits(arch, batch)
        toolkit = toolkit_runner(model, shape, x, splits=splits)
        runners = {"toolkit": toolkit[0]}
        # the same step with the networks in bfloat16 (train.compute_dtype): what mixed precision costs here
        runners["toolkit_bf16"] = toolkit_runner(model, shape, x, splits=splits, compute_dtype="bfloat16")[0]
        if splits > 1:  # the same step in one pass, to show what the split gives
            runners["toolkit_one_pass"] = toolkit_runner(model, shape, x)[0]
        if arch == "mlp":
            runners["plain_flax"] = plain_mlp_runner(x)
            mm, mm_flops = matmul_runner(4096 if gpu else 1024)
            runners["matmul"] = mm
            runners["gemms_only"] = mlp_gemms_runner(batch)
        else:
            xla_model, _ = toolkit_model(arch, conv_impl="xla")
            runners["toolkit_xla_convT"] = toolkit_runner(xla_model, shape, x, splits=splits)[0]
        if with_torch:
            runners["torch"] = torch_runner(arch, x, threads=None if gpu else usable_cores(), device=tdev)
            if not gpu:  # 1 thread is often faster on a loaded 2-core machine; the faster is the baseline
                runners["torch_1thread"] = torch_runner(arch, x, threads=1)
        inner_map = {k: inner for k in runners}
        if "matmul" in inner_map:
            inner_map["matmul"] = (10 if args.quick else 20) * (5 if gpu else 1)
        if "toolkit_xla_convT" in inner_map:
            inner_map["toolkit_xla_convT"] = max(1, inner // 2)
        print(f"  timing {key} ({', '.join(runners)}) ...", flush=True)
        samples = interleaved(runners, repeats, inner_map)
        entry = {"arch": arch, "batch": batch, "image_shape": list(shape), "repeats": repeats,
                 "steps_per_repeat": inner_map, "batch_splits": splits}
        for name, ts in samples.items():
            if name in ("matmul", "gemms_only"):
                continue
            sec = float(np.median(ts))
            entry[name] = {"steps_per_s": 1.0 / sec, "examples_per_s": batch / sec, "ms_per_step": 1e3 * sec,
                           "ms_per_step_min": 1e3 * float(np.min(ts))}
        if with_torch:
            best = (np.minimum(samples["torch"], samples["torch_1thread"]) if "torch_1thread" in samples
                    else np.asarray(samples["torch"]))
            entry["torch_device"] = tdev
            entry["torch_best"] = {"steps_per_s": 1.0 / float(np.median(best)), "ms_per_step": 1e3 * float(np.median(best))}
            entry["toolkit_vs_torch"] = paired_ratio(list(best), samples["toolkit"])
            entry["toolkit_vs_torch_all_cores"] = paired_ratio(samples["torch"], samples["toolkit"])
        if arch == "mlp":
            entry["toolkit_vs_plain_flax"] = paired_ratio(samples["plain_flax"], samples["toolkit"])
            _, step, box, b = toolkit
            entry["flops"] = mlp_flops_entry(samples, batch, mm_flops, 4096 if gpu else 1024, step, box["state"], b)
        elif "toolkit_xla_convT" in samples:
            entry["matmul_convT_vs_xla_convT"] = paired_ratio(samples["toolkit_xla_convT"], samples["toolkit"])
        entry["bf16_vs_float32"] = paired_ratio(samples["toolkit"], samples["toolkit_bf16"])
        if "toolkit_one_pass" in samples:
            entry["split_vs_one_pass"] = paired_ratio(samples["toolkit_one_pass"], samples["toolkit"])
        out[key] = entry
        del model
        jax.clear_caches()
    results["train_step"] = out
