"""A VAE with continuous and discrete latents side by side (Dupont 2018, JointVAE): a Gaussian
z_c [d] with a N(0, I) prior and N categorical z_d of K classes with a uniform prior; the decoder
sees [z_c, one-hot z_d]. Training relaxes z_d with the Gumbel-softmax (see `categorical`); the
ELBO and IWAE numbers use exact one-hot draws."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from vae.models.base import LatentVariableModel, VAEOutput
from vae.models.categorical import CategoricalPosterior, gumbel_softmax_log_sample
from vae.models.distributions import DiagonalGaussian


@struct.dataclass
class JointPosterior:
    """q(z_c, z_d | x) = N(z_c; mean, var) prod_n Cat(z_d,n). mean / log_var: the Gaussian's
    and the one-hot code's (probabilities; log p (1 - p)) concatenated: [batch, d + N K]."""

    gaussian: DiagonalGaussian
    discrete: CategoricalPosterior
    deterministic = False

    @property
    def mean(self) -> jax.Array:
        return jnp.concatenate([self.gaussian.mean, self.discrete.mean], axis=-1)

    @property
    def log_var(self) -> jax.Array:
        return jnp.concatenate([self.gaussian.log_var, self.discrete.log_var], axis=-1)


class JointVAE(LatentVariableModel):
    """continuous_dim Gaussian latents and num_discrete categorical latents of `categories`
    classes; latent_dim = continuous_dim + num_discrete * categories (the decoder's input).

    encoder: x -> (mean, log_var) heads of size continuous_dim + ceil(N K / 2); the first
    continuous_dim of each are the Gaussian's, the rest (both heads, first N K) the logits.
    Beyond the written interface: `relaxed(x, temperature)` for training."""

    encoder: nn.Module
    decoder: nn.Module
    likelihood: nn.Module
    continuous_dim: int
    num_discrete: int
    categories: int
    num_classes: int = 0

    @property
    def latent_dim(self) -> int:
        return self.continuous_dim + self.num_discrete * self.categories

    def encode(self, x: jax.Array, y: jax.Array | None = None) -> JointPosterior:
        mean, log_var = self.encoder(x)
        d, n = self.continuous_dim, self.num_discrete * self.categories
        logits = jnp.concatenate([mean[:, d:], log_var[:, d:]], axis=-1)[:, :n]
        return JointPosterior(DiagonalGaussian(mean[:, :d], log_var[:, :d]),
                              CategoricalPosterior(logits.reshape(x.shape[0], self.num_discrete, self.categories)))

    def _code(self, z_c: jax.Array, z_d: jax.Array) -> jax.Array:
        return jnp.concatenate([z_c, z_d.reshape(*z_d.shape[:-2], -1)], axis=-1)

    def __call__(self, x: jax.Array, y: jax.Array | None = None) -> VAEOutput:
        """One pass with z_c reparameterized and z_d an exact one-hot draw; closed-form KLs."""
        q = self.encode(x)
        rng_c, rng_d = jax.random.split(self.make_rng("sample"))
        z = self._code(q.gaussian.sample(rng_c), q.discrete.sample_one_hot(rng_d))
        decoded = self.decode(z)
        kl_c, kl_d = q.gaussian.kl_standard_normal_per_dim(), q.discrete.kl_uniform()
        kl_per_dim = jnp.concatenate([kl_c, jnp.zeros_like(q.discrete.mean)], axis=-1)
        return VAEOutput(q, z, decoded, self.log_likelihood(decoded, x), kl_per_dim, jnp.sum(kl_c, -1) + kl_d)

    def relaxed(self, x: jax.Array, temperature) -> tuple[jax.Array, jax.Array, jax.Array]:
        """The training pass: (log p(x | z_c, y) with y a relaxed draw [batch], KL of the
        continuous part [batch], KL of the discrete part to the uniform prior [batch])."""
        q = self.encode(x)
        rng_c, rng_d = jax.random.split(self.make_rng("sample"))
        y = jnp.exp(gumbel_softmax_log_sample(rng_d, q.discrete.logits, temperature))
        log_px = self.log_likelihood(self.decode(self._code(q.gaussian.sample(rng_c), y)), x)
        return log_px, q.gaussian.kl_standard_normal(), q.discrete.kl_uniform()

    def log_importance_weights(self, x: jax.Array, num_samples: int, y: jax.Array | None = None,
                               stop_posterior_grad: bool = False) -> jax.Array:
        """log p(x, z_i) - log q(z_i | x), z_c reparameterized and z_d exact one-hot: [k, batch]."""
        q = self.encode(x)
        rng_c, rng_d = jax.random.split(self.make_rng("sample"))
        z_c, z_d = q.gaussian.sample(rng_c, num_samples), q.discrete.sample_one_hot(rng_d, num_samples)
        qq = jax.lax.stop_gradient(q) if stop_posterior_grad else q
        log_prior = (jnp.sum(-0.5 * (z_c**2 + math.log(2 * math.pi)), axis=-1)
                     - self.num_discrete * math.log(self.categories))
        log_q = qq.gaussian.log_prob(z_c) + qq.discrete.log_prob_one_hot(z_d)
        return self.log_likelihood(self.decode(self._code(z_c, z_d)), x) + log_prior - log_q

    def sample_prior(self, rng: jax.Array, num: int) -> jax.Array:
        """[z_c ~ N(0, I), uniform one-hot z_d]: [num, latent_dim]."""
        rng_c, rng_d = jax.random.split(rng)
        index = jax.random.randint(rng_d, (num, self.num_discrete), 0, self.categories)
        return self._code(jax.random.normal(rng_c, (num, self.continuous_dim)), jax.nn.one_hot(index, self.categories))

    def generate(self, num: int, temperature: float = 1.0, y: jax.Array | None = None) -> jax.Array:
        """Means of p(x|z) for z ~ p(z), the continuous part scaled by `temperature`."""
        z = self.sample_prior(self.make_rng("sample"), num)
        scale = jnp.concatenate([jnp.full((self.continuous_dim,), temperature), jnp.ones(self.latent_dim
                                                                                         - self.continuous_dim)])
        return self.likelihood.mean(self.decode(z * scale))
