"""The VAE: encoder, decoder, prior and likelihood composed into one linen Module."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae.models.base import LatentVariableModel, VAEOutput
from vae.models.distributions import DiagonalGaussian


def one_hot_channels(y: jax.Array, num_classes: int, spatial: tuple[int, int]) -> jax.Array:
    """Labels [batch] as constant one-hot image channels [batch, H, W, num_classes]."""
    oh = jax.nn.one_hot(y, num_classes)
    return jnp.broadcast_to(oh[:, None, None, :], (y.shape[0], *spatial, num_classes))


class VAE(LatentVariableModel):
    """p(x, z) = p(z) p(x|z) with amortized posterior q(z|x) (Kingma & Welling 2014).

    encoder: x [batch, H, W, C] -> (mean, log_var) [batch, d] each.
    decoder: z [batch, d] -> likelihood parameters [batch, H, W, P].
    prior: a Module with log_prob(z) and sample(rng, num, d); priors with `has_analytic_kl`
      give kl_per_dim(q); priors with `uses_encoder` (the VampPrior) are evaluated through
      this model's encoder.
    likelihood: a Module with log_prob(params, x) -> [batch], mean(params), sample(rng, params).
    num_classes: > 0 makes it a conditional VAE (Sohn et al. 2015): q(z|x, y) sees the label as
      one-hot image channels and p(x|z, y) sees it appended to z; pass `y` to every method.
    Sampling draws from the 'sample' RNG stream: `apply(..., rngs={'sample': key})`.
    """

    encoder: nn.Module
    decoder: nn.Module
    prior: nn.Module
    likelihood: nn.Module
    latent_dim: int
    num_classes: int = 0

    def _condition_x(self, x: jax.Array, y: jax.Array | None) -> jax.Array:
        if not self.num_classes:
            return x
        if y is None:
            raise ValueError("this is a conditional VAE (num_classes > 0): pass the labels y")
        return jnp.concatenate([x, one_hot_channels(y, self.num_classes, x.shape[1:3]).astype(x.dtype)], axis=-1)

    def decoder_input(self, z: jax.Array, y: jax.Array | None) -> jax.Array:
        if not self.num_classes:
            return z
        if y is None:
            raise ValueError("this is a conditional VAE (num_classes > 0): pass the labels y")
        oh = jax.nn.one_hot(y, self.num_classes, dtype=z.dtype)
        return jnp.concatenate([z, jnp.broadcast_to(oh, (*z.shape[:-1], self.num_classes))], axis=-1)

    def encode(self, x: jax.Array, y: jax.Array | None = None) -> DiagonalGaussian:
        mean, log_var = self.encoder(self._condition_x(x, y))
        return DiagonalGaussian(mean, log_var)

    def prior_log_prob(self, z: jax.Array) -> jax.Array:
        """log p(z): [..., d] -> [...]."""
        if getattr(self.prior, "uses_encoder", False):
            pseudo = self.prior.pseudo_inputs()
            return self.prior.log_prob_given(z, self.encoder(pseudo))
        return self.prior.log_prob(z)

    def sample_prior(self, rng: jax.Array, num: int) -> jax.Array:
        """z ~ p(z): [num, d]."""
        if getattr(self.prior, "uses_encoder", False):
            return self.prior.sample_given(rng, num, self.encoder(self.prior.pseudo_inputs()))
        return self.prior.sample(rng, num, self.latent_dim)

    def kl_terms(self, posterior: DiagonalGaussian, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(kl_per_dim [batch, d], kl [batch]): closed form when the prior has one, otherwise
        the single-sample estimate log q(z|x) - log p(z) with kl_per_dim zeros."""
        if getattr(self.prior, "has_analytic_kl", False):
            per_dim = self.prior.kl_per_dim(posterior)
            return per_dim, jnp.sum(per_dim, axis=-1)
        kl = posterior.log_prob(z) - self.prior_log_prob(z)
        return jnp.zeros_like(posterior.mean), kl

    def __call__(self, x: jax.Array, y: jax.Array | None = None) -> VAEOutput:
        posterior = self.encode(x, y)
        z = posterior.sample(self.make_rng("sample"))
        decoded = self.decode(z, y)
        log_px_z = self.log_likelihood(decoded, x)
        kl_per_dim, kl = self.kl_terms(posterior, z)
        if self.is_initializing() and getattr(self.prior, "uses_encoder", False):
            self.prior_log_prob(z)  # creates the prior's parameters
        return VAEOutput(posterior, z, decoded, log_px_z, kl_per_dim, kl)

    def log_importance_weights(self, x: jax.Array, num_samples: int, y: jax.Array | None = None,
                               stop_posterior_grad: bool = False) -> jax.Array:
        """log p(x, z_i) - log q(z_i | x) for z_i ~ q(z|x), i = 1..k: [k, batch].
        logsumexp over axis 0 minus log k is the IWAE bound (Burda et al. 2016, eq. 8).
        stop_posterior_grad: hold q's parameters fixed inside log q (gradients reach them only
        through z), as the DReG estimator needs."""
        posterior = self.encode(x, y)
        z = posterior.sample(self.make_rng("sample"), num_samples=num_samples)      # [k, B, d]
        log_px_z = self.log_likelihood(self.decode(z, y), x)
        q = jax.lax.stop_gradient(posterior) if stop_posterior_grad else posterior
        return log_px_z + self.prior_log_prob(z) - q.log_prob(z)
