"""The objective interface shared by every model variant.

An objective is called inside the jitted train step as

    loss, metrics, aux = objective.compute(model, params, batch, rng, step, extra)

batch: {'image': [batch, H, W, C], 'label': [batch]}; loss: the scalar to minimize; metrics:
per-example arrays [batch] (averaged by the loop, masked in evaluation) or scalars, in nats;
aux: anything `update_extra` needs. Objectives that carry state besides the model's params (a
discriminator, EMA statistics) create it in `init_extra` and advance it in `update_extra`,
which runs in the same jitted step after the optimizer update. Every objective reports
`loss`, `elbo` (the plain beta = 1 bound), `recon` (-log p(x|z)), `kl` and `bits_per_dim`.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp


from vae.models.bits import bits_per_dim, takes_8bit_offset  # one definition, re-exported here


def forward(model, params, batch: dict, rng: jax.Array):
    """One stochastic pass of the model on the batch (labels passed to conditional models)."""
    y = batch.get("label") if getattr(model, "num_classes", 0) else None
    return model.apply({"params": params}, batch["image"], y, rngs={"sample": rng})


def elbo_metrics(x: jax.Array, recon: jax.Array, kl: jax.Array, loss: jax.Array, model=None) -> dict:
    """The metrics every objective reports; bits/dim of -elbo, with the 8-bit dequantization
    offset only where the model's likelihood is a density on 8-bit data (`takes_8bit_offset`:
    not on continuous data, e.g. vectors, whose bits/dim are the plain -elbo / (D ln 2))."""
    elbo = -(recon + kl)
    num_dims = math.prod(x.shape[1:])
    offset = takes_8bit_offset(getattr(model, "likelihood", None))
    return {"loss": loss, "elbo": elbo, "recon": recon, "kl": kl,
            "bits_per_dim": bits_per_dim(-elbo, num_dims, continuous_8bit=offset)}


class Objective:
    """Base class: subclasses implement `compute`; `__call__` drops the aux output.

    per_example: True when the loss is the batch mean of a loss of each example alone and
    `update_extra` needs no aux (ELBO without free bits, IWAE). Only such objectives let the
    train step split a batch into parts (train.batch_splits): the others use batch statistics
    (total correlation, covariances, free bits, a discriminator's permutations, codebook counts).
    """

    per_example = False

    def init_extra(self, model, params, rng: jax.Array, image_shape: tuple[int, ...]) -> Any:
        return {}

    def compute(self, model, params, batch: dict, rng: jax.Array, step: jax.Array, extra: Any):
        raise NotImplementedError

    def update_extra(self, model, params, extra: Any, aux: Any, batch: dict, rng: jax.Array, step: jax.Array):
        """-> (params, extra, metrics). The default changes nothing."""
        return params, extra, {}

    def __call__(self, model, params, batch: dict, rng: jax.Array, step: jax.Array, extra: Any = None):
        loss, metrics, _ = self.compute(model, params, batch, rng, step, {} if extra is None else extra)
        return loss, metrics


def per_example_mean(metrics: dict) -> dict:
    return {k: jnp.mean(v) for k, v in metrics.items()}
