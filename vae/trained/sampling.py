"""Sampling a trained model: batches of decoder means of z ~ temperature * p(z), in memory.

`Sampler(run, batch_size)` draws batch i with key fold_in(PRNGKey(seed), i), so samples are a
function of (seed, batch_size); `generate_arrays(run, num)` collects `num` of them. Exporting
them as a dataset with provenance is `vae.synthesis`. Both take `latents`, a function
(key, num, temperature) -> z [num, d] that replaces the model's prior (a fitted sampler's
`FittedSampler.latents`, see `vae.samplers`); a hierarchical model then draws its lower groups
given that top code (`generate_from`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import jax

from vae.trained.inference import TrainedModel


class SamplingError(ValueError):
    """A sampling request that cannot be met (bad arguments, labels a model cannot take)."""


def from_latents(trained: TrainedModel, latents: Callable, key: jax.Array, num: int, temperature: float,
                 y: np.ndarray | None = None, **kw) -> np.ndarray:
    """Decoder means [num, H, W, C] of z = latents(key, num, temperature) (a fitted sampler's), a
    hierarchy's lower groups drawn with key fold_in(key, 1) (`TrainedModel.generate_from`)."""
    z = latents(key, num, temperature)
    return trained.generate_from(jax.random.fold_in(key, 1), z, temperature, y, **kw)


class Sampler:
    """Draws batches of `batch_size` decoder means from a loaded run (`vae.trained.rundir.LoadedRun`),
    jitted once.

    draw(i, y) -> [batch_size, H, W, C] float32: batch i uses key fold_in(PRNGKey(seed), i);
    y: [batch_size] int labels for a conditional model (None otherwise; a short y is padded).
    latents: (key, num, temperature) -> z [num, d] in place of the model's prior (None: the prior).
    """

    def __init__(self, run, batch_size: int, temperature: float = 1.0, seed: int = 0,
                 latents: Callable[[jax.Array, int, float], np.ndarray] | None = None):
        self.trained = TrainedModel(run.model, run.params)
        self.latents = latents
        self.batch_size = int(batch_size)
        self.num_classes = self.trained.num_classes
        self.key = jax.random.PRNGKey(seed)
        self.temperature = float(temperature)

    def draw(self, i: int, y: np.ndarray | None = None) -> np.ndarray:
        if self.num_classes:
            if y is None:
                raise SamplingError("a conditional model needs labels to generate")
            y = np.asarray(y, np.int32)
            if y.shape[0] < self.batch_size:
                y = np.concatenate([y, np.zeros(self.batch_size - y.shape[0], np.int32)])
        else:
            y = None
        key = jax.random.fold_in(self.key, i)
        if self.latents is not None:
            return from_latents(self.trained, self.latents, key, self.batch_size, self.temperature, y,
                                batch_size=self.batch_size, pad="batch")
        return self.trained.generate_batch(key, self.batch_size, self.temperature, y)


def generate_arrays(run, num: int, *, labels: np.ndarray | None = None, temperature: float = 1.0,
                    seed: int = 0, batch_size: int = 500,
                    latents: Callable[[jax.Array, int, float], np.ndarray] | None = None) -> np.ndarray:
    """`num` decoder means [num, H, W, C] float32 in [0, 1] (clipped) of a loaded run.
    labels: [num] classes for a conditional model (required there, refused otherwise).
    latents: z's source in place of the prior (see `Sampler`)."""
    if num <= 0:
        raise SamplingError(f"num={num} must be > 0")
    conditional = bool(getattr(run.model, "num_classes", 0))
    if conditional and labels is None:
        raise SamplingError("a conditional model needs `labels` ([num] classes) to generate")
    if not conditional and labels is not None:
        raise SamplingError("labels were given, but this run's model is unconditional")
    bs = min(int(batch_size), int(num))
    sampler = Sampler(run, bs, temperature, seed, latents)
    out = None
    for i, start in enumerate(range(0, num, bs)):
        stop = min(start + bs, num)
        x = sampler.draw(i, None if labels is None else labels[start:stop])
        if out is None:
            out = np.empty((num, *x.shape[1:]), np.float32)
        out[start:stop] = np.clip(x[: stop - start], 0.0, 1.0)
    return out
