"""Samplers of Gaussian form: the model's own prior ('normal', 'vamp') and a Gaussian mixture
fitted to the aggregate posterior ('gmm', Ghosh et al. 2020, sec. 4)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.mixture import GaussianMixture

from vae.samplers.base import LatentSampler, SamplerError, check_fit_on, positive, register_sampler
from vae.samplers.fitting import split_held_out


@register_sampler
@dataclasses.dataclass(frozen=True)
class NormalSampler(LatentSampler):
    """z ~ temperature * p(z), the model's own prior: what sampling does without a fitted sampler."""

    name = "normal"
    uses_model = True
    summary = "the model's own prior p(z) (no fitting)"


@register_sampler
@dataclasses.dataclass(frozen=True)
class VampSampler(LatentSampler):
    """The VampPrior's mixture (Tomczak & Welling 2018, eq. 9): p(z) = (1/K) sum_k q(z | u_k) over the
    learned pseudo-inputs u_k, which is the prior of a model trained with model.prior=vamp; for
    other models it is refused (their prior is not a VampPrior)."""

    name = "vamp"
    uses_model = True
    summary = "the VampPrior's mixture of posteriors at the pseudo-inputs (model.prior=vamp)"
    paper = "Tomczak & Welling 2018, VAE with a VampPrior, eq. 9"

    def check_model(self, model: Any) -> None:
        prior = getattr(model, "prior", None)
        if not getattr(prior, "uses_encoder", False):
            raise SamplerError(f"sampler 'vamp' needs a model trained with model.prior=vamp; this one's prior is "
                               f"{type(prior).__name__ if prior is not None else 'not a separate module'}")


def _gaussian_log_prob(z: jax.Array, mean: jax.Array, chol: jax.Array) -> jax.Array:
    """log N(z; mean, L L^T): z [n, d], mean [d], chol [d, d] lower-triangular -> [n]."""
    d = mean.shape[-1]
    white = jax.scipy.linalg.solve_triangular(chol, (z - mean).T, lower=True)          # [d, n]
    log_det = jnp.sum(jnp.log(jnp.abs(jnp.diagonal(chol))))
    return -0.5 * jnp.sum(white ** 2, axis=0) - log_det - 0.5 * d * math.log(2 * math.pi)


@register_sampler
@dataclasses.dataclass(frozen=True)
class GMMSampler(LatentSampler):
    """A Gaussian mixture fitted by EM (scikit-learn's GaussianMixture) to the posterior means of the
    training split, as in Ghosh et al. 2020 (RAE, sec. 4: 10 components, full covariances, the
    paper's and pythae's default). temperature scales each component's standard deviations."""

    name = "gmm"
    summary = "Gaussian mixture fitted by EM to the aggregate posterior"
    paper = "Ghosh et al. 2020, From Variational to Deterministic Autoencoders, sec. 4"

    components: int = 10
    covariance: str = "full"
    max_iter: int = 100
    reg_covar: float = 1e-6
    fit_on: str = "mean"
    held_out: float = 0.1

    def __post_init__(self):
        check_fit_on(self.fit_on)
        positive("components", self.components)
        positive("max_iter", self.max_iter)
        if self.covariance not in ("full", "diag"):
            raise SamplerError(f"covariance={self.covariance!r} is not allowed; choose full or diag")

    def fit(self, data: np.ndarray, key: jax.Array) -> tuple[dict, dict]:
        k_split, k_fit = jax.random.split(key)
        data, val = split_held_out(np.asarray(data, np.float64), k_split, self.held_out)
        if data.shape[0] < self.components:
            raise SamplerError(f"components={self.components} is more than the {data.shape[0]} latents to fit")
        seed = int(jax.random.randint(k_fit, (), 0, 2 ** 31 - 1))
        gmm = GaussianMixture(self.components, covariance_type=self.covariance, max_iter=self.max_iter,
                              reg_covar=self.reg_covar, random_state=seed).fit(data)
        cov = gmm.covariances_ if self.covariance == "full" else np.stack([np.diag(c) for c in gmm.covariances_])
        state = {"log_weights": np.log(gmm.weights_).astype(np.float32), "means": gmm.means_.astype(np.float32),
                 "chol": np.linalg.cholesky(cov).astype(np.float32)}
        report = {"train_log_prob": float(gmm.score(data)),
                  **({"held_out_log_prob": float(gmm.score(val))} if len(val) else {}),
                  "converged": bool(gmm.converged_), "em_iterations": int(gmm.n_iter_),
                  "train_rows": int(data.shape[0]), "held_out_rows": int(val.shape[0])}
        return state, report

    def sample(self, state, key, num, temperature=1.0):
        k_comp, k_eps = jax.random.split(key)
        comp = jax.random.categorical(k_comp, state["log_weights"], shape=(num,))
        eps = jax.random.normal(k_eps, (num, state["means"].shape[-1]))
        return state["means"][comp] + temperature * jnp.einsum("nij,nj->ni", state["chol"][comp], eps)

    def log_prob(self, state, z):
        per = jax.vmap(lambda m, c: _gaussian_log_prob(z, m, c))(state["means"], state["chol"])   # [K, n]
        return jax.nn.logsumexp(per + state["log_weights"][:, None], axis=0)
