"""Distributions on the unit sphere S^{m-1} in R^m: the von Mises-Fisher (Davidson et al. 2018)
and the power spherical (De Cao & Aziz 2020) posteriors, the uniform prior, and a log Bessel
function that stays finite for large concentration and dimension.

    vMF(z; mu, kappa)   = C_m(kappa) exp(kappa mu.z),  C_m = kappa^{v} / ((2 pi)^{m/2} I_v(kappa)),  v = m/2 - 1
    PS(z; mu, kappa)    = N_m(kappa)^-1 (1 + mu.z)^kappa
    U(S^{m-1})          = 1 / |S^{m-1}|,  |S^{m-1}| = 2 pi^{m/2} / Gamma(m/2)

Shapes: mu [..., m] (unit norm), kappa [...]; samples [(k,) ..., m].
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct
from jax.scipy.special import digamma, gammaln

from vae.models.base import LatentVariableModel, VAEOutput

# Debye's polynomials u_k(p) of the uniform asymptotic expansion of I_v (Abramowitz & Stegun 9.3.9-10)
_DEBYE = (
    ((3, 1), (-5, 3), 24.0),
    ((81, 2), (-462, 4), (385, 6), 1152.0),
    ((30375, 3), (-369603, 5), (765765, 7), (-425425, 9), 414720.0),
    ((4465125, 4), (-94121676, 6), (349922430, 8), (-446185740, 10), (185910725, 12), 39813120.0),
)
_SERIES_TERMS = 160
_DEBYE_RADIUS = 40.0   # sqrt(v^2 + x^2) above which the expansion's 4 terms are exact in float32


def _log_iv_series(v: float, x: jax.Array) -> jax.Array:
    """log sum_k (x/2)^{2k+v} / (k! Gamma(k+v+1)), in log space (for sqrt(v^2+x^2) <= 40)."""
    k = jnp.arange(_SERIES_TERMS, dtype=x.dtype)
    log_half = jnp.log(x / 2.0)[..., None]
    return jax.nn.logsumexp((2 * k + v) * log_half - gammaln(k + 1) - gammaln(k + v + 1), axis=-1)


def _log_iv_debye(v: float, x: jax.Array) -> jax.Array:
    """The uniform asymptotic expansion (Debye; A&S 9.7.7) with 4 correction terms, v > 0:
    log I_v(x) = r + v log(x / (v + r)) - 1/2 log(2 pi r) + log(1 + sum_k u_k(p) / v^k),
    r = sqrt(v^2 + x^2), p = v / r."""
    r = jnp.sqrt(v * v + x * x)
    p = v / r
    correction = 1.0
    for k, terms in enumerate(_DEBYE, start=1):
        *poly, denom = terms
        correction = correction + sum(c * p**e for c, e in poly) / denom / v**k
    return r + v * jnp.log(x / (v + r)) - 0.5 * jnp.log(2 * math.pi * r) + jnp.log(correction)


def log_bessel_iv(v: float, x: jax.Array) -> jax.Array:
    """log I_v(x) for a fixed order v >= 0 and x > 0, in float32 without overflow: the power
    series in log space near the origin, Debye's uniform expansion away from it (where the
    series would need many terms). Differentiable in x. x: [...] -> [...]."""
    x = jnp.asarray(x, jnp.float32)
    near = jnp.sqrt(v * v + x * x) <= _DEBYE_RADIUS
    # each branch sees inputs where it is valid, so neither puts NaN into the other's gradient
    series = _log_iv_series(v, jnp.where(near, x, 1.0))
    if v == 0:
        far = jnp.log(jax.scipy.special.i0e(x)) + x
    else:
        far = _log_iv_debye(v, jnp.where(near, _DEBYE_RADIUS, x))
    return jnp.where(near, series, far)


def log_sphere_area(m: int) -> float:
    """log |S^{m-1}| = log(2 pi^{m/2} / Gamma(m/2)): the entropy of the uniform distribution."""
    return math.log(2.0) + 0.5 * m * math.log(math.pi) - math.lgamma(0.5 * m)


def _householder_to(mu: jax.Array, z: jax.Array) -> jax.Array:
    """Reflects samples z around e_1 onto mu: the Householder map sending e_1 to mu."""
    e1 = jnp.zeros_like(mu).at[..., 0].set(1.0)
    u = e1 - mu
    u = u / jnp.maximum(jnp.linalg.norm(u, axis=-1, keepdims=True), 1e-6)
    return z - 2.0 * jnp.sum(z * u, axis=-1, keepdims=True) * u


def _tangent(rng: jax.Array, shape: tuple[int, ...], w: jax.Array) -> jax.Array:
    """[w, sqrt(1 - w^2) v] with v uniform on S^{m-2}: a sample around e_1 with e_1.z = w."""
    v = jax.random.normal(rng, (*shape[:-1], shape[-1] - 1))
    v = v / jnp.linalg.norm(v, axis=-1, keepdims=True)
    return jnp.concatenate([w[..., None], jnp.sqrt(jnp.clip(1.0 - w**2, 1e-10))[..., None] * v], axis=-1)


class _OnSphere:
    """What the sphere's posteriors share: mu [..., m], and the summaries every posterior gives
    (mean = E[z] = E[mu.z] mu by symmetry around mu, log_var from the spread 1 - |E z|^2)."""

    deterministic = False

    @property
    def dim(self) -> int:
        return self.mu.shape[-1]

    @property
    def mean(self) -> jax.Array:
        return self.mean_resultant()[..., None] * self.mu

    @property
    def log_var(self) -> jax.Array:
        spread = jnp.log(jnp.clip(1.0 - self.mean_resultant() ** 2, 1e-12) / self.dim)
        return jnp.broadcast_to(spread[..., None], self.mu.shape)


@struct.dataclass
class VonMisesFisher(_OnSphere):
    """vMF(mu, kappa) on S^{m-1}. mean: E[z] = A_m(kappa) mu, A_m = I_{m/2} / I_{m/2-1};
    log_var: log((1 - |E z|^2) / m) per coordinate (a summary of the spread, not the covariance)."""

    mu: jax.Array
    kappa: jax.Array
    proposals: int = struct.field(pytree_node=False, default=32)

    def log_normalizer(self) -> jax.Array:
        """log C_m(kappa): [...]."""
        v = self.dim / 2 - 1
        return v * jnp.log(self.kappa) - 0.5 * self.dim * math.log(2 * math.pi) - log_bessel_iv(v, self.kappa)

    def mean_resultant(self) -> jax.Array:
        """A_m(kappa) = I_{m/2}(kappa) / I_{m/2-1}(kappa) in (0, 1): [...]."""
        v = self.dim / 2 - 1
        return jnp.exp(log_bessel_iv(v + 1, self.kappa) - log_bessel_iv(v, self.kappa))


    def log_prob(self, z: jax.Array) -> jax.Array:
        return self.log_normalizer() + self.kappa * jnp.sum(self.mu * z, axis=-1)

    def kl_uniform(self) -> jax.Array:
        """KL(vMF || U(S^{m-1})) = kappa A_m(kappa) + log C_m(kappa) + log |S^{m-1}| (Davidson et al. 2018)."""
        return self.kappa * self.mean_resultant() + self.log_normalizer() + log_sphere_area(self.dim)

    def sample(self, rng: jax.Array, num_samples: int | None = None) -> jax.Array:
        """Wood's (1994) rejection sampler for w = mu.z, reparameterized as Davidson et al. (2018):
        w = h(eps, kappa) for the accepted Beta proposal eps, differentiated through h with eps held
        fixed (their g_rep; the correction g_cor is left out). Rounds of one proposal per sample
        until every sample has accepted one (at most `proposals` rounds; a sample still without
        one, probability < 1e-9 at the sizes used here, keeps its last proposal)."""
        m = self.dim
        lead = jnp.shape(self.kappa) if num_samples is None else (num_samples, *jnp.shape(self.kappa))
        kappa = jnp.broadcast_to(self.kappa, lead)

        def envelope(kappa):
            root = jnp.sqrt(4 * kappa**2 + (m - 1) ** 2)
            b = (m - 1) / (2 * kappa + root)              # = (-2 kappa + root) / (m - 1), without cancellation
            a = (m - 1 + 2 * kappa + root) / 4
            return a, b, 4 * a * b / (1 + b) - (m - 1) * math.log(m - 1)

        a, b, d = envelope(jax.lax.stop_gradient(kappa))   # the loop carries no gradient
        rng, r_v = jax.random.split(rng)

        def round_(state):
            i, eps, done = state
            r_eps, r_u = jax.random.split(jax.random.fold_in(rng, i))
            proposal = jax.random.beta(r_eps, (m - 1) / 2, (m - 1) / 2, lead)
            t = 2 * a * b / (1 - (1 - b) * proposal)
            accept = ((m - 1) * jnp.log(t) - t + d >= jnp.log(jax.random.uniform(r_u, lead, minval=1e-12))) | (
                i == self.proposals - 1)
            take = accept & ~done
            return i + 1, jnp.where(take, proposal, eps), done | take

        start = (jnp.asarray(0), jnp.zeros(lead, kappa.dtype), jnp.zeros(lead, bool))
        _, eps, _ = jax.lax.while_loop(lambda s: ~jnp.all(s[2]), round_, start)
        _, b, _ = envelope(kappa)
        w = (1 - (1 + b) * eps) / (1 - (1 - b) * eps)
        z = _tangent(r_v, (*lead, m), w)
        return _householder_to(jnp.broadcast_to(self.mu, (*lead, m)), z)


@struct.dataclass
class PowerSpherical(_OnSphere):
    """The power spherical distribution (De Cao & Aziz 2020): density proportional to
    (1 + mu.z)^kappa; w = mu.z = 2 t - 1 with t ~ Beta((m-1)/2 + kappa, (m-1)/2), so sampling needs
    no rejection and is reparameterized through the Beta's implicit gradient."""

    mu: jax.Array
    kappa: jax.Array

    def _ab(self):
        return (self.dim - 1) / 2 + self.kappa, (self.dim - 1) / 2

    def log_normalizer(self) -> jax.Array:
        """log N_m(kappa) = (a + b) log 2 + b log pi + lgamma(a) - lgamma(a + b)."""
        a, b = self._ab()
        return (a + b) * math.log(2) + b * math.log(math.pi) + gammaln(a) - gammaln(a + b)

    def log_prob(self, z: jax.Array) -> jax.Array:
        return self.kappa * jnp.log1p(jnp.sum(self.mu * z, axis=-1)) - self.log_normalizer()

    def mean_resultant(self) -> jax.Array:
        """E[mu.z] = (a - b) / (a + b)."""
        a, b = self._ab()
        return (a - b) / (a + b)


    def entropy(self) -> jax.Array:
        """H = log N_m - kappa (log 2 + psi(a) - psi(a + b))."""
        a, b = self._ab()
        return self.log_normalizer() - self.kappa * (math.log(2) + digamma(a) - digamma(a + b))

    def kl_uniform(self) -> jax.Array:
        return log_sphere_area(self.dim) - self.entropy()

    def sample(self, rng: jax.Array, num_samples: int | None = None) -> jax.Array:
        m = self.dim
        lead = jnp.shape(self.kappa) if num_samples is None else (num_samples, *jnp.shape(self.kappa))
        a, b = self._ab()
        r_t, r_v = jax.random.split(rng)
        t = jax.random.beta(r_t, jnp.broadcast_to(a, lead), b, lead)
        z = _tangent(r_v, (*lead, m), 2 * t - 1)
        return _householder_to(jnp.broadcast_to(self.mu, (*lead, m)), z)


