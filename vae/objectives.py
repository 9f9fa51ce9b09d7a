"""Training objectives. Every objective has one interface, so the loop never changes:

    objective(model, params, batch, rng, step) -> (loss, metrics)

batch: {'image': [batch, H, W, C], 'label': [batch] (optional)}; loss: a scalar to minimize;
metrics: per-example arrays [batch] (averaged by the loop, masked in evaluation) or scalars,
all in nats. `elbo` is always the plain (beta=1) evidence lower bound, so variants can be
compared on equal terms whatever they optimize.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Protocol

import jax
import jax.numpy as jnp

from vae.config import ObjectiveConfig


class Objective(Protocol):
    def __call__(self, model, params, batch: dict, rng: jax.Array, step: jax.Array) -> tuple[jax.Array, dict]:
        ...


def bits_per_dim(nats_per_example: jax.Array, num_dims: int) -> jax.Array:
    """Converts a negative log-likelihood in nats per example to bits per dimension."""
    return nats_per_example / (num_dims * math.log(2.0))


@dataclasses.dataclass(frozen=True)
class ELBO:
    """Negative (beta-weighted) evidence lower bound, Kingma & Welling (2014), eq. 3:

        loss = E_x[ -E_q[log p(x|z)] + beta * KL(q(z|x) || p(z)) ]

    with one reparameterized sample of z and the KL in closed form (Appendix B) when the prior
    allows it. beta=1 is the ELBO; beta>1 is the beta-VAE of Higgins et al. (2017).
    Metrics per example: loss, elbo, recon (= -log p(x|z)), kl, bits_per_dim (of -elbo).
    """

    beta: float = 1.0

    def __call__(self, model, params, batch: dict, rng: jax.Array, step: jax.Array) -> tuple[jax.Array, dict]:
        x = batch["image"]
        out = model.apply({"params": params}, x, rngs={"sample": rng})
        recon = -out.log_px_z
        per_example_loss = recon + self.beta * out.kl
        elbo = -(recon + out.kl)
        num_dims = math.prod(x.shape[1:])
        metrics = {
            "loss": per_example_loss,
            "elbo": elbo,
            "recon": recon,
            "kl": out.kl,
            "bits_per_dim": bits_per_dim(-elbo, num_dims),
        }
        return jnp.mean(per_example_loss), metrics


def build_objective(config: ObjectiveConfig) -> Any:
    """The objective an ObjectiveConfig names."""
    if config.name == "elbo":
        return ELBO(beta=config.beta)
    raise ValueError(f"unknown objective {config.name!r}")
