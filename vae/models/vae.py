"""The VAE: encoder, decoder, prior and likelihood composed into one linen Module."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from vae.models.distributions import DiagonalGaussian


@struct.dataclass
class VAEOutput:
    """One stochastic pass. Shapes for x: [batch, H, W, C] and a d-dimensional latent.

    posterior: q(z|x) with mean, log_var [batch, d]; z: [batch, d] the reparameterized draw;
    decoded: likelihood parameters [batch, H, W, C]; log_px_z: log p(x|z) [batch] in nats;
    kl_per_dim: KL(q(z|x) || p(z)) per latent [batch, d]; kl: its sum [batch].
    """

    posterior: DiagonalGaussian
    z: jax.Array
    decoded: jax.Array
    log_px_z: jax.Array
    kl_per_dim: jax.Array
    kl: jax.Array


class VAE(nn.Module):
    """p(x, z) = p(z) p(x|z) with amortized posterior q(z|x) (Kingma & Welling 2014).

    encoder: x [batch, H, W, C] -> (mean, log_var) [batch, d] each.
    decoder: z [batch, d] -> likelihood parameters [batch, H, W, C].
    prior: a Module with log_prob(z), sample(rng, num, d) and, when has_analytic_kl, kl_per_dim(q).
    likelihood: a Module with log_prob(params, x) -> [batch], mean(params) and sample(rng, params).
    Sampling draws from the 'sample' RNG stream: `apply(..., rngs={'sample': key})`.
    """

    encoder: nn.Module
    decoder: nn.Module
    prior: nn.Module
    likelihood: nn.Module
    latent_dim: int

    def encode(self, x: jax.Array) -> DiagonalGaussian:
        mean, log_var = self.encoder(x)
        return DiagonalGaussian(mean, log_var)

    def decode(self, z: jax.Array) -> jax.Array:
        """z: [..., d] -> likelihood parameters [..., H, W, C] (leading axes are flattened for the decoder)."""
        lead = z.shape[:-1]
        out = self.decoder(z.reshape(-1, z.shape[-1]))
        return out.reshape(*lead, *out.shape[1:])

    def log_likelihood(self, decoded: jax.Array, x: jax.Array) -> jax.Array:
        """log p(x|z): decoded [..., batch, H, W, C], x [batch, H, W, C] -> [..., batch]."""
        return self.likelihood.log_prob(decoded, x)

    def kl_per_dim(self, posterior: DiagonalGaussian, z: jax.Array) -> jax.Array:
        """KL(q || p) per latent dimension: analytic when the prior has one; otherwise the
        single-sample estimate log q(z) - log p(z) is put in the first column."""
        if getattr(self.prior, "has_analytic_kl", False):
            return self.prior.kl_per_dim(posterior)
        kl = posterior.log_prob(z) - self.prior.log_prob(z)
        return jnp.zeros_like(posterior.mean).at[..., 0].set(kl)

    def __call__(self, x: jax.Array) -> VAEOutput:
        posterior = self.encode(x)
        z = posterior.sample(self.make_rng("sample"))
        decoded = self.decode(z)
        log_px_z = self.log_likelihood(decoded, x)
        kl_per_dim = self.kl_per_dim(posterior, z)
        return VAEOutput(posterior, z, decoded, log_px_z, kl_per_dim, jnp.sum(kl_per_dim, axis=-1))

    def reconstruct(self, x: jax.Array) -> jax.Array:
        """Mean of p(x | z = E[q(z|x)]): [batch, H, W, C]."""
        return self.likelihood.mean(self.decode(self.encode(x).mean))

    def generate(self, num: int, temperature: float = 1.0) -> jax.Array:
        """Means of p(x|z) for z ~ p(z) scaled by `temperature`: [num, H, W, C]."""
        z = temperature * self.prior.sample(self.make_rng("sample"), num, self.latent_dim)
        return self.likelihood.mean(self.decode(z))
