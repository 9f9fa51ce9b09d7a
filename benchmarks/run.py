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
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Callable

import numpy as np

MLP_HIDDEN = (512, 256)
MLP_LATENT = 32
CONV_CHANNELS = (32, 64)
CONV_LATENT = 16
BURGESS_LATENT = 10


# ---------------------------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------------------------

def interleaved(runners: dict[str, Callable[[int], None]], repeats: int, inner: dict[str, int] | int,
                warmup: int = 2) -> dict[str, list[float]]:
    """Seconds per call of each runner, one sample per repeat; runner(n) runs n calls and blocks.
    Repeats interleave the runners, rotating their order each repeat."""
    inner = inner if isinstance(inner, dict) else {k: inner for k in runners}
    for name, run in runners.items():
        run(warmup)
    samples: dict[str, list[float]] = {k: [] for k in runners}
    names = list(runners)
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            t = time.perf_counter()
            runners[name](inner[name])
            samples[name].append((time.perf_counter() - t) / inner[name])
    return samples


def paired_ratio(num: list[float], den: list[float]) -> float:
    """Median over repeats of num[i] / den[i] (per-call times: > 1 means `den` is faster)."""
    return float(np.median(np.asarray(num) / np.asarray(den)))


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


# ---------------------------------------------------------------------------------------------
# JAX side
# ---------------------------------------------------------------------------------------------

def binary_batch(shape, batch, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((batch, *shape), dtype=np.float32) < 0.3).astype(np.float32)


def toolkit_model(arch: str, conv_impl: str = "auto"):
    import vae
    from vae.models import BernoulliLikelihood, StandardNormalPrior
    from vae.models.networks import BurgessDecoder, BurgessEncoder, ConvDecoder, ConvEncoder

    if arch == "mlp":
        return vae.build_model(vae.ModelConfig(architecture="mlp", latent_dim=MLP_LATENT, hidden=MLP_HIDDEN),
                               (28, 28, 1)), (28, 28, 1)
    if arch == "conv":
        # ModelConfig's conv family always has a dense layer (hidden[0]); the benchmark net goes from the
        # conv features straight to the latent, so the modules are built directly (ConvEncoder hidden=None)
        enc = ConvEncoder(CONV_LATENT, channels=CONV_CHANNELS, hidden=None, conv_impl=conv_impl)
        dec = ConvDecoder((28, 28, 1), channels=tuple(reversed(CONV_CHANNELS)), hidden=None, conv_impl=conv_impl)
        return vae.VAE(encoder=enc, decoder=dec, prior=StandardNormalPrior(), likelihood=BernoulliLikelihood(),
                       latent_dim=CONV_LATENT), (28, 28, 1)
    if arch == "burgess":
        if conv_impl == "auto":
            return vae.build_model(vae.ModelConfig(architecture="burgess", latent_dim=BURGESS_LATENT),
                                   (64, 64, 1)), (64, 64, 1)
        return vae.VAE(encoder=BurgessEncoder(BURGESS_LATENT, conv_impl=conv_impl),
                       decoder=BurgessDecoder((64, 64, 1), conv_impl=conv_impl),
                       prior=StandardNormalPrior(), likelihood=BernoulliLikelihood(),
                       latent_dim=BURGESS_LATENT), (64, 64, 1)
    raise ValueError(arch)


def toolkit_runner(model, shape, batch_np, seed=0, splits=1):
    """The toolkit's step through its public API; returns (runner, step, state_box, batch).
    splits: make_train_step's batch splits (vae.run's train.batch_splits)."""
    import jax
    import jax.numpy as jnp
    import vae

    optimizer = vae.make_optimizer(vae.OptimConfig(learning_rate=1e-3), total_steps=100_000)
    box = {"state": vae.create_train_state(model, optimizer, shape, seed=seed)}
    step = vae.make_train_step(model, vae.ELBO(), optimizer, splits=splits)
    batch = {"image": jnp.asarray(batch_np), "label": jnp.zeros(batch_np.shape[0], jnp.int32)}

    def run(n):
        state = box["state"]
        for _ in range(n):
            state, metrics = step(state, batch)
        jax.block_until_ready(metrics["loss"])
        box["state"] = state

    return run, step, box, batch


