"""VQ-VAE (van den Oord et al. 2017): a discrete latent of `latent_dim / code_dim` codes."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae.models.distributions import DiagonalGaussian


class VQVAE(nn.Module):
    """Encoder -> z_e [batch, L * D] -> nearest codebook vectors z_q (L codes of D dims from a
    codebook of K) -> decoder. The posterior is one-hot and the prior uniform over codes, so
    KL = L log K nats and log p(x) >= log p(x | z_q(x)) - L log K.

    `encode` returns z_e as the mean (log_var -inf-like, -30) so explorers can use it; `decode`
    takes any [.., L * D] vector (it quantizes nothing); `reconstruct` quantizes.
    The codebook is the 'codebook' param [K, D]; with EMA updates the objective overwrites it.
    """

    encoder: nn.Module
    decoder: nn.Module
    likelihood: nn.Module
    latent_dim: int
    num_codes: int = 512
    code_dim: int = 8
    num_classes: int = 0

    def setup(self):
        self.codebook = self.param("codebook", nn.initializers.normal(1.0), (self.num_codes, self.code_dim))

    @property
    def num_latents(self) -> int:
        return self.latent_dim // self.code_dim

    def encode_raw(self, x):
        mean, _ = self.encoder(x)
        return mean

    def quantize(self, z_e):
        """z_e [..., L*D] -> (z_q [..., L*D], codes [..., L])."""
        lead = z_e.shape[:-1]
        flat = z_e.reshape(-1, self.code_dim)
        d2 = (jnp.sum(flat**2, 1, keepdims=True) - 2 * flat @ self.codebook.T + jnp.sum(self.codebook**2, 1)[None])
        codes = jnp.argmin(d2, axis=1)
        z_q = self.codebook[codes]
        return z_q.reshape(*lead, self.latent_dim), codes.reshape(*lead, self.num_latents)

    def encode(self, x, y=None) -> DiagonalGaussian:
        z_e = self.encode_raw(x)
        return DiagonalGaussian(z_e, jnp.full_like(z_e, -30.0))

    def decode(self, z, y=None):
        lead = z.shape[:-1]
        out = self.decoder(z.reshape(-1, z.shape[-1]))
        return out.reshape(*lead, *out.shape[1:])

    def log_likelihood(self, decoded, x):
        return self.likelihood.log_prob(decoded, x)

    def kl_constant(self) -> float:
        return self.num_latents * math.log(self.num_codes)

    def __call__(self, x, y=None):
        z_e = self.encode_raw(x)
        z_q, codes = self.quantize(z_e)
        if self.is_initializing():
            self.decoder(z_q)  # creates the decoder's parameters
        return z_e, z_q, codes

    def log_importance_weights(self, x, num_samples, y=None, stop_posterior_grad=False):
        """Deterministic posterior: every 'sample' has weight log p(x|z_q) - L log K: [k, batch]."""
        z_q, _ = self.quantize(self.encode_raw(x))
        lw = self.likelihood.log_prob(self.decoder(z_q), x) - self.kl_constant()
        return jnp.broadcast_to(lw, (num_samples, *lw.shape))

    def reconstruct(self, x, y=None):
        z_q, _ = self.quantize(self.encode_raw(x))
        return self.likelihood.mean(self.decoder(z_q))

    def generate(self, num, temperature=1.0, y=None):
        """Codes drawn uniformly (the VQ-VAE's training prior; the paper fits a PixelCNN instead)."""
        codes = jax.random.randint(self.make_rng("sample"), (num, self.num_latents), 0, self.num_codes)
        return self.likelihood.mean(self.decoder(self.codebook[codes].reshape(num, self.latent_dim)))
