"""Objectives of deterministic autoencoders that replace the KL term by a penalty on the codes:
the plain autoencoder, WAE-MMD (Tolstikhin et al. 2018), SWAE (Kolouri et al. 2019) and the
regularized autoencoders RAE-L2 / RAE-GP (Ghosh et al. 2020). None defines a density p(x), so
they report the loss and the reconstruction term (and their penalties), not an ELBO.

The reconstruction cost is -log p(x | D(E(x))) under the model's likelihood (Bernoulli
cross-entropy on binary data; with a Gaussian of fixed sigma it is the papers' squared error
up to a factor and a constant), summed over pixels, in nats.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from vae.objectives.base import Objective, forward
from vae.objectives.divergences import mmd, prior_draws, sliced_wasserstein


def autoencoder_metrics(recon: jax.Array, loss: jax.Array, **penalties: jax.Array) -> dict:
    """The metrics of an objective without a density: loss and recon [batch] (nats), and its
    penalties (scalars)."""
    return {"loss": loss, "recon": recon, **penalties}


@dataclasses.dataclass(frozen=True)
class AE(Objective):
    """The deterministic autoencoder: loss = -log p(x | D(E(x))). The baseline every
    regularized autoencoder is compared to."""

    per_example = True

    def compute(self, model, params, batch, rng, step, extra):
        out = forward(model, params, batch, rng)
        recon = -out.log_px_z
        return jnp.mean(recon), autoencoder_metrics(recon, recon), None


@dataclasses.dataclass(frozen=True)
class WAE(Objective):
    """WAE-MMD (Tolstikhin et al. 2018, eq. 4 with the MMD penalty of algorithm 2):

        loss = mean_i c(x_i, D(E(x_i))) + lambda * MMD_k^2({E(x_i)}, {z_i ~ p(z)})

    with a deterministic encoder, p(z) = N(0, I), the unbiased MMD estimate and kernel `imq`
    (C / (C + ||z - z'||^2)) or `rbf` (exp(-||z - z'||^2 / C)) with C = 2 d (the paper's choice for
    a unit-variance prior); lambda = 10 as in the paper's MNIST experiments.
    Leaves out: the sum of IMQ kernels over several scales of C that the authors' code uses.
    """

    weight: float = 10.0
    kernel: str = "imq"

    def compute(self, model, params, batch, rng, step, extra):
        model_rng, prior_rng = jax.random.split(rng)
        out = forward(model, params, batch, model_rng)
        recon = -out.log_px_z
        penalty = mmd(out.z, prior_draws(prior_rng, out.z), self.kernel)
        loss = jnp.mean(recon) + self.weight * penalty
        return loss, autoencoder_metrics(recon, jnp.broadcast_to(loss, recon.shape), mmd=penalty), None


@dataclasses.dataclass(frozen=True)
class SWAE(Objective):
    """The sliced-Wasserstein autoencoder (Kolouri et al. 2019, eq. 14):

        loss = mean_i c(x_i, D(E(x_i))) + lambda * SW_2^2({E(x_i)}, {z_i ~ p(z)})

    SW_2^2 estimated with `num_projections` random directions (the paper: L = 50) and sorted
    1-D matching (eq. 10-11); p(z) = N(0, I). lambda = 10 is this toolkit's default (the paper
    tunes it per dataset).
    """

    weight: float = 10.0
    num_projections: int = 50

    def compute(self, model, params, batch, rng, step, extra):
        model_rng, prior_rng, proj_rng = jax.random.split(rng, 3)
        out = forward(model, params, batch, model_rng)
        recon = -out.log_px_z
        penalty = sliced_wasserstein(out.z, prior_draws(prior_rng, out.z), proj_rng, self.num_projections)
        loss = jnp.mean(recon) + self.weight * penalty
        return loss, autoencoder_metrics(recon, jnp.broadcast_to(loss, recon.shape), sliced_wasserstein=penalty), None


def decoder_gradient_penalty(model, params, z: jax.Array) -> jax.Array:
    """||d/dz sum_pixels D(z)||^2 per code [batch]: the gradient penalty of RAE-GP as the
    authors compute it (the gradient of the summed decoder mean with respect to z, one
    vector-Jacobian product, not the Jacobian's Frobenius norm). z: [batch, d]."""

    def summed_mean(z_one):
        decoded = model.apply({"params": params}, z_one[None], method=model.decode)
        return jnp.sum(model.likelihood.mean(decoded))

    grads = jax.vmap(jax.grad(summed_mean))(z)
    return jnp.sum(grads**2, axis=-1)


@dataclasses.dataclass(frozen=True)
class RAE(Objective):
    """Regularized autoencoders (Ghosh et al. 2020, eq. 11):

        loss = c(x, D(E(x))) + beta * 1/2 ||E(x)||^2 + lambda * L_REG

    with L_REG = ||theta_D||^2 (the decoder's weights: `rae_l2`) or the decoder's gradient
    penalty ||grad_z D(z)||^2 at z = E(x) (`rae_gp`, see `decoder_gradient_penalty`).
    beta = 1e-4 and lambda = 1e-7 by default (the paper grid-searches them; these are the values
    pythae ships). Leaves out: RAE-SN (spectral normalization).
    """

    regularizer: str = "l2"
    latent_weight: float = 1e-4
    decoder_weight: float = 1e-7

    def compute(self, model, params, batch, rng, step, extra):
        out = forward(model, params, batch, rng)
        recon = -out.log_px_z
        latent = 0.5 * jnp.sum(out.z**2, axis=-1)
        if self.regularizer == "l2":
            reg = sum(jnp.sum(w**2) for w in jax.tree_util.tree_leaves(params["decoder"]))
            reg_ex = jnp.broadcast_to(reg, recon.shape)
        elif self.regularizer == "gp":
            reg_ex = decoder_gradient_penalty(model, params, out.z)
        else:
            raise ValueError(f"regularizer={self.regularizer!r} is not allowed; choose 'l2' or 'gp'")
        loss_ex = recon + self.latent_weight * latent + self.decoder_weight * reg_ex
        metrics = autoencoder_metrics(recon, loss_ex, latent_norm=jnp.mean(latent), decoder_reg=jnp.mean(reg_ex))
        return jnp.mean(loss_ex), metrics, None