def plain_mlp_runner(batch_np, seed=0):
    """A hand-written flax/optax MLP VAE step, no toolkit code (same sizes as the toolkit's)."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x, eps):
            h = x.reshape(x.shape[0], -1)
            for w in MLP_HIDDEN:
                h = nn.relu(nn.Dense(w)(h))
            mean, log_var = nn.Dense(MLP_LATENT)(h), nn.Dense(MLP_LATENT)(h)
            z = mean + jnp.exp(0.5 * log_var) * eps
            h = z
            for w in reversed(MLP_HIDDEN):
                h = nn.relu(nn.Dense(w)(h))
            logits = nn.Dense(784)(h)
            recon = jnp.sum(optax.sigmoid_binary_cross_entropy(logits, x.reshape(x.shape[0], -1)), -1)
            kl = 0.5 * jnp.sum(jnp.exp(log_var) + mean**2 - 1.0 - log_var, -1)
            return jnp.mean(recon + kl)

    net = Net()
    x = jnp.asarray(batch_np)
    params = net.init(jax.random.PRNGKey(seed), x, jnp.zeros((x.shape[0], MLP_LATENT)))
    opt = optax.adam(1e-3)
    carry = {"s": (params, opt.init(params), jax.random.PRNGKey(seed + 1))}

    def step(s, x):
        params, opt_state, key = s
        key, sub = jax.random.split(key)
        eps = jax.random.normal(sub, (x.shape[0], MLP_LATENT))
        loss, grads = jax.value_and_grad(lambda p: net.apply(p, x, eps))(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, key), loss

    step = jax.jit(step, donate_argnums=0)

    def run(n):
        s = carry["s"]
        for _ in range(n):
            s, loss = step(s, x)
        jax.block_until_ready(loss)
        carry["s"] = s

    return run


def matmul_runner(n=1024):
    """An n x n float32 matmul at JAX's default precision (TF32 on recent NVIDIA GPUs)."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32)
    f = jax.jit(lambda a, b: a @ b)

    def run(k):
        for _ in range(k):
            out = f(a, b)
        jax.block_until_ready(out)

    return run, 2.0 * n**3


def mlp_gemms_runner(batch: int, seed=0):
    """Only the matrix products of the MLP train step, with its shapes and dependencies: the gradient
    of a linear version of the network (no biases, activations, sampling, loss or optimizer), so the
    same forward, input-gradient and weight-gradient products. Its time is the floor the step's
    own GEMMs set at this batch size."""
    import jax
    import jax.numpy as jnp

    enc = [784, *MLP_HIDDEN]
    dec = [MLP_LATENT, *reversed(MLP_HIDDEN), 784]
    shapes = ([(a, b) for a, b in zip(enc[:-1], enc[1:])] + [(enc[-1], MLP_LATENT)] * 2
              + [(a, b) for a, b in zip(dec[:-1], dec[1:])])
    keys = jax.random.split(jax.random.PRNGKey(seed), len(shapes) + 3)
    ws = [jax.random.normal(k, s, jnp.float32) * s[0] ** -0.5 for k, s in zip(keys, shapes)]
    x = jax.random.normal(keys[-3], (batch, 784), jnp.float32)
    r_out = jax.random.normal(keys[-2], (batch, 784), jnp.float32)
    r_var = jax.random.normal(keys[-1], (batch, MLP_LATENT), jnp.float32)
    n_enc = len(enc) - 1

    def loss(ws):
        h = x
        for w in ws[:n_enc]:
            h = h @ w
        mu, log_var = h @ ws[n_enc], h @ ws[n_enc + 1]
        y = mu
        for w in ws[n_enc + 2:]:
            y = y @ w
        return jnp.sum(y * r_out) + jnp.sum(log_var * r_var)

    grad = jax.jit(jax.grad(loss))
    box = {"ws": ws}

    def run(k):
        ws = box["ws"]
        for _ in range(k):
            gs = grad(ws)
        jax.block_until_ready(gs)

    return run


