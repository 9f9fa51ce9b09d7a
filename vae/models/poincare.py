"""The Poincaré ball B_c^d = {z : c |z|^2 < 1} and its wrapped normal (Mathieu et al. 2019), for
a VAE with hyperbolic latents.

    x (+)_c y   = ((1 + 2c<x,y> + c|y|^2) x + (1 - c|x|^2) y) / (1 + 2c<x,y> + c^2 |x|^2 |y|^2)   (Möbius addition)
    lambda_x    = 2 / (1 - c|x|^2)                                                         (conformal factor)
    exp_x(v)    = x (+)_c (tanh(sqrt(c) lambda_x |v| / 2) v / (sqrt(c) |v|))
    log_x(y)    = 2 / (sqrt(c) lambda_x) artanh(sqrt(c) |u|) u / |u|,  u = (-x) (+)_c y
    d_c(x, y)   = 2 / sqrt(c) artanh(sqrt(c) |(-x) (+)_c y|)

The wrapped normal N^W(mu, Sigma): z = exp_mu(v / lambda_mu), v ~ N(0, Sigma) (so |v| is the
geodesic distance from mu when Sigma's scale is 1), with density with respect to the ball's
Riemannian volume (lambda_z^d dz)

    log N^W(z) = log N(lambda_mu log_mu(z); 0, Sigma) - (d - 1) log(sinh(sqrt(c) r) / (sqrt(c) r)),  r = d_c(mu, z)

(Mathieu et al. 2019, sec. 3). Points are projected to norm <= (1 - 1e-5) /
sqrt(c) and artanh's argument clipped below 1, so nothing overflows at the boundary.
Shapes: points and tangent vectors [..., d].
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from vae.models.base import LatentVariableModel, VAEOutput

BOUNDARY_EPS = 1e-5
MIN_NORM = 1e-10


def _norm(x: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.clip(jnp.sum(x * x, axis=-1, keepdims=True), MIN_NORM**2))


def _artanh(x: jax.Array) -> jax.Array:
    # not 0.5 (log1p(x) - log1p(-x)): XLA:CPU (jax 0.10.2) miscompiles two log1p of different
    # arguments inside one fused reduction over >= ~16k rows, evaluating both on one argument
    # (benchmarks/NOTES.md, "Model zoo III"); jnp.arctanh is not affected
    return jnp.arctanh(jnp.clip(x, -1 + BOUNDARY_EPS, 1 - BOUNDARY_EPS))


def project(x: jax.Array, c: float) -> jax.Array:
    """Pulls points back inside the ball: |x| <= (1 - 1e-5) / sqrt(c)."""
    limit = (1 - BOUNDARY_EPS) / math.sqrt(c)
    n = _norm(x)
    return jnp.where(n > limit, x / n * limit, x)


def mobius_add(x: jax.Array, y: jax.Array, c: float) -> jax.Array:
    xy = jnp.sum(x * y, axis=-1, keepdims=True)
    x2, y2 = jnp.sum(x * x, axis=-1, keepdims=True), jnp.sum(y * y, axis=-1, keepdims=True)
    num = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    return num / jnp.clip(1 + 2 * c * xy + c**2 * x2 * y2, MIN_NORM)


def conformal_factor(x: jax.Array, c: float) -> jax.Array:
    """lambda_x = 2 / (1 - c |x|^2): [..., 1]."""
    return 2.0 / jnp.clip(1 - c * jnp.sum(x * x, axis=-1, keepdims=True), MIN_NORM)


def exp_map(x: jax.Array, v: jax.Array, c: float) -> jax.Array:
    sc, n = math.sqrt(c), _norm(v)
    return project(mobius_add(x, jnp.tanh(sc * conformal_factor(x, c) * n / 2) * v / (sc * n), c), c)


def log_map(x: jax.Array, y: jax.Array, c: float) -> jax.Array:
    sc = math.sqrt(c)
    u = mobius_add(-x, y, c)
    n = _norm(u)
    return 2 / (sc * conformal_factor(x, c)) * _artanh(sc * n) * u / n


def distance(x: jax.Array, y: jax.Array, c: float) -> jax.Array:
    """d_c(x, y): [...]."""
    return (2 / math.sqrt(c) * _artanh(math.sqrt(c) * _norm(mobius_add(-x, y, c))))[..., 0]


def _log_sinhc(s: jax.Array) -> jax.Array:
    """log(sinh(s) / s) for s >= 0: s + log1p(-exp(-2 s)) - log(2 s), finite for large s, and its
    series s^2 / 6 - s^4 / 180 below 1e-2, where the first form cancels."""
    safe = jnp.maximum(s, 1e-2)
    big = safe + jnp.log1p(-jnp.exp(-2 * safe)) - jnp.log(2 * safe)
    return jnp.where(s < 1e-2, s**2 / 6 - s**4 / 180, big)


@struct.dataclass
class WrappedNormal:
    """N^W(mu, diag(exp(log_var))) on the Poincaré ball of curvature -c. mean: mu (the
    distribution's Fréchet mean); log_var: the tangent Gaussian's."""

    mu: jax.Array
    log_var: jax.Array
    c: float = struct.field(pytree_node=False, default=1.0)
    deterministic = False

    @property
    def mean(self) -> jax.Array:
        return self.mu

    def sample(self, rng: jax.Array, num_samples: int | None = None) -> jax.Array:
        shape = self.mu.shape if num_samples is None else (num_samples, *self.mu.shape)
        v = jax.random.normal(rng, shape, self.mu.dtype) * jnp.exp(0.5 * self.log_var)
        return exp_map(self.mu, v / conformal_factor(self.mu, self.c), self.c)

    def log_prob(self, z: jax.Array) -> jax.Array:
        d = self.mu.shape[-1]
        v = log_map(self.mu, z, self.c) * conformal_factor(self.mu, self.c)
        gauss = jnp.sum(-0.5 * (math.log(2 * math.pi) + self.log_var + v**2 / jnp.exp(self.log_var)), axis=-1)
        return gauss - (d - 1) * _log_sinhc(math.sqrt(self.c) * distance(self.mu, z, self.c))


class PoincareVAE(LatentVariableModel):
    """A VAE with latents on the Poincaré ball of curvature -c (Mathieu et al. 2019): wrapped
    normal posterior N^W(exp_0(a), diag(exp(b))) from the encoder's heads (a, b), wrapped normal
    prior N^W(0, I), and a decoder that reads log_0(z), the latent in the tangent space at the
    origin (the paper's simplest decoder; its gyroplane layer is left out)."""

    encoder: nn.Module
    decoder: nn.Module
    likelihood: nn.Module
    latent_dim: int
    curvature: float = 1.0
    num_classes: int = 0

    def encode(self, x: jax.Array, y: jax.Array | None = None) -> WrappedNormal:
        a, b = self.encoder(x)
        return WrappedNormal(exp_map(jnp.zeros_like(a), a, self.curvature), b, self.curvature)

    def prior(self, like: jax.Array) -> WrappedNormal:
        zeros = jnp.zeros(like.shape[-1:], like.dtype)
        return WrappedNormal(zeros, zeros, self.curvature)

    def decoder_input(self, z: jax.Array, y: jax.Array | None) -> jax.Array:
        return log_map(jnp.zeros_like(z), z, self.curvature)

    def __call__(self, x: jax.Array, y: jax.Array | None = None) -> VAEOutput:
        """One pass; kl is the one-sample estimate log q(z|x) - log p(z) (no closed form)."""
        q = self.encode(x)
        z = q.sample(self.make_rng("sample"))
        decoded = self.decode(z)
        kl = q.log_prob(z) - self.prior(z).log_prob(z)
        return VAEOutput(q, z, decoded, self.log_likelihood(decoded, x), jnp.zeros_like(z), kl)

    def log_importance_weights(self, x: jax.Array, num_samples: int, y: jax.Array | None = None,
                               stop_posterior_grad: bool = False) -> jax.Array:
        q = self.encode(x)
        z = q.sample(self.make_rng("sample"), num_samples)
        qq = jax.lax.stop_gradient(q) if stop_posterior_grad else q
        return self.log_likelihood(self.decode(z), x) + self.prior(z).log_prob(z) - qq.log_prob(z)

    def sample_prior(self, rng: jax.Array, num: int) -> jax.Array:
        zeros = jnp.zeros((num, self.latent_dim))
        return WrappedNormal(zeros, zeros, self.curvature).sample(rng)

    def generate(self, num: int, temperature: float = 1.0, y: jax.Array | None = None) -> jax.Array:
        """Decoder means for z ~ N^W(0, temperature^2 I)."""
        zeros = jnp.zeros((num, self.latent_dim))
        log_var = jnp.full_like(zeros, 2 * jnp.log(jnp.maximum(temperature, 1e-6)))
        z = WrappedNormal(zeros, log_var, self.curvature).sample(self.make_rng("sample"))
        return self.likelihood.mean(self.decode(z))
