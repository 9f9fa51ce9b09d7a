"""VQ-VAE (van den Oord et al. 2017): a discrete latent of `latent_dim / code_dim` codes."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae.models.base import LatentVariableModel, VAEOutput
from vae.models.distributions import PointMass
from vae.models.quantizers.vq import nearest_code, straight_through


class VQVAE(LatentVariableModel):
    """Encoder -> z_e [batch, L * D] -> nearest codebook vectors z_q (L codes of D dims from a
    codebook of K) -> decoder. The posterior is one-hot over codes and the prior uniform, so
    KL = L log K nats and log p(x) >= log p(x | z_q(x)) - L log K.

    `encode` returns the deterministic posterior `PointMass(z_e)` (the explorer works on the
    unquantized z_e); `decode` takes any [.., L * D] vector (it quantizes nothing);
    `reconstruct` and `__call__` quantize. `__call__` feeds the decoder the straight-through
    code z_e + sg(z_q - z_e) (its value is z_q; gradients reach the encoder as if it were
    z_e), returns z = z_q and the code indices. The codebook is the 'codebook' param [K, D];
    with EMA updates the objective overwrites it.
    Discrete-model interface: `num_codes`, `encode_codes(x) -> [batch, L]`, `decode_codes(codes)
    -> z_q`, which the code prior of `vae.samplers` fits and samples.
    Leaves out: the paper's autoregressive prior over codes here (the model samples codes
    uniformly; `vae fit-sampler RUN --sampler code_prior` fits one after training).
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

    def kl_constant(self) -> float:
        """KL(one-hot posterior || uniform prior) = L log K nats."""
        return self.num_latents * math.log(self.num_codes)

    def quantize(self, z_e):
        """z_e [..., L*D] -> (z_q [..., L*D], codes [..., L])."""
        lead = z_e.shape[:-1]
        codes, z_q = nearest_code(z_e.reshape(-1, self.code_dim), self.codebook)
        return z_q.reshape(*lead, self.latent_dim), codes.reshape(*lead, self.num_latents)

    def encode_codes(self, x, y=None):
        """x [batch, H, W, C] -> the code indices of its quantized latent: [batch, L] int32."""
        return self.quantize(self.encode(x).mean)[1]

    def decode_codes(self, codes):
        """codes [batch, L] int -> the latent of those codebook vectors, z_q: [batch, L * D] (decode
        it with `decode`)."""
        return self.codebook[codes].reshape(*codes.shape[:-1], self.latent_dim)

    def encode(self, x, y=None) -> PointMass:
        mean, _ = self.encoder(x)
        return PointMass(mean)

    def __call__(self, x, y=None) -> VAEOutput:
        z_e = self.encode(x).mean
        z_q, codes = self.quantize(z_e)
        decoded = self.decode(straight_through(z_e, z_q))
        log_px_z = self.log_likelihood(decoded, x)
        # jnp.log in float32 here, the Python float in log_importance_weights: each as the
        # objective and the IWAE estimate computed it before, so logged numbers stay bit-identical
        kl = jnp.full_like(log_px_z, self.num_latents * jnp.log(self.num_codes))
        kl_per_dim = jnp.zeros_like(z_e)
        return VAEOutput(PointMass(z_e), z_q, decoded, log_px_z, kl_per_dim, kl, codes)

    def log_importance_weights(self, x, num_samples, y=None, stop_posterior_grad=False):
        """Deterministic posterior: every 'sample' has weight log p(x|z_q) - L log K: [k, batch]."""
        z_q, _ = self.quantize(self.encode(x).mean)
        lw = self.likelihood.log_prob(self.decoder(z_q), x) - self.kl_constant()
        return jnp.broadcast_to(lw, (num_samples, *lw.shape))

    def reconstruct(self, x, y=None):
        z_q, _ = self.quantize(self.encode(x).mean)
        return self.likelihood.mean(self.decoder(z_q))

    def sample_prior(self, rng, num):
        """Codes drawn uniformly (the VQ-VAE's training prior), as codebook vectors: [num, L * D]."""
        codes = jax.random.randint(rng, (num, self.num_latents), 0, self.num_codes)
        return self.codebook[codes].reshape(num, self.latent_dim)

    def generate(self, num, temperature=1.0, y=None):
        """Decoder means at uniformly drawn codes (temperature does not apply to discrete codes;
        the paper fits a PixelCNN prior instead)."""
        return self.likelihood.mean(self.decoder(self.sample_prior(self.make_rng("sample"), num)))