def mlp_step_flops(batch: int) -> float:
    """Analytic FLOPs of one MLP train step: matmuls only, 2*M*K*N forward, twice that backward
    (input and weight gradients; the first layer's input gradient is not needed, so subtracted)."""
    dims = [(784, MLP_HIDDEN[0]), (MLP_HIDDEN[0], MLP_HIDDEN[1]), (MLP_HIDDEN[1], MLP_LATENT),
            (MLP_HIDDEN[1], MLP_LATENT), (MLP_LATENT, MLP_HIDDEN[1]), (MLP_HIDDEN[1], MLP_HIDDEN[0]),
            (MLP_HIDDEN[0], 784)]
    fwd = sum(2 * batch * k * n for k, n in dims)
    return 3 * fwd - 2 * batch * 784 * MLP_HIDDEN[0]


# ---------------------------------------------------------------------------------------------
# PyTorch side
# ---------------------------------------------------------------------------------------------

def torch_runner(arch: str, batch_np: np.ndarray, seed=0, threads: int | None = None, device: str = "cpu"):
    """PyTorch eager step on `device`; `threads` intra-op threads (CPU only; set at every call, so runners
    can differ)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    if arch == "mlp":
        latent = MLP_LATENT
        enc = nn.Sequential(nn.Flatten(), nn.Linear(784, MLP_HIDDEN[0]), nn.ReLU(),
                            nn.Linear(MLP_HIDDEN[0], MLP_HIDDEN[1]), nn.ReLU())
        feat = MLP_HIDDEN[1]
        dec = nn.Sequential(nn.Linear(latent, MLP_HIDDEN[1]), nn.ReLU(), nn.Linear(MLP_HIDDEN[1], MLP_HIDDEN[0]),
                            nn.ReLU(), nn.Linear(MLP_HIDDEN[0], 784), nn.Unflatten(1, (1, 28, 28)))
    elif arch == "conv":
        latent = CONV_LATENT
        c1, c2 = CONV_CHANNELS
        enc = nn.Sequential(nn.Conv2d(1, c1, 4, 2, 1), nn.ReLU(), nn.Conv2d(c1, c2, 4, 2, 1), nn.ReLU(), nn.Flatten())
        feat = c2 * 7 * 7
        dec = nn.Sequential(nn.Linear(latent, feat), nn.ReLU(), nn.Unflatten(1, (c2, 7, 7)),
                            nn.ConvTranspose2d(c2, c1, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(c1, 1, 4, 2, 1))
    elif arch == "burgess":  # disentanglement_lib conv_encoder / deconv_decoder, 'same' padding at 64x64
        latent = BURGESS_LATENT
        enc = nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),
                            nn.Conv2d(32, 64, 2, 2, 0), nn.ReLU(), nn.Conv2d(64, 64, 2, 2, 0), nn.ReLU(), nn.Flatten(),
                            nn.Linear(1024, 256), nn.ReLU())
        feat = 256
        dec = nn.Sequential(nn.Linear(latent, 256), nn.ReLU(), nn.Linear(256, 1024), nn.ReLU(),
                            nn.Unflatten(1, (64, 4, 4)), nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(),
                            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, 32, 4, 2, 1),
                            nn.ReLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1))
    else:
        raise ValueError(arch)
    mean_head, log_var_head = nn.Linear(feat, latent), nn.Linear(feat, latent)
    modules = nn.ModuleList([enc, dec, mean_head, log_var_head]).to(device)
    opt = torch.optim.Adam(modules.parameters(), lr=1e-3)
    x = torch.from_numpy(np.ascontiguousarray(batch_np.transpose(0, 3, 1, 2))).to(device)  # NCHW
    bce = nn.BCEWithLogitsLoss(reduction="none")

    def step():
        h = enc(x)
        mean, log_var = mean_head(h), log_var_head(h)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        logits = dec(z)
        recon = bce(logits, x).flatten(1).sum(1)
        kl = 0.5 * (log_var.exp() + mean**2 - 1.0 - log_var).sum(1)
        loss = (recon + kl).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    def run(n):
        if threads:
            torch.set_num_threads(threads)
        for _ in range(n):
            loss = step()
        float(loss.detach())  # waits for the device

    return run


# ---------------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------------

def on_gpu() -> bool:
    import jax

    return jax.default_backend() == "gpu"


def torch_device() -> str:
    """'cuda' when JAX runs on a GPU and torch sees one (TF32 matmuls then, JAX's GPU default), else 'cpu'."""
    import torch

    if on_gpu() and torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")  # TF32, as XLA does for float32 dots by default on GPUs
        torch.backends.cudnn.allow_tf32 = True
        return "cuda"
    return "cpu"


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
            flops = mlp_step_flops(batch)
            model_ts, mm_ts = np.asarray(samples["toolkit"]), np.asarray(samples["matmul"])
            gemm_ts = np.asarray(samples["gemms_only"])
            achieved = flops / np.median(model_ts) / 1e9
            mm_rate = mm_flops / np.median(mm_ts) / 1e9
            _, step, box, b = toolkit
            try:
                cost = step.lower(box["state"], b).compile().cost_analysis()
                cost = cost[0] if isinstance(cost, (list, tuple)) else cost
                xla_flops = float(cost.get("flops", float("nan")))
            except Exception:  # noqa: BLE001 - cost analysis is optional
                xla_flops = float("nan")
            entry["flops"] = {"analytic_matmul_flops_per_step": flops, "xla_cost_analysis_flops_per_step": xla_flops,
                              "achieved_gflops": achieved, "matmul_size": 4096 if gpu else 1024,
                              "matmul_gflops": mm_rate,
                              "roofline_ratio": float(np.median((flops / model_ts) / (mm_flops / mm_ts))),
                              # the same products alone, at the step's shapes: what the GEMMs themselves
                              # reach against the square matmul, and the step against them
                              "gemms_only_gflops": flops / float(np.median(gemm_ts)) / 1e9,
                              "gemms_only_vs_matmul": float(np.median((mm_ts / mm_flops) / (gemm_ts / flops))),
                              "step_vs_gemms_only": paired_ratio(samples["gemms_only"], samples["toolkit"])}
        elif "toolkit_xla_convT" in samples:
            entry["matmul_convT_vs_xla_convT"] = paired_ratio(samples["toolkit_xla_convT"], samples["toolkit"])
        if "toolkit_one_pass" in samples:
            entry["split_vs_one_pass"] = paired_ratio(samples["toolkit_one_pass"], samples["toolkit"])
        out[key] = entry
        del model
        jax.clear_caches()
    results["train_step"] = out


def bench_pipeline(args, results):
    """An epoch of steps with batches from Batcher as vae.run draws them, both ways (train.batch_in_step):
    Batcher.batch as its own program then the step, and the batch gathered inside the step."""
    import jax
    import vae
    from vae.data.pipeline import Batcher
    from vae.run import batch_in_step
    from vae.train import make_fused_train_step

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


def _proc_status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    return float("nan")


def iwae_child(num_images: int, k: int) -> None:
    """Run in a child process: IWAE on mnist5k test images; prints one JSON line.

    Peak memory is the process's VmHWM (peak RSS of this process image; getrusage's ru_maxrss
    would carry the parent's peak over fork+exec), read after the IWAE call; the peak reached
    during the IWAE call alone is measured by resetting VmHWM first (/proc/self/clear_refs)."""
    import jax
    import vae
    from vae.data.pipeline import binarize
    from vae.evaluate import iwae_log_likelihood

    data = vae.data.load("mnist5k", "test")
    images = binarize(data.images[:num_images], seed=0)
    model, shape = toolkit_model("mlp")
    state = vae.create_train_state(model, vae.make_optimizer(vae.OptimConfig(), 10), shape, seed=0)
    jax.block_until_ready(state.params)
    rss_before, peak_before = _proc_status_mib("VmRSS"), _proc_status_mib("VmHWM")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    t = time.perf_counter()
    res = iwae_log_likelihood(model, state.params, images, num_samples=k)
    seconds = time.perf_counter() - t
    peak_during = _proc_status_mib("VmHWM")
    stats = jax.devices()[0].memory_stats() or {}  # accelerators report their allocator's peak; the CPU does not
    device_peak = stats.get("peak_bytes_in_use")
    print(json.dumps({"seconds": seconds, "peak_rss_mib": max(peak_before, peak_during),
                      "device_peak_mib": device_peak / 2**20 if device_peak else None,
                      "peak_rss_during_iwae_mib": peak_during if reset else None,
                      "rss_before_iwae_mib": rss_before, "num_images": num_images, "k": k,
                      "log_px": res["log_px"]}))


def bench_iwae(args, results):
    num = 100 if args.quick else 1000
    cmd = [sys.executable, "-m", "benchmarks.run", "--iwae-child", str(num), "--iwae-k", "5000"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)) or ".")
    if proc.returncode != 0:
        results["iwae"] = {"error": proc.stderr[-2000:]}
        return
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["untrained_params"] = True  # cost does not depend on the weights
    results["iwae"] = res


