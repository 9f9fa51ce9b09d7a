"""The deterministic autoencoder: z = E(x), x ~ p(x | D(z)), with no density over z.

The model behind the autoencoder variants that regularize the code's distribution instead of
a KL term (AE, WAE, SWAE, RAE, AAE): they define no p(x), so there is no ELBO or IWAE
estimate; they are compared by reconstruction error and sample quality.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae.models.base import LatentVariableModel, VAEOutput
from vae.models.distributions import PointMass


class NoDensityError(TypeError):
    """Asked for a log-likelihood of a model that defines none."""


class Autoencoder(LatentVariableModel):
    """encode(x) = PointMass(E(x)); decode(z) = likelihood parameters; the codes are compared
    to (and samples drawn from) N(0, I), the reference distribution of WAE, SWAE and AAE.

    encoder: x [batch, H, W, C] -> (mean, _) [batch, d] (the networks' log-variance head is
      built but unused, so every architecture serves both families).
    `__call__` returns VAEOutput with z = E(x), kl and kl_per_dim zeros (there is no KL);
    `log_importance_weights` raises NoDensityError: an autoencoder has no p(x).
    """

    encoder: nn.Module
    decoder: nn.Module
    likelihood: nn.Module
    latent_dim: int
    num_classes: int = 0

    def encode(self, x: jax.Array, y: jax.Array | None = None) -> PointMass:
        mean, _ = self.encoder(x)
        return PointMass(mean)

    def __call__(self, x: jax.Array, y: jax.Array | None = None) -> VAEOutput:
        z = self.encode(x).mean
        decoded = self.decode(z)
        log_px_z = self.log_likelihood(decoded, x)
        zeros = jnp.zeros_like(z)
        return VAEOutput(PointMass(z), z, decoded, log_px_z, zeros, jnp.zeros_like(log_px_z))

    def log_importance_weights(self, x, num_samples, y=None, stop_posterior_grad=False):
        raise NoDensityError("a deterministic autoencoder defines no density p(x), so it has no importance weights "
                             "or IWAE estimate; compare it by reconstruction error and sample quality")

    def sample_prior(self, rng: jax.Array, num: int) -> jax.Array:
        """z ~ N(0, I): [num, d]. Regularized autoencoders (RAE) are meant to be sampled from a
        density fitted to their codes instead (`vae.samplers`, e.g. 'gmm'); without one, this."""
        return jax.random.normal(rng, (num, self.latent_dim))
