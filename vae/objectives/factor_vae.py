"""FactorVAE (Kim & Mnih 2018): the ELBO plus a discriminator's density-ratio estimate of the
total correlation; the discriminator trains in the same jitted step."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from vae.objectives.base import Objective, elbo_metrics, forward
from vae.objectives.discriminators import CodeDiscriminator, discriminator_update, init_discriminator


# FactorVAE's discriminator (Kim & Mnih 2018, appendix): 6 dense layers of 1000 units with
# LeakyReLU(0.2), two logits (q(z) vs the product of its marginals).
Discriminator = CodeDiscriminator


def permute_dims(rng: jax.Array, z: jax.Array) -> jax.Array:
    """Samples from the product of marginals: each latent dimension shuffled independently
    across the batch (Kim & Mnih 2018, algorithm 1). z: [M, d]."""
    keys = jax.random.split(rng, z.shape[1])
    cols = [jax.random.permutation(k, z[:, j]) for j, k in enumerate(keys)]
    return jnp.stack(cols, axis=1)


@dataclasses.dataclass(frozen=True)
class FactorVAE(Objective):
    """FactorVAE (Kim & Mnih 2018, eq. 2): the ELBO plus gamma times a density-ratio estimate
    of the total correlation,

        loss = E[-log p(x|z)] + KL(q(z|x) || p(z)) + gamma * E_q(z)[log D(z) - log(1 - D(z))],

    where the discriminator D tells samples of q(z) from samples with each dimension permuted
    across the batch. D has its own parameters and optax optimizer (Adam, lr 1e-4,
    b1 = 0.5, b2 = 0.9, as in the paper), kept in the train state's `extra` and updated in the
    same jitted step after the VAE update, on the same batch's (detached) codes.
    The paper's dSprites runs use gamma around 35 (it sweeps 10..100).
    """

    gamma: float = 35.0
    disc_learning_rate: float = 1e-4
    disc_hidden: int = 1000
    disc_layers: int = 6

    @property
    def discriminator(self) -> Discriminator:
        return Discriminator(self.disc_hidden, self.disc_layers)

    @property
    def disc_optimizer(self) -> optax.GradientTransformation:
        return optax.adam(self.disc_learning_rate, b1=0.5, b2=0.9)

    def init_extra(self, model, params, rng, image_shape) -> Any:
        return init_discriminator(self.discriminator, rng, jnp.zeros((1, model.latent_dim)), self.disc_optimizer)

    def compute(self, model, params, batch, rng, step, extra):
        out = forward(model, params, batch, rng)
        recon = -out.log_px_z
        logits = self.discriminator.apply({"params": jax.lax.stop_gradient(extra["disc_params"])}, out.z)
        tc = logits[:, 0] - logits[:, 1]   # log D(z) - log(1 - D(z)) with D = softmax(logits)[0]
        loss_ex = recon + out.kl + self.gamma * tc
        metrics = elbo_metrics(batch["image"], recon, out.kl, loss_ex, model)
        metrics["tc"] = tc
        return jnp.mean(loss_ex), metrics, {"z": out.z}

    def update_extra(self, model, params, extra, aux, batch, rng, step):
        z = jax.lax.stop_gradient(aux["z"])
        z_perm = permute_dims(rng, z)
        disc = self.discriminator

        def disc_loss(dp):
            real = disc.apply({"params": dp}, z)
            perm = disc.apply({"params": dp}, z_perm)
            # class 0: a draw of q(z); class 1: a draw of prod_j q(z_j)
            return 0.5 * (jnp.mean(-jax.nn.log_softmax(real)[:, 0]) + jnp.mean(-jax.nn.log_softmax(perm)[:, 1]))

        new, loss = discriminator_update(disc_loss, extra, self.disc_optimizer)
        return params, new, {"disc_loss": loss}