def bench_compiles(args, results):
    import vae
    import vae.run as vrun
    from vae.config import Config

    captured = {}
    originals = {"make_train_step": vrun.make_train_step, "make_fused_train_step": vrun.make_fused_train_step}

    def capturing(name):
        def capture(*a, **kw):
            fn = originals[name](*a, **kw)
            captured["fn"] = fn
            return fn
        return capture

    compiles: list[tuple[str, float]] = []

    class Handler(logging.Handler):
        def emit(self, record):
            msg = record.getMessage()
            if msg.startswith("Finished XLA compilation of"):
                name = msg.split(" of ", 1)[1].rsplit(" in ", 1)
                compiles.append((name[0], float(name[1].split()[0])))

    logger = logging.getLogger("jax._src.dispatch")
    handler, level, propagate = Handler(), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # keep jax's debug lines off the console
    steps = 60 if args.quick else 300
    config = Config().replace(**{"train.steps": steps, "train.eval_every": steps // 2, "train.log_every": 20,
                                 "train.final_iwae_samples": 0, "train.progress": False,
                                 "model.latent_dim": MLP_LATENT})
    for name in originals:
        setattr(vrun, name, capturing(name))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            summary = vrun.train(config, os.path.join(tmp, "run"))
    finally:
        for name, fn in originals.items():
            setattr(vrun, name, fn)
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
    train_compiles = [c for c in compiles if c[0] in ("jit(train_step)", "jit(fused)")]
    results["compile"] = {
        "run_steps": steps,
        "train_step_cache_size": int(captured["fn"]._cache_size()),
        "train_step_backend_compiles": len(train_compiles),
        "train_step_backend_compile_s": sum(c[1] for c in train_compiles),
        "first_step_s_incl_compile": summary["compile_time_s"],
        "run_train_steps_per_s": summary["train_steps_per_s"],
        "all_backend_compiles_in_run": len(compiles),
    }


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------

