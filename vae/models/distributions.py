"""Posterior, prior and likelihood pieces of a VAE, all returning log-densities in nats.

Per-example quantities are summed over every non-batch axis, so they are comparable across
architectures: `log_prob(...)` has shape [batch].
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

LOG_2PI = math.log(2.0 * math.pi)


def _sum_event(x: jax.Array, event_ndims: int) -> jax.Array:
    return jnp.sum(x, axis=tuple(range(x.ndim - event_ndims, x.ndim))) if event_ndims else x


@struct.dataclass
class DiagonalGaussian:
    """q(z | x) = N(mean, diag(exp(log_var))). mean, log_var: [..., latent_dim]."""

    mean: jax.Array
    log_var: jax.Array

    @property
    def std(self) -> jax.Array:
        return jnp.exp(0.5 * self.log_var)

    @property
    def variance(self) -> jax.Array:
        return jnp.exp(self.log_var)

    def sample(self, rng: jax.Array, num_samples: int | None = None) -> jax.Array:
        """Reparameterized draw: [..., d], or [num_samples, ..., d] when num_samples is given."""
        shape = self.mean.shape if num_samples is None else (num_samples, *self.mean.shape)
        eps = jax.random.normal(rng, shape, self.mean.dtype)
        return self.mean + self.std * eps

    def log_prob(self, z: jax.Array) -> jax.Array:
        """log q(z): [...] (summed over the last axis; z broadcasts against mean)."""
        return jnp.sum(-0.5 * (LOG_2PI + self.log_var + (z - self.mean) ** 2 / self.variance), axis=-1)

    def kl_standard_normal_per_dim(self) -> jax.Array:
        """KL(q || N(0, I)) per latent dimension, closed form: [..., d]."""
        return 0.5 * (self.variance + self.mean**2 - 1.0 - self.log_var)

    def kl_standard_normal(self) -> jax.Array:
        """KL(q || N(0, I)) summed over the latent: [...]."""
        return jnp.sum(self.kl_standard_normal_per_dim(), axis=-1)

    def entropy(self) -> jax.Array:
        return jnp.sum(0.5 * (LOG_2PI + 1.0 + self.log_var), axis=-1)


class StandardNormalPrior(nn.Module):
    """p(z) = N(0, I). A Module so that learned priors (VampPrior, mixtures) can replace it."""

    has_analytic_kl = True

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        return self.log_prob(z)

    def log_prob(self, z: jax.Array) -> jax.Array:
        """log p(z): z [..., d] -> [...]."""
        return jnp.sum(-0.5 * (LOG_2PI + z**2), axis=-1)

    def kl_per_dim(self, posterior: DiagonalGaussian) -> jax.Array:
        """Analytic KL(q(z|x) || p(z)) per dimension: [batch, d]."""
        return posterior.kl_standard_normal_per_dim()

    def sample(self, rng: jax.Array, num: int, latent_dim: int) -> jax.Array:
        """z ~ p(z): [num, latent_dim]."""
        return jax.random.normal(rng, (num, latent_dim))


class BernoulliLikelihood(nn.Module):
    """p(x | z) = prod Bernoulli(x; sigmoid(logits)); x in [0, 1] (binary, or intensities as
    the usual continuous relaxation). The decoder outputs logits [batch, H, W, C]."""

    discrete = True

    @nn.compact
    def __call__(self, logits: jax.Array, x: jax.Array) -> jax.Array:
        return self.log_prob(logits, x)

    def param_channels(self, channels: int) -> int:
        return channels

    def log_prob(self, logits: jax.Array, x: jax.Array) -> jax.Array:
        """log p(x | z) in nats, summed over pixels: [batch] (logits broadcast over leading sample axes)."""
        # log sigmoid(l) * x + log sigmoid(-l) * (1 - x), stable for large |l|
        ll = x * jax.nn.log_sigmoid(logits) + (1.0 - x) * jax.nn.log_sigmoid(-logits)
        return _sum_event(ll, 3)

    def mean(self, logits: jax.Array) -> jax.Array:
        return jax.nn.sigmoid(logits)

    def sample(self, rng: jax.Array, logits: jax.Array) -> jax.Array:
        return jax.random.bernoulli(rng, jax.nn.sigmoid(logits)).astype(logits.dtype)


class GaussianLikelihood(nn.Module):
    """p(x | z) = N(x; mean, sigma^2 I) with a fixed sigma. The decoder outputs the mean."""

    sigma: float = 1.0
    learn_sigma: str = "none"
    discrete = False

    @nn.compact
    def __call__(self, mean: jax.Array, x: jax.Array) -> jax.Array:
        return self.log_prob(mean, x)

    def param_channels(self, channels: int) -> int:
        return channels

    def log_prob(self, mean: jax.Array, x: jax.Array) -> jax.Array:
        """log N(x; mean, sigma^2) in nats, summed over pixels: [batch]."""
        log_sigma = math.log(self.sigma)
        ll = -0.5 * (LOG_2PI + 2.0 * log_sigma + ((x - mean) / self.sigma) ** 2)
        return _sum_event(ll, 3)

    def mean(self, params: jax.Array) -> jax.Array:
        return params

    def sample(self, rng: jax.Array, params: jax.Array) -> jax.Array:
        return params + self.sigma * jax.random.normal(rng, params.shape, params.dtype)
