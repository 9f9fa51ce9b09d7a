"""The benchmarked models' sizes, shared by the toolkit and plain JAX steps
(benchmarks.jax_steps), the PyTorch baselines (benchmarks.torch_baselines) and the roofline's
FLOP count (benchmarks.roofline), and the random binary batch every step trains on, so that all
contestants run the same model on the same data.
"""

from __future__ import annotations

import numpy as np

MLP_HIDDEN = (512, 256)
MLP_LATENT = 32
CONV_CHANNELS = (32, 64)
CONV_LATENT = 16
BURGESS_LATENT = 10


def binary_batch(shape, batch, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((batch, *shape), dtype=np.float32) < 0.3).astype(np.float32)