def environment():
    import flax
    import jax
    import optax

    try:
        import torch
        torch_version = torch.__version__
        torch_threads = torch.get_num_threads()
    except ImportError:
        torch_version, torch_threads = None, None
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    dev = jax.devices()[0]
    gpu = dev.platform == "gpu"
    precision = ("float32 inputs, JAX's default dot precision (TF32 on this GPU); torch set to TF32 matmuls "
                 "and cuDNN convs" if gpu else "float32")
    return {"precision": precision, "python": platform.python_version(), "jax": jax.__version__,
            "flax": flax.__version__, "optax": optax.__version__, "torch": torch_version,
            "torch_threads": torch_threads,
            "device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}", "cpu": cpu, "cores": os.cpu_count(),
            "usable_cores": usable_cores(), "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "")}


def table(results) -> str:
    lines = []
    env = results["environment"]
    lines.append(f"jax {env['jax']}  flax {env['flax']}  optax {env['optax']}  torch {env['torch']}  "
                 f"device {env['device']}  cores {env['cores']}  load {results['load_before']} -> {results['load_after']}")
    ts = results.get("train_step", {})
    if ts:
        lines.append("")
        lines.append(f"{'train step (median)':<34}{'steps/s':>9}{'ex/s':>10}{'ms/step':>9}{'min ms':>8}")
        for arch, e in ts.items():
            for name in ("toolkit", "toolkit_one_pass", "toolkit_xla_convT", "plain_flax", "torch", "torch_1thread"):
                if name in e:
                    r = e[name]
                    label = f"{e['arch']} b{e['batch']} {name}"
                    lines.append(f"{label:<34}{r['steps_per_s']:9.1f}{r['examples_per_s']:10.0f}"
                                 f"{r['ms_per_step']:9.2f}{r['ms_per_step_min']:8.2f}")
        lines.append("")
        for arch, e in ts.items():
            parts = []
            if "toolkit_vs_torch" in e:
                parts.append(f"toolkit/torch {e['toolkit_vs_torch']:.2f}x (vs the faster torch setting; "
                             f"vs torch on all cores {e['toolkit_vs_torch_all_cores']:.2f}x)")
            if "toolkit_vs_plain_flax" in e:
                parts.append(f"toolkit/plain flax {e['toolkit_vs_plain_flax']:.3f}")
            if "matmul_convT_vs_xla_convT" in e:
                parts.append(f"matmul convT / XLA convT {e['matmul_convT_vs_xla_convT']:.2f}x")
            if "split_vs_one_pass" in e:
                parts.append(f"{e['batch_splits']} batch splits / one pass {e['split_vs_one_pass']:.2f}x")
            lines.append(f"  {arch:<13} " + ", ".join(parts) + "  (throughput ratios, paired medians)")
        for arch, e in ts.items():
            if "flops" in e:
                f = e["flops"]
                n = f["matmul_size"]
                lines.append(f"  {arch} step {f['analytic_matmul_flops_per_step'] / 1e9:.3f} GFLOP (XLA cost analysis "
                             f"{f['xla_cost_analysis_flops_per_step'] / 1e9:.3f}): {f['achieved_gflops']:.1f} GFLOP/s vs "
                             f"{n}^2 matmul {f['matmul_gflops']:.1f} GFLOP/s "
                             f"-> roofline {100 * f['roofline_ratio']:.0f}%")
                if "gemms_only_gflops" in f:
                    lines.append(f"  {arch} step's GEMMs alone (same shapes, no other work): {f['gemms_only_gflops']:.1f} "
                                 f"GFLOP/s = {100 * f['gemms_only_vs_matmul']:.0f}% of the {n}^2 matmul; the step "
                                 f"runs at {100 * f['step_vs_gemms_only']:.0f}% of its GEMMs' rate")
    if "pipeline" in results:
        p = results["pipeline"]
        other = "in_step" if p["vae_run_uses"] == "separate_program" else "separate_program"
        lines.append(f"pipeline: epoch of {p['steps_per_epoch']} steps, batch {p['vae_run_uses']} (as vae.run here) "
                     f"{p['epoch_s'] * 1e3:.1f} ms vs fixed batch {p['fixed_batch_s'] * 1e3:.1f} ms -> overhead "
                     f"{p['overhead_pct']:.1f}% ({other}: {p['overhead_pct_by_form'][other]:.1f}%)")
    if "iwae" in results:
        i = results["iwae"]
        if "error" in i:
            lines.append(f"iwae: failed: {i['error'][-300:]}")
        else:
            during = i.get("peak_rss_during_iwae_mib")
            lines.append(f"iwae k={i['k']} on {i['num_images']} images: {i['seconds']:.1f} s, peak RSS of the child "
                         f"{i['peak_rss_mib']:.0f} MiB (RSS before the IWAE call {i['rss_before_iwae_mib']:.0f} MiB"
                         + (f", peak during it {during:.0f} MiB)" if during else ")")
                         + (f", device peak {i['device_peak_mib']:.0f} MiB" if i.get("device_peak_mib") else ""))
    if "compile" in results:
        c = results["compile"]
        lines.append(f"compile: train step compiled {c['train_step_backend_compiles']}x "
                     f"(jit cache size {c['train_step_cache_size']}) in a {c['run_steps']}-step vae.run.train run, "
                     f"{c['train_step_backend_compile_s']:.2f} s backend compile, first step incl. trace+compile "
                     f"{c['first_step_s_incl_compile']:.2f} s")
    lines.append(f"total benchmark time {results['total_s']:.0f} s")
    return "\n".join(lines)


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
