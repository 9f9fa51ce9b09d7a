"""Performance benchmarks of the toolkit, in one process, side by side (see benchmarks/NOTES.md).

    python -m benchmarks.run [--quick] [--out benchmarks/results.json] [--no-torch]

Measures, with JAX and PyTorch repeats interleaved (the order rotates every repeat) so that load
from other processes hits both alike, and warm-up excluded:
  * train-step throughput of the toolkit's own jitted step (public API: vae.build_model /
    vae.VAE, vae.make_optimizer, vae.create_train_state, vae.make_train_step, vae.ELBO) for an
    MLP VAE, a conv VAE and the Burgess 64x64 net, against the same models in PyTorch eager
    (same layer sizes, Adam, Bernoulli BCE-with-logits summed over pixels, analytic KL); the
    toolkit's step splits the batch as vae.run does (train.batch_splits auto: 2 parts for the conv
    nets on the CPU), and is also timed in one pass (toolkit_one_pass); the conv nets also with
    `conv_impl='xla'` (plain nn.Conv / nn.ConvTranspose; reported as toolkit_xla_convT);
  * a hand-written jitted flax/optax MLP step (no toolkit code): toolkit / plain;
  * achieved GFLOP/s of the MLP step vs a 1024x1024 float32 matmul measured in the same run;
  * an epoch through the data pipeline both ways vae.run can drive it (train.batch_in_step: Batcher.batch
    as its own program then the step, or the batch gathered inside the step) vs the step on a fixed
    batch; the overhead reported is that of the form vae.run picks on this backend;
  * IWAE (k=5,000) on mnist5k test images in a child process: seconds and peak RSS;
  * compile time and number of compilations of the train step in a `vae.run.train` run.
Reported: medians over repeats, and for ratios the median of the per-repeat (paired) ratios.
On a GPU (JAX's default backend) the PyTorch baseline runs on CUDA with TF32 matmuls (JAX's default
for float32 dots there), the matmul roofline uses 4096^2, and each model is also timed at a large batch.
Torch is only a baseline here (`pip install -e ".[bench]"`); the library never imports it.

This module parses the flags, runs the sections and prints and writes the results; the sections
live in benchmarks.train_steps (with benchmarks.jax_steps, benchmarks.torch_baselines and
benchmarks.roofline), benchmarks.pipeline, benchmarks.iwae_memory and benchmarks.compiles, the
timing harness in benchmarks.timing, the table in benchmarks.report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from benchmarks.compiles import bench_compiles
from benchmarks.iwae_memory import bench_iwae, iwae_child
from benchmarks.pipeline import bench_pipeline
from benchmarks.report import environment, table
from benchmarks.timing import loadavg
from benchmarks.train_steps import bench_steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (~2-3 minutes)")
    parser.add_argument("--out", default="benchmarks/results.json")
    parser.add_argument("--repeats", type=int, default=0, help="override the number of interleaved repeats")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated sections: steps,pipeline,iwae,compile")
    parser.add_argument("--iwae-child", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--iwae-k", type=int, default=5000, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.iwae_child:
        iwae_child(args.iwae_child, args.iwae_k)
        return
    # the benchmark shares the GPU with torch and a child process: take memory as needed, not 75% up front
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    with_torch = not args.no_torch
    if with_torch:
        # OpenMP threads that spin at barriers collapse when another process holds a core (10x slower
        # on a loaded 2-core machine); passive waiting is torch's better setting here. Set before torch
        # initialises OpenMP; XLA's own thread pool does not read it.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            import torch  # noqa: F401
        except ImportError:
            print("torch not installed (pip install -e '.[bench]'): skipping the PyTorch baselines", file=sys.stderr)
            with_torch = False
    sections = set(filter(None, args.only.split(","))) or {"steps", "pipeline", "iwae", "compile"}
    t0 = time.perf_counter()
    results = {"quick": args.quick, "environment": environment(), "load_before": loadavg()}
    if "steps" in sections:
        print("train steps ...", flush=True)
        bench_steps(args, results, with_torch)
    if "pipeline" in sections:
        print("pipeline ...", flush=True)
        bench_pipeline(args, results)
    if "iwae" in sections:
        print("iwae (child process) ...", flush=True)
        bench_iwae(args, results)
    if "compile" in sections:
        print("compilations in a training run ...", flush=True)
        bench_compiles(args, results)
    results["load_after"] = loadavg()
    results["total_s"] = time.perf_counter() - t0
    text = table(results)
    results["table"] = text
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2, default=float)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
