"""Samplers for the non-Euclidean latents: a mixture of von Mises-Fisher distributions on the
sphere (`svae`), and a Gaussian mixture in the tangent space at the origin of the Poincaré ball,
pushed through the exponential map (`pvae`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vae.models import PoincareVAE, SphericalVAE, VonMisesFisher
from vae.models.poincare import exp_map, log_map
from vae.samplers.base import LatentSampler, SamplerError, check_fit_on, positive, register_sampler
from vae.samplers.gaussian import GMMSampler

MAX_KAPPA = 1e5


def _normalize(x: jax.Array) -> jax.Array:
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _kappa_estimate(r_bar: jax.Array, dim: int) -> jax.Array:
    """Banerjee et al. 2005, eq. 4.4: kappa ~ r (p - r^2) / (1 - r^2) from the mean resultant r."""
    r = jnp.clip(r_bar, 1e-6, 1 - 1e-6)
    return jnp.clip(r * (dim - r ** 2) / (1 - r ** 2), 1e-3, MAX_KAPPA)


def _component_log_probs(x: jax.Array, state: dict) -> jax.Array:
    """log alpha_k + log vMF(x; mu_k, kappa_k): x [n, m] -> [n, K]."""
    vmf = VonMisesFisher(state["mu"], state["kappa"])
    return state["log_weights"] + vmf.log_normalizer() + x @ state["mu"].T * state["kappa"]


@register_sampler
@dataclasses.dataclass(frozen=True)
class HypersphereSampler(LatentSampler):
    """A mixture of `components` vMFs on S^{m-1} fitted by soft EM (Banerjee et al. 2005, the
    soft-movMF algorithm, with their kappa approximation in the M-step) to the posterior mean
    directions of an `svae` model. temperature divides each kappa (0 would give the means)."""

    name = "hypersphere"
    summary = "mixture of von Mises-Fisher distributions on the sphere (svae)"
    paper = "Banerjee et al. 2005, Clustering on the Unit Hypersphere using von Mises-Fisher Distributions, sec. 4"

    components: int = 10
    max_iter: int = 100
    fit_on: str = "mean"

    def __post_init__(self):
        positive("components", self.components)
        positive("max_iter", self.max_iter)
        check_fit_on(self.fit_on)

    def check_model(self, model: Any) -> None:
        if not isinstance(model, SphericalVAE):
            raise SamplerError(f"sampler 'hypersphere' needs latents on the sphere (model.name=svae); this model is "
                               f"{type(model).__name__}")

    def fit(self, data, key):
        x = _normalize(jnp.asarray(data, jnp.float32))
        n, dim = x.shape
        if n < self.components:
            raise SamplerError(f"components={self.components} is more than the {n} latents to fit")
        start = jax.random.choice(key, n, (self.components,), replace=False)
        state = {"log_weights": jnp.full((self.components,), -math.log(self.components)), "mu": x[start],
                 "kappa": jnp.full((self.components,), 10.0)}

        def em(_, s):
            resp = jax.nn.softmax(_component_log_probs(x, s), axis=-1)                   # [n, K]
            total = jnp.sum(resp, axis=0) + 1e-12
            sums = resp.T @ x                                                             # [K, m]
            norm = jnp.linalg.norm(sums, axis=-1)
            return {"log_weights": jnp.log(total / n), "mu": sums / norm[:, None],
                    "kappa": _kappa_estimate(norm / total, dim)}

        state = jax.jit(lambda s: jax.lax.fori_loop(0, self.max_iter, em, s))(state)
        log_lik = float(jnp.mean(jax.nn.logsumexp(_component_log_probs(x, state), axis=-1)))
        return {k: np.asarray(v) for k, v in state.items()}, {"train_log_prob": log_lik, "em_iterations": self.max_iter}

    def sample(self, state, key, num, temperature=1.0):
        k_comp, k_vmf = jax.random.split(key)
        comp = jax.random.categorical(k_comp, state["log_weights"], shape=(num,))
        kappa = state["kappa"][comp] / jnp.maximum(temperature, 1e-6)
        return VonMisesFisher(state["mu"][comp], jnp.minimum(kappa, MAX_KAPPA)).sample(k_vmf)

    def log_prob(self, state, z):
        """Density on S^{m-1} with respect to its surface measure: [n]."""
        return jax.nn.logsumexp(_component_log_probs(z, state), axis=-1)


@register_sampler
@dataclasses.dataclass(frozen=True)
class PoincareSampler(LatentSampler):
    """A Gaussian mixture fitted to log_0(z), the posterior means mapped to the tangent space at the
    ball's origin, sampled as exp_0(v): a mixture of wrapped normals at the origin (Mathieu et al.
    2019, sec. 3, the wrapped normal's construction) for a `pvae` model. The curvature is the
    model's. temperature scales the tangent components' standard deviations."""

    name = "poincare"
    summary = "Gaussian mixture in the tangent space at the origin of the Poincaré ball (pvae)"
    paper = "Mathieu et al. 2019, Continuous Hierarchical Representations with Poincaré VAEs, sec. 3"

    components: int = 10
    max_iter: int = 100
    fit_on: str = "mean"
    curvature: float = 0.0

    def __post_init__(self):
        positive("components", self.components)
        check_fit_on(self.fit_on)

    def check_model(self, model: Any) -> None:
        if not isinstance(model, PoincareVAE):
            raise SamplerError(f"sampler 'poincare' needs latents on the Poincaré ball (model.name=pvae); this "
                               f"model is {type(model).__name__}")

    def bind(self, model: Any) -> "PoincareSampler":
        self.check_model(model)
        return dataclasses.replace(self, curvature=float(model.curvature))

    def _tangent(self) -> GMMSampler:
        return GMMSampler(self.components, max_iter=self.max_iter, held_out=0.0)

    def _c(self) -> float:
        if not self.curvature > 0:
            raise SamplerError("sampler 'poincare' has no curvature: bind it to its model first")
        return self.curvature

    def fit(self, data, key):
        z = jnp.asarray(data, jnp.float32)
        v = np.asarray(log_map(jnp.zeros_like(z), z, self._c()))
        return self._tangent().fit(v, key)

    def sample(self, state, key, num, temperature=1.0):
        v = self._tangent().sample(state, key, num, temperature)
        return exp_map(jnp.zeros_like(v), v, self._c())

    def log_prob(self, state, z):
        """Density on the ball with respect to the Euclidean (coordinate) measure: the tangent
        mixture's density at log_0(z) plus log |det d log_0 / dz|: [n]."""
        log0 = lambda p: log_map(jnp.zeros_like(p), p, self._c())  # noqa: E731
        _, log_det = jnp.linalg.slogdet(jax.vmap(jax.jacfwd(log0))(z))
        return self._tangent().log_prob(state, log0(z)) + log_det
