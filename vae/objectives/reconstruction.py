"""VAE objectives that change the reconstruction term or add a divergence on the aggregate
posterior: InfoVAE (Zhao et al. 2019), log-cosh (Chen et al. 2019), MS-SSIM (Snell et al. 2017)
and feature-perceptual (DFC-VAE, Hou et al. 2017) reconstruction.

All keep a Gaussian posterior and the model's likelihood, so the reported `elbo` is still a
bound on log p(x) under that likelihood (what the decoder defines), while the loss the optimizer
minimizes uses the variant's reconstruction cost. The perceptual costs are summed over pixels
(or feature elements), so that they are on the scale of a per-pixel log-likelihood summed over
the image, next to a KL in nats.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp

from vae.objectives.base import Objective, elbo_metrics, forward
from vae.objectives.divergences import mmd, prior_draws
from vae.objectives.similarity import log_cosh, ms_ssim


@dataclasses.dataclass(frozen=True)
class InfoVAE(Objective):
    """InfoVAE with the MMD divergence (Zhao et al. 2019, eq. 6 in its alpha/lambda form):

        loss = E[-log p(x|z)] + (1 - alpha) KL(q(z|x) || p(z)) + (alpha + lambda - 1) MMD^2(q(z), p(z))

    q(z) is represented by the batch's posterior draws and p(z) = N(0, I) by as many prior
    draws. Defaults alpha = 0, lambda = 1000 (this toolkit's choice, not a value checked against
    the paper: the ELBO plus an MMD term on the ELBO's scale; alpha = 1 drops the KL, the pure
    MMD-VAE); kernel imq or rbf with C = 2 d (see `divergences`).
    """

    alpha: float = 0.0
    lam: float = 1000.0
    kernel: str = "rbf"

    def compute(self, model, params, batch, rng, step, extra):
        model_rng, prior_rng = jax.random.split(rng)
        out = forward(model, params, batch, model_rng)
        recon = -out.log_px_z
        penalty = mmd(out.z, prior_draws(prior_rng, out.z), self.kernel)
        loss_ex = recon + (1.0 - self.alpha) * out.kl + (self.alpha + self.lam - 1.0) * penalty
        metrics = elbo_metrics(batch["image"], recon, out.kl, loss_ex, model)
        metrics["mmd"] = penalty
        return jnp.mean(loss_ex), metrics, None


@dataclasses.dataclass(frozen=True)
class PerceptualVAE(Objective):
    """A VAE whose reconstruction term is a perceptual cost between x and the decoder's mean:

        loss = cost(x, E[p(x | z)]) + beta * KL(q(z|x) || p(z))

    cost: `logcosh` (Chen et al. 2019: sum_pixels 1/a log cosh(a (x - x_hat)), a = `logcosh_a`),
    `msssim` (Snell et al. 2017: num_pixels * (1 - MS-SSIM(x, x_hat)), see `similarity.ms_ssim`),
    or `features` (Hou et al. 2017, DFC-VAE: `feature_weight` * sum over layers l of
    1/2 ||phi_l(x) - phi_l(x_hat)||^2, with phi given by `feature_fn(feature_params, x)` ->
    list of arrays [batch, ...]; feature_params, from feature_init(rng, image_shape), live in the
    train state's `extra`, frozen). trained_features='classifier': the run replaces them with
    the dataset classifier's trained conv params before the first step (`vae.run`).
    """

    cost: str = "logcosh"
    beta: float = 1.0
    logcosh_a: float = 10.0
    ssim_scales: int | None = None
    feature_weight: float = 0.5
    feature_fn: Callable[[Any, jax.Array], list] | None = None
    feature_init: Callable[[jax.Array, tuple[int, ...]], Any] | None = None
    trained_features: str | None = None

    per_example = True

    def init_extra(self, model, params, rng, image_shape):
        if self.cost != "features":
            return {}
        if self.feature_fn is None:
            raise ValueError("the feature-perceptual cost needs feature_fn(feature_params, x) -> list of features")
        return {"feature_params": self.feature_init(rng, tuple(image_shape)) if self.feature_init else {}}

    def reconstruction_cost(self, x: jax.Array, x_hat: jax.Array, extra: Any) -> jax.Array:
        """cost(x, x_hat): [batch], for x, x_hat [batch, H, W, C] in [0, 1]."""
        if self.cost == "logcosh":
            return jnp.sum(log_cosh(x - x_hat, self.logcosh_a), axis=(1, 2, 3))
        if self.cost == "msssim":
            return math.prod(x.shape[1:]) * (1.0 - ms_ssim(x, x_hat, num_scales=self.ssim_scales))
        if self.cost == "features":
            fp = jax.lax.stop_gradient(extra["feature_params"])
            phi_x, phi_hat = self.feature_fn(fp, x), self.feature_fn(fp, x_hat)
            per_layer = [0.5 * jnp.sum((jax.lax.stop_gradient(a) - b) ** 2, axis=tuple(range(1, a.ndim)))
                         for a, b in zip(phi_x, phi_hat)]
            return self.feature_weight * sum(per_layer)
        raise ValueError(f"cost={self.cost!r} is not allowed; choose 'logcosh', 'msssim' or 'features'")

    def compute(self, model, params, batch, rng, step, extra):
        x = batch["image"]
        out = forward(model, params, batch, rng)
        cost = self.reconstruction_cost(x, model.likelihood.mean(out.decoded), extra)
        loss_ex = cost + self.beta * out.kl
        metrics = elbo_metrics(x, -out.log_px_z, out.kl, loss_ex, model)
        metrics["perceptual_cost"] = cost
        return jnp.mean(loss_ex), metrics, None
