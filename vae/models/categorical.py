"""A VAE with categorical latents and the Gumbel-softmax / concrete relaxation (Jang et al. 2017;
Maddison et al. 2017): N independent K-way categorical variables z_n with a uniform prior.

The generative model is discrete: p(z) = K^-N, p(x | z) the decoder on the one-hot codes. Training
replaces the one-hot draw by the relaxed one y = softmax((logits + g) / tau), g ~ Gumbel(0, 1)
(Jang et al. eq. 1), so gradients reach the encoder; `__call__` and `log_importance_weights` use
exact one-hot draws, so the ELBO and IWAE numbers they give bound log p(x) of the discrete model.
Every density is computed from log-probabilities (log-softmax), never from probabilities.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct
from jax.scipy.special import gammaln

from vae.models.base import LatentVariableModel, VAEOutput


def gumbel_softmax_log_sample(rng: jax.Array, logits: jax.Array, temperature, num_samples: int | None = None):
    """log y for y = softmax((logits + g) / tau), g ~ Gumbel(0, 1) (Jang et al. 2017, eq. 1), as a
    log-softmax so no component underflows to log 0. logits: [..., K] -> [(k,) ..., K]."""
    shape = logits.shape if num_samples is None else (num_samples, *logits.shape)
    g = jax.random.gumbel(rng, shape, logits.dtype)
    return jax.nn.log_softmax((logits + g) / temperature, axis=-1)


def concrete_log_prob(log_y: jax.Array, logits: jax.Array, temperature) -> jax.Array:
    """Log-density of the Gumbel-softmax (concrete) distribution on the simplex (Jang et al. 2017,
    eq. 2; Maddison et al. 2017's concrete density, alpha = exp(logits)), with respect to the
    Lebesgue measure on its first K - 1 coordinates:

        log (K-1)! + (K-1) log tau + sum_k (log alpha_k - (tau + 1) log y_k) - K log sum_k alpha_k y_k^-tau

    log_y, logits: [..., K] -> [...]."""
    k = logits.shape[-1]
    log_alpha = jax.nn.log_softmax(logits, axis=-1)    # alpha's scale cancels; this keeps it bounded
    return (gammaln(float(k)) + (k - 1) * jnp.log(temperature)
            + jnp.sum(log_alpha - (temperature + 1.0) * log_y, axis=-1)
            - k * jax.nn.logsumexp(log_alpha - temperature * log_y, axis=-1))


@struct.dataclass
class CategoricalPosterior:
    """q(z | x) = prod_n Cat(z_n; softmax(logits_n)). logits: [batch, N, K]. mean: E_q[z] of the
    flattened one-hot code [batch, N K] (the probabilities); log_var: the log of its per-
    coordinate variance p (1 - p)."""

    logits: jax.Array
    deterministic = False

    @property
    def log_probs(self) -> jax.Array:
        return jax.nn.log_softmax(self.logits, axis=-1)

    @property
    def mean(self) -> jax.Array:
        return jnp.exp(self.log_probs).reshape(*self.logits.shape[:-2], -1)

    @property
    def log_var(self) -> jax.Array:
        lp = self.log_probs
        return (lp + jnp.log1p(-jnp.exp(lp) + 1e-7)).reshape(*self.logits.shape[:-2], -1)

    def kl_uniform_per_variable(self) -> jax.Array:
        """KL(q_n || uniform) = sum_k q_nk (log q_nk + log K): [batch, N]."""
        lp = self.log_probs
        return jnp.sum(jnp.exp(lp) * (lp + jnp.log(lp.shape[-1])), axis=-1)

    def kl_uniform(self) -> jax.Array:
        """KL(q || uniform) summed over the N variables: [batch]."""
        return jnp.sum(self.kl_uniform_per_variable(), axis=-1)

    def sample_one_hot(self, rng: jax.Array, num_samples: int | None = None) -> jax.Array:
        """Exact one-hot draws (the Gumbel-max trick): [(k,) batch, N, K]."""
        shape = self.logits.shape if num_samples is None else (num_samples, *self.logits.shape)
        index = jnp.argmax(self.logits + jax.random.gumbel(rng, shape, self.logits.dtype), axis=-1)
        return jax.nn.one_hot(index, self.logits.shape[-1], dtype=self.logits.dtype)

    def log_prob_one_hot(self, z: jax.Array) -> jax.Array:
        """log q(z) of one-hot codes z [..., batch, N, K]: [..., batch]."""
        return jnp.sum(z * self.log_probs, axis=(-2, -1))


class CategoricalVAE(LatentVariableModel):
    """N = num_variables categorical latents of K = categories classes, uniform prior, flattened
    one-hot codes of size latent_dim = N K for the decoder.

    encoder: x -> two heads of size >= N K / 2 whose concatenation's first N K numbers are the
    logits. decoder: codes [batch, N K] -> likelihood parameters. Methods beyond the written
    interface: `relaxed(x, temperature)` for training."""

    encoder: nn.Module
    decoder: nn.Module
    likelihood: nn.Module
    num_variables: int
    categories: int
    num_classes: int = 0

    @property
    def latent_dim(self) -> int:
        return self.num_variables * self.categories

    def encode(self, x: jax.Array, y: jax.Array | None = None) -> CategoricalPosterior:
        a, b = self.encoder(x)
        logits = jnp.concatenate([a, b], axis=-1)[:, :self.latent_dim]
        return CategoricalPosterior(logits.reshape(x.shape[0], self.num_variables, self.categories))

    def _flat(self, z: jax.Array) -> jax.Array:
        return z.reshape(*z.shape[:-2], self.latent_dim)

    def log_prior(self) -> float:
        return -self.num_variables * math.log(self.categories)

    def __call__(self, x: jax.Array, y: jax.Array | None = None) -> VAEOutput:
        """One pass with an exact one-hot draw; kl is KL(q || uniform) in closed form."""
        posterior = self.encode(x)
        z = self._flat(posterior.sample_one_hot(self.make_rng("sample")))
        decoded = self.decode(z)
        kl_per_var = posterior.kl_uniform_per_variable()
        return VAEOutput(posterior, z, decoded, self.log_likelihood(decoded, x), kl_per_var, jnp.sum(kl_per_var, -1))

    def relaxed(self, x: jax.Array, temperature) -> tuple[jax.Array, jax.Array, jax.Array]:
        """The training pass: (log p(x | y) at a relaxed draw y [batch], KL(q || uniform) of the
        categoricals [batch], and the relaxed one-sample KL estimate log q_tau(y) - log p_tau(y)
        with p_tau the concrete relaxation of the uniform prior at the same tau [batch])."""
        posterior = self.encode(x)
        log_y = gumbel_softmax_log_sample(self.make_rng("sample"), posterior.logits, temperature)
        log_px = self.log_likelihood(self.decode(self._flat(jnp.exp(log_y))), x)
        relaxed_kl = jnp.sum(concrete_log_prob(log_y, posterior.logits, temperature)
                             - concrete_log_prob(log_y, jnp.zeros_like(posterior.logits), temperature), axis=-1)
        return log_px, posterior.kl_uniform(), relaxed_kl

    def log_importance_weights(self, x: jax.Array, num_samples: int, y: jax.Array | None = None,
                               stop_posterior_grad: bool = False) -> jax.Array:
        """log p(x, z_i) - log q(z_i | x) for exact one-hot z_i ~ q: [k, batch]."""
        posterior = self.encode(x)
        z = posterior.sample_one_hot(self.make_rng("sample"), num_samples)
        q = jax.lax.stop_gradient(posterior) if stop_posterior_grad else posterior
        return self.log_likelihood(self.decode(self._flat(z)), x) + self.log_prior() - q.log_prob_one_hot(z)

    def sample_prior(self, rng: jax.Array, num: int) -> jax.Array:
        """Uniform one-hot codes [num, N K]."""
        index = jax.random.randint(rng, (num, self.num_variables), 0, self.categories)
        return self._flat(jax.nn.one_hot(index, self.categories))

    def generate(self, num: int, temperature: float = 1.0, y: jax.Array | None = None) -> jax.Array:
        """Means of p(x|z) for uniform one-hot z (temperature does not apply to one-hot codes)."""
        return self.likelihood.mean(self.decode(self.sample_prior(self.make_rng("sample"), num)))
