"""The IWAE section: vae.trained.iwae_log_likelihood with k=5,000 samples on mnist5k test images
(1,000; 100 with --quick) in a child process (`python -m benchmarks.run --iwae-child N`), so that
its peak memory is its own: seconds, the child's peak RSS (VmHWM, also reset just before the call
to isolate the IWAE's own peak) and, on accelerators, the allocator's device peak. The cost does
not depend on the weights, so the model is untrained.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from benchmarks.jax_steps import toolkit_model


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
    from vae.trained import iwae_log_likelihood

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
