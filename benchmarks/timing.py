"""Timing primitives of the benchmark harness: runners timed side by side in interleaved
repeats whose order rotates every repeat (so load from other processes hits all alike, warm-up
calls excluded), paired ratios over those repeats, and the machine facts recorded with the
results (usable cores, load average, whether JAX runs on a GPU).
"""

from __future__ import annotations

import os
import time
from typing import Callable

import numpy as np


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


def on_gpu() -> bool:
    import jax

    return jax.default_backend() == "gpu"
