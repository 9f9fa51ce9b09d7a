"""Keeping freed large buffers in the process heap, so XLA:CPU reuses them from step to step.

glibc serves an allocation above its mmap threshold (at most 32 MiB under its own dynamic rule)
with a fresh mmap and unmaps it on free. XLA:CPU allocates a step's outputs and temporaries anew
at every execution, so a step over arrays of tens of MB (the 12.7M parameters of the MLP of Chen
et al. on 64x64 images: 51 MB per parameter-sized array) pays the kernel's page faults and
zeroing on every one of them, every step. Raising the mmap threshold keeps those buffers in the
heap, where the next step's allocation finds them already mapped; the trim threshold keeps the
heap from being given back and taken again. The arithmetic is untouched: the same program runs
on the same values, only where its buffers come from changes. The price is memory: freed buffers
stay with the process, so its peak resident memory rises (benchmarks/NOTES.md, session 14).

`keep_large_buffers()` is called by `vae.run.train` and the `vae` command (host memory only: it
does nothing to an accelerator's own allocator).
Set VAE_MALLOC_TUNING=0 to leave glibc's defaults; a MALLOC_MMAP_THRESHOLD_ or
MALLOC_TRIM_THRESHOLD_ already in the environment is the user's choice and is kept.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

MMAP_THRESHOLD = 64 * 2 ** 20    # allocations up to this size come from the heap (glibc's own: <= 32 MiB)
TRIM_THRESHOLD = 128 * 2 ** 20   # free memory at the top of the heap kept for reuse before it is returned
ENV = "VAE_MALLOC_TUNING"
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # mallopt parameters (malloc.h)
_applied: dict[str, int] = {}


def keep_large_buffers(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> dict[str, int]:
    """Sets glibc's mmap and trim thresholds for this process (once; later calls return the first
    result). Returns {'mmap_threshold': bytes, 'trim_threshold': bytes} as set, or {} where nothing
    was changed: not Linux with glibc, VAE_MALLOC_TUNING=0, or glibc's own variables are set.
    ValueError for a threshold outside 1 byte .. 2 GiB - 1."""
    for name, value in (("mmap_threshold", mmap_threshold), ("trim_threshold", trim_threshold)):
        if not 0 < value < 2 ** 31:
            raise ValueError(f"{name}={value!r}: allowed are 1 .. {2 ** 31 - 1} bytes")
    if _applied:
        return dict(_applied)
    if (os.environ.get(ENV, "1") == "0" or not sys.platform.startswith("linux")
            or "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ):
        return {}
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):   # musl and other C libraries without glibc's mallopt
        return {}
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    if mallopt(_M_TRIM_THRESHOLD, trim_threshold) != 1 or mallopt(_M_MMAP_THRESHOLD, mmap_threshold) != 1:
        return {}
    _applied.update(mmap_threshold=mmap_threshold, trim_threshold=trim_threshold)
    return dict(_applied)
