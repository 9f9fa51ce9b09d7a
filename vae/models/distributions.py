"""Posterior, prior and likelihood pieces of a VAE, all returning log-densities in nats.

Per-example quantities are summed over every non-batch axis, so they are comparable across
architectures: `log_prob(...)` has shape [batch].

Likelihoods p(x | z) are linen Modules used as `VAE.likelihood`. For images x [batch, H, W, C]
(float32 in [0, 1]; 8-bit data are k/255) the decoder outputs their *parameters*
[..., batch, H, W, P] with P = `likelihood.param_channels(C)`, and every likelihood has

  log_prob(params, x) -> [..., batch]   nats, summed over all sub-pixels; leading sample axes
                                        of params broadcast against x
  mean(params)        -> [..., H, W, C] the image to show, in [0, 1]
  sample(rng, params) -> [..., H, W, C]
  discrete: bool      whether log_prob is a log-probability of discrete data (`vae.models.bits`)

  likelihood                 P           discrete  data
  BernoulliLikelihood        C           True      binary (grey levels: the usual relaxation)
  GaussianLikelihood         C           False     8-bit images, continuous images or vectors
                                                   (any real values); sigma fixed or learned
  DiscretizedLogisticMixture 3K (C=1),   True      8-bit (PixelCNN++, Salimans et al. 2017)
                             10K (C=3)
  Categorical256             256 C       True      8-bit

Vectors [batch, D] are held as [batch, 1, 1, D] (`vae.data`), so the same code sums them.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

# bits/dim live in their own module; imported here, where they were first defined, for old imports
from vae.models.bits import LOG_256, bits_per_dim, bits_per_dim_convention, takes_8bit_offset  # noqa: F401

LOG_2PI = math.log(2.0 * math.pi)


def _sum_event(x: jax.Array, event_ndims: int) -> jax.Array:
    return jnp.sum(x, axis=tuple(range(x.ndim - event_ndims, x.ndim))) if event_ndims else x


@struct.dataclass
class DiagonalGaussian:
    """q(z | x) = N(mean, diag(exp(log_var))). mean, log_var: [..., latent_dim]."""

    mean: jax.Array
    log_var: jax.Array
    deterministic = False

    @property
    def std(self) -> jax.Array:
        return jnp.exp(0.5 * self.log_var)

    @property
    def variance(self) -> jax.Array:
        return jnp.exp(self.log_var)

    def sample(self, rng: jax.Array, num_samples: int | None = None) -> jax.Array:
        """Reparameterized draw: [..., d], or [num_samples, ..., d] when num_samples is given."""
        shape = self.mean.shape if num_samples is None else (num_samples, *self.mean.shape)
        eps = jax.random.normal(rng, shape, self.mean.dtype)
        return self.mean + self.std * eps

    def log_prob(self, z: jax.Array) -> jax.Array:
        """log q(z): [...] (summed over the last axis; z broadcasts against mean)."""
        return jnp.sum(-0.5 * (LOG_2PI + self.log_var + (z - self.mean) ** 2 / self.variance), axis=-1)

    def kl_standard_normal_per_dim(self) -> jax.Array:
        """KL(q || N(0, I)) per latent dimension, closed form: [..., d]."""
        return 0.5 * (self.variance + self.mean**2 - 1.0 - self.log_var)

    def kl_standard_normal(self) -> jax.Array:
        """KL(q || N(0, I)) summed over the latent: [...]."""
        return jnp.sum(self.kl_standard_normal_per_dim(), axis=-1)

    def entropy(self) -> jax.Array:
        return jnp.sum(0.5 * (LOG_2PI + 1.0 + self.log_var), axis=-1)


@struct.dataclass
class PointMass:
    """A deterministic posterior q(z | x) = delta(z - mean), as a VQ-VAE's or an autoencoder's
    encoder gives. mean: [..., latent_dim]. It has no density: `log_prob` raises, the variance
    is exactly 0 (`log_var` is -inf), and `sample` returns the mean. Code that needs a density
    checks `deterministic` first."""

    mean: jax.Array
    deterministic = True

    @property
    def variance(self) -> jax.Array:
        return jnp.zeros_like(self.mean)

    @property
    def log_var(self) -> jax.Array:
        return jnp.full_like(self.mean, -jnp.inf)

    @property
    def std(self) -> jax.Array:
        return jnp.zeros_like(self.mean)

    def sample(self, rng: jax.Array, num_samples: int | None = None) -> jax.Array:
        """The mean: [..., d], or broadcast to [num_samples, ..., d]."""
        return self.mean if num_samples is None else jnp.broadcast_to(self.mean, (num_samples, *self.mean.shape))

    def log_prob(self, z: jax.Array) -> jax.Array:
        raise TypeError("a point-mass posterior has no density; its model defines log_importance_weights itself")


class StandardNormalPrior(nn.Module):
    """p(z) = N(0, I). A Module so that learned priors (VampPrior, mixtures) can replace it."""

    has_analytic_kl = True

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        return self.log_prob(z)

    def log_prob(self, z: jax.Array) -> jax.Array:
        """log p(z): z [..., d] -> [...]."""
        return jnp.sum(-0.5 * (LOG_2PI + z**2), axis=-1)

    def kl_per_dim(self, posterior: DiagonalGaussian) -> jax.Array:
        """Analytic KL(q(z|x) || p(z)) per dimension: [batch, d]."""
        return posterior.kl_standard_normal_per_dim()

    def sample(self, rng: jax.Array, num: int, latent_dim: int) -> jax.Array:
        """z ~ p(z): [num, latent_dim]."""
        return jax.random.normal(rng, (num, latent_dim))


class BernoulliLikelihood(nn.Module):
    """p(x | z) = prod Bernoulli(x; sigmoid(logits)); x in [0, 1] (binary, or intensities as
    the usual continuous relaxation). The decoder outputs logits [batch, H, W, C]."""

    discrete = True

    @nn.compact
    def __call__(self, logits: jax.Array, x: jax.Array) -> jax.Array:
        return self.log_prob(logits, x)

    def param_channels(self, channels: int) -> int:
        return channels

    def log_prob(self, logits: jax.Array, x: jax.Array) -> jax.Array:
        """log p(x | z) in nats, summed over pixels: [batch] (logits broadcast over leading sample axes)."""
        # x log sigmoid(l) + (1 - x) log sigmoid(-l) = x l - softplus(l): stable for large |l| (the
        # error is below softplus's own rounding, < 1 ulp of l), with gradient x - sigmoid(l) at
        # every l, and one exp and one log1p per pixel where the two log_sigmoids took two of each
        # (XLA did not merge them; measured in benchmarks/NOTES.md)
        ll = x * logits - jax.nn.softplus(logits)
        return _sum_event(ll, 3)

    def mean(self, logits: jax.Array) -> jax.Array:
        return jax.nn.sigmoid(logits)

    def sample(self, rng: jax.Array, logits: jax.Array) -> jax.Array:
        return jax.random.bernoulli(rng, jax.nn.sigmoid(logits)).astype(logits.dtype)


def _softplus_inverse(y: float) -> float:
    """x with softplus(x) = y, for y > 0."""
    return y + math.log(-math.expm1(-y))


class GaussianLikelihood(nn.Module):
    """p(x | z) = N(x; mean, sigma^2 I). The decoder outputs the mean (P = C).

    sigma: the fixed standard deviation (learn_sigma='none') or the initial one.
    learn_sigma: 'none' | 'global' | 'pixel'. Learned sigma is a parameter named 'log_sigma'
      in this module's params: a scalar for 'global', [H, W, C] for 'pixel' (shape taken from
      x at the first call; `VAE.__call__` -> `log_likelihood` -> `log_prob` creates it at
      init). To keep the variance from collapsing onto the training pixels (the likelihood is
      unbounded as sigma -> 0), the log-sigma used is floored softly,

          log sigma = LOG_SIGMA_FLOOR + softplus(log_sigma_param - LOG_SIGMA_FLOOR),

      with LOG_SIGMA_FLOOR = log(1e-3) (sigma >= 1e-3, i.e. ~1/4 of an 8-bit level): smooth,
      with a gradient everywhere, and equal to the parameter to within 1e-3 / sigma when sigma
      is well above the floor. The parameter is initialised so that the effective sigma is
      exactly `sigma`. `log_sigma(event_shape)` returns the effective value. Fixed sigma is used
      as given (no floor).
    mean() clips the Gaussian's mean to [0, 1] (the image to show) when `unit_range`; sample()
    does not clip.
    discrete = False: on 8-bit data use bits_per_dim(..., continuous_8bit=True).
    What the data are (`for_data` sets both from the dataset; they change no parameter):
      levels_8bit: the data are 8-bit levels k/255 (or binary), so bits/dim take the 8-bit
        dequantization offset (`takes_8bit_offset`); False for continuous data.
      unit_range: the data lie in [0, 1] (images); False for vectors, whose mean is not clipped.
    """

    sigma: float = 1.0
    learn_sigma: str = "none"
    levels_8bit: bool = True
    unit_range: bool = True
    discrete = False

    LOG_SIGMA_FLOOR = math.log(1e-3)

    def __call__(self, mean: jax.Array, x: jax.Array) -> jax.Array:
        return self.log_prob(mean, x)

    def param_channels(self, channels: int) -> int:
        return channels

    def _check(self) -> None:
        if self.learn_sigma not in ("none", "global", "pixel"):
            raise ValueError(f"learn_sigma must be 'none', 'global' or 'pixel', got {self.learn_sigma!r}")
        if not self.sigma > 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma!r}")
        if self.learn_sigma != "none" and not math.log(self.sigma) > self.LOG_SIGMA_FLOOR:
            raise ValueError(f"a learned sigma must start above its floor 1e-3, got sigma={self.sigma!r}")

    @nn.compact
    def _learned_log_sigma(self, event_shape: tuple[int, ...]) -> jax.Array:
        # The module's only compact method: creates the parameter on first use, reads it after.
        floor = self.LOG_SIGMA_FLOOR
        init_value = floor + _softplus_inverse(math.log(self.sigma) - floor)
        shape = () if self.learn_sigma == "global" else tuple(int(s) for s in event_shape)
        raw = self.param("log_sigma", lambda _, s: jnp.full(s, init_value, jnp.float32), shape)
        return floor + jax.nn.softplus(raw - floor)

    def log_sigma(self, event_shape: tuple[int, ...]) -> jax.Array:
        """The effective log sigma, broadcastable to [..., H, W, C]; event_shape = (H, W, C)."""
        self._check()
        if self.learn_sigma == "none":
            return jnp.asarray(math.log(self.sigma), jnp.float32)
        return self._learned_log_sigma(tuple(event_shape))

    def log_prob(self, mean: jax.Array, x: jax.Array) -> jax.Array:
        """log N(x; mean, sigma^2) in nats, summed over pixels: [..., batch]."""
        log_sigma = self.log_sigma(x.shape[-3:])
        ll = -0.5 * (LOG_2PI + 2.0 * log_sigma + ((x - mean) * jnp.exp(-log_sigma)) ** 2)
        return _sum_event(ll, 3)

    def mean(self, params: jax.Array) -> jax.Array:
        return jnp.clip(params, 0.0, 1.0) if self.unit_range else params

    def sample(self, rng: jax.Array, params: jax.Array) -> jax.Array:
        sigma = jnp.exp(self.log_sigma(params.shape[-3:]))
        return params + sigma * jax.random.normal(rng, params.shape, params.dtype)


def _to_bin(x: jax.Array) -> jax.Array:
    """Data in [0, 1] (k/255) -> the integer level k in 0..255 (int32)."""
    return jnp.clip(jnp.round(x * 255.0), 0, 255).astype(jnp.int32)


class DiscretizedLogisticMixture(nn.Module):
    """Discretized mixture of logistics, PixelCNN++ (Salimans et al. 2017, eq. 2), for 8-bit
    data. x in [0, 1] is rescaled to [-1, 1], where the 256 levels have bins of width 2/255:

        P(x | pi, mu, s) = sum_k pi_k [sigmoid((x + 1/255 - mu_k) / s_k)
                                       - sigmoid((x - 1/255 - mu_k) / s_k)],

    with the lowest bin (x = 0) integrating from -inf and the highest (x = 255) to +inf. When
    the bin mass is below 1e-5 the log-probability is the mid-point approximation
    log pdf(x) + log(2/255), as in PixelCNN++. The mixture indicator is shared by the channels
    of a pixel, so log P(pixel) = logsumexp_k (log pi_k + sum_c log P_c(x_c | k)).

    Parameter layout (P = param_channels(C), K = num_mixtures), on the last axis:
      [0:K]            mixture logits
      [K:]             reshaped to [C, n*K]: per channel c, means [0:K], log-scales [K:2K]
                       (floored at -7 as in PixelCNN++) and, for C = 3 only, raw coupling
                       coefficients [2K:3K] (n = 3; P = 10K).
    C = 3 couples the channels linearly as in PixelCNN++: with a = tanh(coefficients),
        mu_G = mu_G + a_R * x_R,   mu_B = mu_B + a_G * x_R + a_B * x_G
    (a_R, a_G, a_B: the coefficient slots of channels 0, 1, 2; x in [-1, 1]). Any other C
    treats the channels independently given k (n = 2; P = (1 + 2C)K, so 3K for C = 1).
    discrete = True: log_prob is a log-probability of the 8-bit data.
    """

    num_mixtures: int = 10
    discrete = True

    LOG_SCALE_MIN = -7.0

    def __call__(self, params: jax.Array, x: jax.Array) -> jax.Array:
        return self.log_prob(params, x)

    def param_channels(self, channels: int) -> int:
        k = self.num_mixtures
        return 10 * k if channels == 3 else (1 + 2 * channels) * k

    def _split(self, params: jax.Array, channels: int):
        """-> (logits [..., K], means, log_scales, coeffs [..., C, K]; coeffs None unless C = 3)."""
        k = self.num_mixtures
        if params.shape[-1] != self.param_channels(channels):
            raise ValueError(f"DiscretizedLogisticMixture(num_mixtures={k}) on {channels} channel(s) needs "
                             f"{self.param_channels(channels)} parameter channels, got {params.shape[-1]}")
        n = 3 if channels == 3 else 2
        logits = params[..., :k]
        rest = params[..., k:].reshape(*params.shape[:-1], channels, n * k)
        means = rest[..., :k]
        log_scales = jnp.maximum(rest[..., k:2 * k], self.LOG_SCALE_MIN)
        coeffs = jnp.tanh(rest[..., 2 * k:3 * k]) if n == 3 else None
        return logits, means, log_scales, coeffs

    @staticmethod
    def _couple(means: jax.Array, coeffs: jax.Array | None, x: jax.Array) -> jax.Array:
        """Means [..., C, K] shifted by the earlier channels' values x [..., C] (in [-1, 1])."""
        if coeffs is None:
            return means
        x0, x1 = x[..., 0, None], x[..., 1, None]
        m1 = means[..., 1, :] + coeffs[..., 0, :] * x0
        m2 = means[..., 2, :] + coeffs[..., 1, :] * x0 + coeffs[..., 2, :] * x1
        return jnp.stack(jnp.broadcast_arrays(means[..., 0, :], m1, m2), axis=-2)

    def log_prob(self, params: jax.Array, x: jax.Array) -> jax.Array:
        """log P(x) in nats, summed over pixels: params [..., batch, H, W, P], x [batch, H, W, C] -> [..., batch]."""
        channels = x.shape[-1]
        logits, means, log_scales, coeffs = self._split(params, channels)
        xs = 2.0 * x - 1.0                                         # [batch, H, W, C] in [-1, 1]
        means = self._couple(means, coeffs, xs)                    # [..., H, W, C, K]
        centered = xs[..., None] - means
        inv_s = jnp.exp(-log_scales)
        plus_in = inv_s * (centered + 1.0 / 255.0)
        min_in = inv_s * (centered - 1.0 / 255.0)
        mid_in = inv_s * centered
        log_cdf_plus = jax.nn.log_sigmoid(plus_in)                 # lowest bin: from -inf
        log_one_minus_cdf_min = jax.nn.log_sigmoid(-min_in)        # highest bin: to +inf
        # bin mass; above the mean use 1 - cdf on both ends, which loses no precision near 1
        cdf_delta = jnp.where(mid_in > 0.0,
                              jax.nn.sigmoid(-min_in) - jax.nn.sigmoid(-plus_in),
                              jax.nn.sigmoid(plus_in) - jax.nn.sigmoid(min_in))
        log_pdf_mid = mid_in - log_scales - 2.0 * jax.nn.softplus(mid_in)
        log_mass = jnp.where(cdf_delta > 1e-5, jnp.log(jnp.maximum(cdf_delta, 1e-12)),
                             log_pdf_mid - math.log(127.5))        # pdf * bin width 2/255
        level = _to_bin(x)[..., None]
        log_probs = jnp.where(level == 0, log_cdf_plus, jnp.where(level == 255, log_one_minus_cdf_min, log_mass))
        per_pixel = jax.nn.logsumexp(jnp.sum(log_probs, axis=-2) + jax.nn.log_softmax(logits, axis=-1), axis=-1)
        return _sum_event(per_pixel, 2)

    def mean(self, params: jax.Array) -> jax.Array:
        """The mixture mean in [0, 1]: [..., H, W, C]. Each component's mean is its logistic's
        location clipped to [-1, 1] (the discretization's edge bins absorb the tails); with
        C = 3 the coupling uses the earlier channels' component means. Exact up to the
        asymmetric mass that the edge bins cut from a component near an edge."""
        channels = self._channels(params.shape[-1])
        logits, means, _, coeffs = self._split(params, channels)
        comp = jnp.clip(means, -1.0, 1.0)
        if coeffs is not None:
            m0 = comp[..., 0, :]
            m1 = jnp.clip(means[..., 1, :] + coeffs[..., 0, :] * m0, -1.0, 1.0)
            m2 = jnp.clip(means[..., 2, :] + coeffs[..., 1, :] * m0 + coeffs[..., 2, :] * m1, -1.0, 1.0)
            comp = jnp.stack([m0, m1, m2], axis=-2)
        weights = jax.nn.softmax(logits, axis=-1)[..., None, :]
        return jnp.clip(0.5 * (jnp.sum(weights * comp, axis=-1) + 1.0), 0.0, 1.0)

    def _channels(self, p: int) -> int:
        k = self.num_mixtures
        if p == 10 * k:
            return 3
        if p % k or (p // k - 1) % 2 or p // k < 3:
            raise ValueError(f"{p} parameter channels do not fit DiscretizedLogisticMixture(num_mixtures={k})")
        return (p // k - 1) // 2

    def sample(self, rng: jax.Array, params: jax.Array) -> jax.Array:
        """A draw of the 8-bit image, as k/255 in [0, 1]: [..., H, W, C]. Channels are drawn in
        order given the component (Gumbel-max), each quantized before it conditions the next."""
        channels = self._channels(params.shape[-1])
        logits, means, log_scales, coeffs = self._split(params, channels)
        rng_k, rng_u = jax.random.split(rng)
        comp = jax.random.categorical(rng_k, logits, axis=-1)                  # [..., H, W]
        pick = lambda a: jnp.take_along_axis(a, comp[..., None, None], axis=-1)[..., 0]  # noqa: E731
        mu, log_s = pick(means), pick(log_scales)                               # [..., H, W, C]
        a = pick(coeffs) if coeffs is not None else None
        u = jax.random.uniform(rng_u, mu.shape, mu.dtype, 1e-5, 1.0 - 1e-5)
        noise = jnp.exp(log_s) * (jnp.log(u) - jnp.log1p(-u))
        quant = lambda v: jnp.clip(jnp.round((v + 1.0) * 127.5), 0.0, 255.0)  # noqa: E731  level 0..255
        if a is None:
            return quant(mu + noise) / 255.0
        x0 = quant(mu[..., 0] + noise[..., 0]) / 127.5 - 1.0
        x1 = quant(mu[..., 1] + a[..., 0] * x0 + noise[..., 1]) / 127.5 - 1.0
        x2 = quant(mu[..., 2] + a[..., 1] * x0 + a[..., 2] * x1 + noise[..., 2]) / 127.5 - 1.0
        return (jnp.stack([x0, x1, x2], axis=-1) + 1.0) / 2.0


class Categorical256(nn.Module):
    """An independent 256-way softmax per sub-pixel, for 8-bit data (x = k/255).

    P = 256 C; the last axis of the parameters is channel-major: logits of channel c are
    params[..., 256 c : 256 (c + 1)]. log_prob takes the level k = round(255 x).
    discrete = True: log_prob is a log-probability of the 8-bit data.
    """

    discrete = True
    NUM_LEVELS = 256

    def __call__(self, params: jax.Array, x: jax.Array) -> jax.Array:
        return self.log_prob(params, x)

    def param_channels(self, channels: int) -> int:
        return self.NUM_LEVELS * channels

    def _logits(self, params: jax.Array) -> jax.Array:
        if params.shape[-1] % self.NUM_LEVELS:
            raise ValueError(f"Categorical256 needs 256 * C parameter channels, got {params.shape[-1]}")
        return params.reshape(*params.shape[:-1], params.shape[-1] // self.NUM_LEVELS, self.NUM_LEVELS)

    def log_prob(self, params: jax.Array, x: jax.Array) -> jax.Array:
        """log P(x) in nats, summed over sub-pixels: params [..., batch, H, W, 256 C], x [batch, H, W, C]
        -> [..., batch]."""
        logp = jax.nn.log_softmax(self._logits(params), axis=-1)  # [..., batch, H, W, C, 256]
        if logp.shape[-2] != x.shape[-1]:
            raise ValueError(f"Categorical256: parameters for {logp.shape[-2]} channel(s), data has {x.shape[-1]}")
        shape = jnp.broadcast_shapes(logp.shape[:-1], x.shape)
        logp = jnp.broadcast_to(logp, (*shape, self.NUM_LEVELS))
        level = jnp.broadcast_to(_to_bin(x), shape)[..., None]
        return _sum_event(jnp.take_along_axis(logp, level, axis=-1)[..., 0], 3)

    def mean(self, params: jax.Array) -> jax.Array:
        """Expected intensity / 255: [..., H, W, C]."""
        probs = jax.nn.softmax(self._logits(params), axis=-1)
        return probs @ (jnp.arange(self.NUM_LEVELS, dtype=probs.dtype) / 255.0)

    def sample(self, rng: jax.Array, params: jax.Array) -> jax.Array:
        """A draw k/255: [..., H, W, C]."""
        return jax.random.categorical(rng, self._logits(params), axis=-1).astype(params.dtype) / 255.0