def uniform_sphere(rng: jax.Array, num: int, m: int) -> jax.Array:
    """z ~ U(S^{m-1}): [num, m]."""
    z = jax.random.normal(rng, (num, m))
    return z / jnp.linalg.norm(z, axis=-1, keepdims=True)


class SphericalVAE(LatentVariableModel):
    """A VAE with latents on the unit sphere S^{m-1} (m = latent_dim): a vMF or power spherical
    posterior and the uniform prior (Davidson et al. 2018; De Cao & Aziz 2020).

    encoder: x -> (a, b) heads of size m; mu = a / |a|, kappa = softplus(b_0) + 1 (Davidson et
    al.'s parameterization). distribution: `vmf` | `power_spherical`. `generate` ignores its
    temperature (there is no scale on the sphere)."""

    encoder: nn.Module
    decoder: nn.Module
    likelihood: nn.Module
    latent_dim: int
    distribution: str = "vmf"
    num_classes: int = 0

    def encode(self, x: jax.Array, y: jax.Array | None = None):
        a, b = self.encoder(x)
        mu = a / jnp.maximum(jnp.linalg.norm(a, axis=-1, keepdims=True), 1e-6)
        kappa = jax.nn.softplus(b[..., 0]) + 1.0
        return VonMisesFisher(mu, kappa) if self.distribution == "vmf" else PowerSpherical(mu, kappa)

    def __call__(self, x: jax.Array, y: jax.Array | None = None) -> VAEOutput:
        q = self.encode(x)
        z = q.sample(self.make_rng("sample"))
        decoded = self.decode(z)
        return VAEOutput(q, z, decoded, self.log_likelihood(decoded, x), jnp.zeros_like(z), q.kl_uniform())

    def log_importance_weights(self, x: jax.Array, num_samples: int, y: jax.Array | None = None,
                               stop_posterior_grad: bool = False) -> jax.Array:
        """log p(x|z_i) - log |S^{m-1}| - log q(z_i|x): [k, batch]."""
        q = self.encode(x)
        z = q.sample(self.make_rng("sample"), num_samples)
        qq = jax.lax.stop_gradient(q) if stop_posterior_grad else q
        return self.log_likelihood(self.decode(z), x) - log_sphere_area(self.latent_dim) - qq.log_prob(z)

    def sample_prior(self, rng: jax.Array, num: int) -> jax.Array:
        return uniform_sphere(rng, num, self.latent_dim)

    def generate(self, num: int, temperature: float = 1.0, y: jax.Array | None = None) -> jax.Array:
        return self.likelihood.mean(self.decode(self.sample_prior(self.make_rng("sample"), num)))
