"""The written interface of every model: a latent-variable model p(x, z) = p(z) p(x | z)
with an amortized posterior q(z | x), as a linen Module.

    encode(x, y=None)            -> posterior q(z|x): DiagonalGaussian, or PointMass for
                                    deterministic encoders (VQ-VAE); .mean [batch, d]
    decode(z, y=None)            -> likelihood parameters [..., batch, H, W, P] (leading sample
                                    axes of z [..., batch, d] are kept)
    log_likelihood(decoded, x)   -> log p(x | z) [..., batch], nats
    __call__(x, y=None)          -> VAEOutput (one stochastic pass; 'sample' RNG stream)
    log_importance_weights(x, k, y=None, stop_posterior_grad=False)
                                 -> log p(x, z_i) - log q(z_i | x) [k, batch]
    reconstruct(x, y=None)       -> the likelihood's mean at the posterior mean [batch, H, W, C]
    sample_prior(rng, num)       -> z ~ p(z) [num, d]
    generate(num, temperature=1.0, y=None) -> decoder means [num, H, W, C]
    generate_from(z, temperature=1.0, y=None)
                                 -> decoder means [num, H, W, C] for given codes z [num, d] (a
                                    hierarchy draws its lower groups given z; 'sample' RNG stream)
    latent_dim: int              d, the size of `encode(...).mean`
    num_classes: int             > 0 for models conditioned on labels y [batch] (pass y everywhere)

x: [batch, H, W, C] images in [0, 1]. Subclasses declare their submodules (`encoder`,
`decoder`, `likelihood`, ...) as dataclass fields, implement `encode`, `__call__`,
`log_importance_weights` and `sample_prior`, and inherit the rest, which is written here once.
"""

from __future__ import annotations

import flax.linen as nn
import jax
from flax import struct

from vae.models.distributions import DiagonalGaussian, PointMass


@struct.dataclass
class VAEOutput:
    """One stochastic pass. Shapes for x: [batch, H, W, C] and a d-dimensional latent.

    posterior: q(z|x) (DiagonalGaussian, or PointMass for deterministic encoders) with mean [batch, d];
    z: [batch, d] the latent the decoder was given (a reparameterized draw, or a quantized code);
    decoded: likelihood parameters [batch, H, W, P]; log_px_z: log p(x|z) [batch] in nats;
    kl_per_dim: KL(q(z|x) || p(z)) per latent [batch, d] (zeros when the prior has no
    closed-form KL); kl: the KL [batch] (closed form, or the one-sample estimate
    log q(z|x) - log p(z) for priors without one; L log K for a VQ-VAE's uniform code prior);
    codes: the discrete code indices [batch, L] of a quantized latent, None otherwise.
    """

    posterior: DiagonalGaussian | PointMass
    z: jax.Array
    decoded: jax.Array
    log_px_z: jax.Array
    kl_per_dim: jax.Array
    kl: jax.Array
    codes: jax.Array | None = None


class LatentVariableModel(nn.Module):
    """Base class of every model (see the module docstring for the interface). Subclasses must
    have `decoder`, `likelihood` and `latent_dim` attributes, and `num_classes` (0 if unconditional)."""

    def encode(self, x: jax.Array, y: jax.Array | None = None) -> DiagonalGaussian | PointMass:
        raise NotImplementedError

    def __call__(self, x: jax.Array, y: jax.Array | None = None) -> VAEOutput:
        raise NotImplementedError

    def log_importance_weights(self, x: jax.Array, num_samples: int, y: jax.Array | None = None,
                               stop_posterior_grad: bool = False) -> jax.Array:
        raise NotImplementedError

    def sample_prior(self, rng: jax.Array, num: int) -> jax.Array:
        raise NotImplementedError

    def decoder_input(self, z: jax.Array, y: jax.Array | None) -> jax.Array:
        """What the decoder network sees for code z (a conditional model appends the label)."""
        return z

    def decode(self, z: jax.Array, y: jax.Array | None = None) -> jax.Array:
        """z: [..., batch, d] -> likelihood parameters [..., batch, H, W, P] (leading axes flattened
        for the decoder)."""
        z = self.decoder_input(z, y)
        lead = z.shape[:-1]
        out = self.decoder(z.reshape(-1, z.shape[-1]))
        return out.reshape(*lead, *out.shape[1:])

    def log_likelihood(self, decoded: jax.Array, x: jax.Array) -> jax.Array:
        """log p(x|z): decoded [..., batch, H, W, P], x [batch, H, W, C] -> [..., batch]."""
        return self.likelihood.log_prob(decoded, x)

    def reconstruct(self, x: jax.Array, y: jax.Array | None = None) -> jax.Array:
        """Mean of p(x | z = E[q(z|x)]): [batch, H, W, C]."""
        return self.likelihood.mean(self.decode(self.encode(x, y).mean, y))

    def generate(self, num: int, temperature: float = 1.0, y: jax.Array | None = None) -> jax.Array:
        """Means of p(x|z) for z ~ p(z) scaled by `temperature`: [num, H, W, C]."""
        z = temperature * self.sample_prior(self.make_rng("sample"), num)
        return self.generate_from(z, temperature, y)

    def generate_from(self, z: jax.Array, temperature: float = 1.0, y: jax.Array | None = None) -> jax.Array:
        """Means of p(x|z) for given codes z [num, d] (from a fitted sampler, say): [num, H, W, C].
        A one-level model decodes z as it is; a hierarchy, whose `decode` puts its lower groups at
        their conditional means, overrides this to draw them from p(z_l | z_<l), their noise scaled
        by `temperature`, so that a sampler replacing the top prior still samples the whole model."""
        return self.likelihood.mean(self.decode(z, y))
