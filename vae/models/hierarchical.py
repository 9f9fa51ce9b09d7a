"""A two-level ladder VAE (Sønderby et al. 2016), so hierarchies have a place in the design."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae.models.base import LatentVariableModel, VAEOutput
from vae.models.distributions import DiagonalGaussian


def gaussian_kl(q: DiagonalGaussian, p: DiagonalGaussian) -> jax.Array:
    """KL(q || p) between diagonal Gaussians, per dimension: [..., d]."""
    return 0.5 * (p.log_var - q.log_var + (q.variance + (q.mean - p.mean) ** 2) / p.variance - 1.0)


def precision_weighted(a: DiagonalGaussian, b: DiagonalGaussian) -> DiagonalGaussian:
    """The ladder VAE's merge of a bottom-up and a top-down Gaussian (Sønderby et al. 2016,
    eq. 18-19): precisions add, means are precision-weighted."""
    pa, pb = jnp.exp(-a.log_var), jnp.exp(-b.log_var)
    var = 1.0 / (pa + pb)
    return DiagonalGaussian((a.mean * pa + b.mean * pb) * var, jnp.log(var))


class _GaussianHead(nn.Module):
    """Dense layers, then mean and log-variance of `features` dims."""

    features: int
    hidden: int = 256

    @nn.compact
    def __call__(self, h):
        h = nn.relu(nn.Dense(self.hidden)(h))
        return DiagonalGaussian(nn.Dense(self.features, name="mean")(h), nn.Dense(self.features, name="log_var")(h))


class LadderVAE(LatentVariableModel):
    """p(z2) p(z1 | z2) p(x | z1), inferred bottom-up then top-down (Sønderby et al. 2016, sec. 2.2).

    encoder: x -> bottom-up Gaussian parameters for z1 [batch, d1] (any VAE encoder);
    a head maps them to q(z2 | x) [batch, d2]; p(z1 | z2) is a dense Gaussian head; the
    posterior of z1 merges its bottom-up and top-down Gaussians by precision. decoder: z1 -> x.
    The KL is KL(q(z2|x) || N(0, I)) + KL(q(z1|x, z2) || p(z1|z2)) in closed form at the
    sampled z2. `encode` / `decode` work on the top level z2 (decode goes through the mean of
    p(z1 | z2)), so explorers and estimators treat it like a one-level VAE; `generate` and
    `generate_from` sample z1 ~ p(z1 | z2) (ancestral sampling); `latent_dim` is d2 and
    `kl_per_dim` covers z2 only (`kl` is the total).
    """

    encoder: nn.Module
    decoder: nn.Module
    prior: nn.Module
    likelihood: nn.Module
    latent_dim: int
    bottom_latent_dim: int
    num_classes: int = 0

    def setup(self):
        self.top_head = _GaussianHead(self.latent_dim)
        self.p_z1 = _GaussianHead(self.bottom_latent_dim)

    def _bottom_up(self, x):
        mean, log_var = self.encoder(x)
        up1 = DiagonalGaussian(mean, log_var)
        q2 = self.top_head(jnp.concatenate([mean, log_var], axis=-1))
        return up1, q2

    def _q1(self, up1: DiagonalGaussian, z2: jax.Array):
        p1 = self.p_z1(z2)
        if z2.ndim == 3:  # [k, B, d2] samples: broadcast the bottom-up terms over k
            up1 = DiagonalGaussian(jnp.broadcast_to(up1.mean, p1.mean.shape), jnp.broadcast_to(up1.log_var, p1.mean.shape))
        return precision_weighted(up1, p1), p1

    def encode(self, x, y=None) -> DiagonalGaussian:
        return self._bottom_up(x)[1]

    def decode(self, z2, y=None):
        lead = z2.shape[:-1]
        z1 = self.p_z1(z2.reshape(-1, z2.shape[-1])).mean
        out = self.decoder(z1)
        return out.reshape(*lead, *out.shape[1:])

    def generate_from(self, z2, temperature=1.0, y=None):
        """Means of p(x | z1) for z1 ~ p(z1 | z2) at the given z2 [num, d2], its noise scaled by
        `temperature`: [num, H, W, C]."""
        p1 = self.p_z1(z2)
        eps = temperature * jax.random.normal(self.make_rng("sample"), p1.mean.shape)
        return self.likelihood.mean(self.decoder(p1.mean + jnp.exp(0.5 * p1.log_var) * eps))

    def prior_log_prob(self, z):
        return self.prior.log_prob(z)

    def sample_prior(self, rng, num):
        """z2 ~ N(0, I): [num, d2] (decode maps it through the mean of p(z1 | z2))."""
        return self.prior.sample(rng, num, self.latent_dim)

    def __call__(self, x, y=None) -> VAEOutput:
        up1, q2 = self._bottom_up(x)
        k2, k1 = jax.random.split(self.make_rng("sample"))
        z2 = q2.sample(k2)
        q1, p1 = self._q1(up1, z2)
        z1 = q1.sample(k1)
        decoded = self.decoder(z1)
        log_px_z = self.likelihood.log_prob(decoded, x)
        kl2 = q2.kl_standard_normal_per_dim()
        kl = jnp.sum(kl2, -1) + jnp.sum(gaussian_kl(q1, p1), -1)
        return VAEOutput(q2, z2, decoded, log_px_z, kl2, kl)

    def log_importance_weights(self, x, num_samples, y=None, stop_posterior_grad=False):
        """log p(x, z1, z2) - log q(z1, z2 | x) for k joint samples: [k, batch]."""
        up1, q2 = self._bottom_up(x)
        k2, k1 = jax.random.split(self.make_rng("sample"))
        z2 = q2.sample(k2, num_samples=num_samples)                      # [k, B, d2]
        q1, p1 = self._q1(up1, z2)
        z1 = q1.sample(k1)                                               # [k, B, d1]
        decoded = self.decoder(z1.reshape(-1, z1.shape[-1])).reshape(*z1.shape[:2], *x.shape[1:-1], -1)
        log_px = self.likelihood.log_prob(decoded, x)
        if stop_posterior_grad:
            q1, q2 = jax.lax.stop_gradient(q1), jax.lax.stop_gradient(q2)
        return log_px + p1.log_prob(z1) + self.prior.log_prob(z2) - q1.log_prob(z1) - q2.log_prob(z2)
