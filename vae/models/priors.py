"""Learned priors. Each is a linen Module with log_prob(z) -> [...] and sample(rng, num, d)."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae.models.distributions import LOG_2PI


def _diag_gaussian_mixture_log_prob(z: jax.Array, means: jax.Array, log_vars: jax.Array,
                                    log_weights: jax.Array) -> jax.Array:
    """log sum_k w_k N(z; m_k, diag(exp(lv_k))): z [..., d], means/log_vars [K, d] -> [...]."""
    zz = z[..., None, :]                                                          # [..., 1, d]
    comp = jnp.sum(-0.5 * (LOG_2PI + log_vars + (zz - means) ** 2 / jnp.exp(log_vars)), axis=-1)  # [..., K]
    return jax.nn.logsumexp(comp + log_weights, axis=-1)


def _sample_mixture(rng, num, means, log_vars, log_weights):
    k_rng, n_rng = jax.random.split(rng)
    k = jax.random.categorical(k_rng, log_weights, shape=(num,))
    eps = jax.random.normal(n_rng, (num, means.shape[-1]))
    return means[k] + jnp.exp(0.5 * log_vars[k]) * eps


class MixtureOfGaussiansPrior(nn.Module):
    """p(z) = sum_k pi_k N(z; mu_k, diag(sigma_k^2)) with learned means, variances and weights
    (K components; means start at N(0, 1) draws, variances at 1, weights uniform).
    The KL to it has no closed form: the VAE uses the one-sample estimate."""

    num_components: int = 10
    latent_dim: int = 16
    has_analytic_kl = False

    def setup(self):
        self.means = self.param("means", nn.initializers.normal(1.0), (self.num_components, self.latent_dim))
        self.log_vars = self.param("log_vars", nn.initializers.zeros, (self.num_components, self.latent_dim))
        self.logits = self.param("logits", nn.initializers.zeros, (self.num_components,))

    def __call__(self, z):
        return self.log_prob(z)

    def log_prob(self, z: jax.Array) -> jax.Array:
        return _diag_gaussian_mixture_log_prob(z, self.means, self.log_vars, jax.nn.log_softmax(self.logits))

    def sample(self, rng: jax.Array, num: int, latent_dim: int) -> jax.Array:
        return _sample_mixture(rng, num, self.means, self.log_vars, jax.nn.log_softmax(self.logits))


class VampPrior(nn.Module):
    """Variational mixture of posteriors (Tomczak & Welling 2018, eq. 9):
    p(z) = (1/K) sum_k q(z | u_k), with K learned pseudo-inputs u_k [H, W, C] passed through
    the model's own encoder. Pseudo-inputs start at N(0.05, 0.01^2) and are clipped to [0, 1]
    (the paper's hard-tanh), K = 500 in the paper.
    """

    image_shape: tuple[int, int, int]
    num_components: int = 500
    has_analytic_kl = False
    uses_encoder = True

    def setup(self):
        init = lambda key, shape: 0.05 + 0.01 * jax.random.normal(key, shape)
        self.raw_pseudo_inputs = self.param("pseudo_inputs", init, (self.num_components, *self.image_shape))

    def pseudo_inputs(self) -> jax.Array:
        """[K, H, W, C] in [0, 1]."""
        return jnp.clip(self.raw_pseudo_inputs, 0.0, 1.0)

    def log_prob_given(self, z: jax.Array, encoded: tuple[jax.Array, jax.Array]) -> jax.Array:
        means, log_vars = encoded
        log_w = jnp.full((self.num_components,), -math.log(self.num_components))
        return _diag_gaussian_mixture_log_prob(z, means, log_vars, log_w)

    def sample_given(self, rng: jax.Array, num: int, encoded: tuple[jax.Array, jax.Array]) -> jax.Array:
        means, log_vars = encoded
        return _sample_mixture(rng, num, means, log_vars, jnp.zeros((self.num_components,)))
