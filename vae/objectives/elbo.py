"""The ELBO and its reweightings: VAE, beta-VAE, and the controlled-capacity AnnealedVAE."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import optax

from vae.objectives.base import Objective, elbo_metrics, forward
from vae.objectives.schedules import constant_kl_schedule, free_bits_kl


@dataclasses.dataclass(frozen=True)
class ELBO(Objective):
    """Negative (beta-weighted) evidence lower bound.

    VAE (Kingma & Welling 2014, eq. 3) at beta = 1; beta-VAE (Higgins et al. 2017, eq. 4) for
    beta != 1 (the paper uses beta = 4 on dSprites):

        loss = E_x[ -E_q[log p(x|z)] + beta * s(t) * KL(q(z|x) || p(z)) ]

    with one reparameterized sample of z and the closed-form KL when the prior has one.
    s(t) is a KL schedule (warm-up, cyclical; see `schedules`), and free_bits > 0 applies
    free bits (Kingma et al. 2016) per group of `free_bits_group` latent dimensions.
    """

    beta: float = 1.0
    kl_schedule: optax.Schedule = dataclasses.field(default_factory=constant_kl_schedule)
    free_bits: float = 0.0
    free_bits_group: int = 1

    @property
    def per_example(self) -> bool:
        return not self.free_bits  # free bits clamp the batch-mean KL of each group

    def compute(self, model, params, batch, rng, step, extra):
        out = forward(model, params, batch, rng)
        recon = -out.log_px_z
        kl_penalty = free_bits_kl(out.kl_per_dim, self.free_bits, self.free_bits_group) if self.free_bits else out.kl
        weight = self.beta * self.kl_schedule(step)
        loss_ex = recon + weight * kl_penalty
        metrics = elbo_metrics(batch["image"], recon, out.kl, loss_ex, model)
        metrics["kl_weight"] = weight
        return jnp.mean(loss_ex), metrics, None


@dataclasses.dataclass(frozen=True)
class AnnealedVAE(Objective):
    """Controlled capacity increase (Burgess et al. 2018, eq. 8):

        loss = E[-log p(x|z)] + gamma * | KL(q(z|x) || p(z)) - C(t) |

    with the capacity C(t) rising linearly from 0 to c_max nats over `c_steps` steps. As in
    disentanglement_lib, the KL inside |.| is the batch mean. Paper defaults on dSprites:
    gamma = 1000, c_max = 25 nats over 100,000 steps.
    """

    gamma: float = 1000.0
    c_max: float = 25.0
    c_steps: int = 100_000

    def capacity(self, step):
        return self.c_max * jnp.minimum(jnp.asarray(step, jnp.float32) / self.c_steps, 1.0)

    def compute(self, model, params, batch, rng, step, extra):
        out = forward(model, params, batch, rng)
        recon = -out.log_px_z
        c = self.capacity(step)
        loss = jnp.mean(recon) + self.gamma * jnp.abs(jnp.mean(out.kl) - c)
        metrics = elbo_metrics(batch["image"], recon, out.kl, recon + self.gamma * jnp.abs(out.kl - c), model)
        metrics["loss"] = jnp.broadcast_to(loss, recon.shape)
        metrics["capacity"] = c
        return loss, metrics, None
