"""Masked autoregressive flows over the latent space: MAF (Papamakarios et al. 2017, sec. 3) and IAF
(Kingma et al. 2016, eq. 10) as density estimators, each a stack of MADEs (Germain et al. 2015).

Both use one affine autoregressive layer type, x_i = u_i exp(a_i) + m_i with (m_i, a_i) a function
of the first i-1 coordinates, and differ in which side the conditioning reads:
  maf: (m, a) = MADE(x): the density log p(x) = log N(u) - sum_i a_i(x) in one pass; sampling
       inverts coordinate by coordinate (d passes);
  iaf: (m, a) = MADE(u): sampling in one pass; the density of a given x inverts d passes.
Layers alternate the coordinate order (reversal). The latents are standardized first (the
Jacobian's -sum log std is included). Left out: MAF's batch-norm layers between MADEs and the
Gaussian-mixture base of MoG-MADE; a soft clamp |a| <= 5 (5 tanh(a / 5)) keeps scales finite.
distrax has no masked autoregressive bijector, so MADE is written here as a linen module.
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vae.samplers.base import LatentSampler, SamplerError, check_fit_on, positive, register_sampler
from vae.samplers.fitting import fit_by_gradient, likelihood_report

LOG_SCALE_BOUND = 5.0


def made_masks(dim: int, hidden: tuple[int, ...]) -> list[np.ndarray]:
    """The connectivity masks [in, out] of a MADE over `dim` inputs in their natural order: hidden
    unit k of every layer has degree 1 + k mod (dim - 1) (1 when dim == 1); a hidden unit sees
    inputs of degree <= its own, and output i sees hidden units of degree < i, so output i
    depends on inputs 1..i-1 only (Germain et al. 2015, eq. 12-13)."""
    degrees = [np.arange(1, dim + 1)]
    for h in hidden:
        degrees.append(1 + np.arange(h) % max(dim - 1, 1))
    masks = [(degrees[i + 1][None, :] >= degrees[i][:, None]).astype(np.float32) for i in range(len(hidden))]
    masks.append((degrees[0][None, :] > degrees[-1][:, None]).astype(np.float32))
    return masks


class MADE(nn.Module):
    """x [n, d] -> (shift [n, d], log_scale [n, d]), output i a function of x_1..x_{i-1}. The output
    layer starts at zero, so a fresh flow is the identity."""

    hidden: tuple[int, ...] = (128, 128)

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        d = x.shape[-1]
        masks = made_masks(d, self.hidden)
        h = x
        for i, width in enumerate(self.hidden):
            kernel = self.param(f"kernel_{i}", nn.initializers.lecun_normal(), (h.shape[-1], width))
            bias = self.param(f"bias_{i}", nn.initializers.zeros_init(), (width,))
            h = nn.relu(h @ (kernel * masks[i]) + bias)
        out = []
        for name in ("shift", "log_scale"):
            kernel = self.param(f"{name}_kernel", nn.initializers.zeros_init(), (h.shape[-1], d))
            bias = self.param(f"{name}_bias", nn.initializers.zeros_init(), (d,))
            out.append(h @ (kernel * masks[-1]) + bias)
        shift, log_scale = out
        return shift, LOG_SCALE_BOUND * jnp.tanh(log_scale / LOG_SCALE_BOUND)


def _invert(made_fn, target: jax.Array, solve) -> jax.Array:
    """The fixed point of y = solve(target, made_fn(y)), reached exactly after d sweeps because
    coordinate i only needs the first i-1 (each sweep fixes one more)."""
    return jax.lax.fori_loop(0, target.shape[-1], lambda _, y: solve(target, *made_fn(y)), jnp.zeros_like(target))


@dataclasses.dataclass(frozen=True)
class _AutoregressiveFlow(LatentSampler):
    """Shared by maf and iaf: options, fitting by maximum likelihood (with early stopping on the
    held-out share every check_every steps; 0: off), the standardization."""

    layers: int = 5
    hidden: tuple[int, ...] = (128, 128)
    steps: int = 3000
    batch_size: int = 256
    learning_rate: float = 1e-3
    held_out: float = 0.1
    check_every: int = 100
    fit_on: str = "mean"

    direction = "maf"

    def __post_init__(self):
        check_fit_on(self.fit_on)
        for name in ("layers", "steps", "batch_size", "learning_rate"):
            positive(name, getattr(self, name))
        if not self.hidden or min(self.hidden) < 1:
            raise SamplerError(f"hidden={self.hidden} must name at least one layer width >= 1")

    def _made(self) -> MADE:
        return MADE(tuple(self.hidden))

    def noise_to_data(self, params: dict, u: jax.Array) -> jax.Array:
        """u [n, d] (standard normal) -> x [n, d] in standardized coordinates."""
        made = self._made()
        x = u
        for i in reversed(range(self.layers)):
            x = x[..., ::-1]
            fn = lambda v, p=params[str(i)]: made.apply({"params": p}, v)  # noqa: E731
            if self.direction == "iaf":
                shift, log_scale = fn(x)
                x = x * jnp.exp(log_scale) + shift
            else:
                x = _invert(fn, x, lambda t, shift, log_scale: t * jnp.exp(log_scale) + shift)
        return x

    def data_to_noise(self, params: dict, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """x [n, d] standardized -> (u [n, d], log |det du/dx| [n])."""
        made = self._made()
        log_det = jnp.zeros(x.shape[:-1], x.dtype)
        for i in range(self.layers):
            fn = lambda v, p=params[str(i)]: made.apply({"params": p}, v)  # noqa: E731
            if self.direction == "iaf":
                x = _invert(fn, x, lambda t, shift, log_scale: (t - shift) * jnp.exp(-log_scale))
                _, log_scale = fn(x)
            else:
                shift, log_scale = fn(x)
                x = (x - shift) * jnp.exp(-log_scale)
            log_det = log_det - jnp.sum(log_scale, axis=-1)
            x = x[..., ::-1]
        return x, log_det

    def _log_prob_standardized(self, params: dict, x: jax.Array) -> jax.Array:
        u, log_det = self.data_to_noise(params, x)
        return -0.5 * jnp.sum(u ** 2, axis=-1) - 0.5 * u.shape[-1] * math.log(2 * math.pi) + log_det

    def fit(self, data, key):
        data = np.asarray(data, np.float32)
        if data.ndim != 2:
            raise SamplerError(f"{self.name} fits [N, d] latents, got shape {data.shape}")
        mean, std = data.mean(0), data.std(0) + 1e-6
        k_init, k_fit = jax.random.split(key)
        x = (data - mean) / std
        params = {str(i): self._made().init(k, x[:2])["params"]
                  for i, k in enumerate(jax.random.split(k_init, self.layers))}
        params, report = fit_by_gradient(lambda p, b, _: -self._log_prob_standardized(p, b), params, x, k_fit,
                                         steps=self.steps, batch_size=self.batch_size,
                                         learning_rate=self.learning_rate, held_out=self.held_out,
                                         check_every=self.check_every)
        shift = float(np.sum(np.log(std)))   # the standardization's Jacobian, in nats per row
        return {"mean": mean, "std": std, "made": params}, likelihood_report(report, shift=shift)

    def sample(self, state, key, num, temperature=1.0):
        u = temperature * jax.random.normal(key, (num, state["mean"].shape[-1]))
        return self.noise_to_data(state["made"], u) * state["std"] + state["mean"]

    def log_prob(self, state, z):
        x = (z - state["mean"]) / state["std"]
        return self._log_prob_standardized(state["made"], x) - jnp.sum(jnp.log(state["std"]))


@register_sampler
@dataclasses.dataclass(frozen=True)
class MAFSampler(_AutoregressiveFlow):
    """Masked autoregressive flow (Papamakarios et al. 2017): 5 MADEs of two hidden layers, fitted by
    maximum likelihood to the posterior means (one-pass density, d-pass sampling)."""

    name = "maf"
    direction = "maf"
    summary = "masked autoregressive flow fitted by maximum likelihood"
    paper = "Papamakarios et al. 2017, Masked Autoregressive Flow for Density Estimation, sec. 3"


@register_sampler
@dataclasses.dataclass(frozen=True)
class IAFSampler(_AutoregressiveFlow):
    """Inverse autoregressive flow (Kingma et al. 2016, eq. 10) as a density over the latents: the same
    MADEs reading the noise side (one-pass sampling, d-pass density, so fitting costs d times
    more per step than maf)."""

    name = "iaf"
    direction = "iaf"
    summary = "inverse autoregressive flow fitted by maximum likelihood"
    paper = "Kingma et al. 2016, Improved Variational Inference with Inverse Autoregressive Flow, eq. 10"
