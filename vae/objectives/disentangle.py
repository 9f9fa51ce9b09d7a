"""Objectives that add a disentanglement penalty to the ELBO: beta-TCVAE, FactorVAE, DIP-VAE."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from vae.models.distributions import LOG_2PI
from vae.objectives.base import Objective, elbo_metrics, forward


def _log_q_matrix(z: jax.Array, mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """log q(z_i[d] | x_j) for every pair and dimension: z, mean, log_var [M, d] -> [M, M, d]."""
    zi = z[:, None, :]
    return -0.5 * (LOG_2PI + log_var[None] + (zi - mean[None]) ** 2 / jnp.exp(log_var[None]))


def _stratified_log_weights(batch_size: int, dataset_size: int) -> jax.Array:
    """log of the minibatch-stratified-sampling weights of Chen et al. (2018, appendix C.2):
    [M, M], row i weighting the posteriors q(z_i | x_j) of the batch."""
    m = batch_size - 1
    n = dataset_size
    w = jnp.full((batch_size, batch_size), 1.0 / m)
    idx = jnp.arange(batch_size)
    w = w.at[idx, idx].set(1.0 / n)
    strat = (n - m) / (n * m)
    w = w.at[idx[:-1], idx[:-1] + 1].set(strat)
    w = w.at[m - 1, 0].set(strat)
    return jnp.log(w)


def tc_decomposition(z: jax.Array, mean: jax.Array, log_var: jax.Array, dataset_size: int,
                     estimator: str = "mws") -> dict[str, jax.Array]:
    """Minibatch estimates of log q(z) and sum_j log q(z_j) for each sample (Chen et al. 2018,
    section 3, eq. 4 and appendix C), with z, mean, log_var [M, d] from one batch.

    estimator 'mws' (minibatch weighted sampling): log q(z_i) ~ logsumexp_j log q(z_i|x_j) - log(N M);
    'mss' (minibatch stratified sampling) uses the importance weights of appendix C.2.
    Returns per-sample [M] arrays: log_qz, log_prod_qzj, log_qz_x (the sample's own posterior).
    """
    mat = _log_q_matrix(z, mean, log_var)                                     # [M, M, d]
    m = z.shape[0]
    if estimator == "mws":
        log_w = jnp.full((m, m), -math.log(dataset_size * m))
    elif estimator == "mss":
        log_w = _stratified_log_weights(m, dataset_size)
    else:
        raise ValueError(f"TC estimator {estimator!r} is not 'mws' or 'mss'")
    log_qz = jax.nn.logsumexp(jnp.sum(mat, -1) + log_w, axis=1)
    log_prod_qzj = jnp.sum(jax.nn.logsumexp(mat + log_w[..., None], axis=1), axis=-1)
    log_qz_x = jnp.sum(jnp.diagonal(mat, axis1=0, axis2=1).T, axis=-1)
    return {"log_qz": log_qz, "log_prod_qzj": log_prod_qzj, "log_qz_x": log_qz_x}


@dataclasses.dataclass(frozen=True)
class BetaTCVAE(Objective):
    """beta-TCVAE (Chen et al. 2018, eq. 4 with alpha = gamma = 1): the ELBO with the total
    correlation term reweighted,

        loss = E[-log p(x|z)] + KL(q(z|x) || p(z)) + (beta - 1) * TC,
        TC = E_q(z)[log q(z) - sum_j log q(z_j)],

    TC estimated on each minibatch with minibatch-weighted ('mws') or stratified ('mss')
    sampling; the KL is the closed form. At beta = 1 this is the ELBO. The paper's dSprites
    setting is beta = 6. Also logs the decomposition: mi (index-code MI), tc, dwkl.
    """

    beta: float = 6.0
    dataset_size: int = 60_000
    estimator: str = "mws"

    def compute(self, model, params, batch, rng, step, extra):
        out = forward(model, params, batch, rng)
        recon = -out.log_px_z
        d = tc_decomposition(out.z, out.posterior.mean, out.posterior.log_var, self.dataset_size, self.estimator)
        tc = d["log_qz"] - d["log_prod_qzj"]
        log_pz = jnp.sum(-0.5 * (LOG_2PI + out.z**2), axis=-1)
        loss_ex = recon + out.kl + (self.beta - 1.0) * tc
        metrics = elbo_metrics(batch["image"], recon, out.kl, loss_ex, model)
        metrics.update(tc=tc, mi=d["log_qz_x"] - d["log_qz"], dwkl=d["log_prod_qzj"] - log_pz)
        return jnp.mean(loss_ex), metrics, None


def dip_covariance(mean: jax.Array, log_var: jax.Array, kind: str) -> jax.Array:
    """Covariance of the aggregate posterior used by DIP-VAE (Kumar et al. 2018):
    'i': Cov_x[mu(x)] (eq. 6); 'ii': E_x[Sigma(x)] + Cov_x[mu(x)] (eq. 7). [M, d] -> [d, d]."""
    centred = mean - jnp.mean(mean, axis=0, keepdims=True)
    cov = centred.T @ centred / mean.shape[0]
    if kind == "ii":
        cov = cov + jnp.diag(jnp.mean(jnp.exp(log_var), axis=0))
    return cov


@dataclasses.dataclass(frozen=True)
class DIPVAE(Objective):
    """DIP-VAE (Kumar et al. 2018, eq. 6-7): the ELBO plus a moment-matching penalty pushing
    the aggregate posterior's covariance to the identity,

        lambda_od * sum_{i != j} Cov_ij^2 + lambda_d * sum_i (Cov_ii - 1)^2,

    with Cov from `dip_covariance` on the minibatch. Defaults follow disentanglement_lib:
    DIP-VAE-I lambda_od = 10, lambda_d = 10 * lambda_od; DIP-VAE-II lambda_d = lambda_od = 10.
    """

    kind: str = "i"
    lambda_od: float = 10.0
    lambda_d: float = 100.0

    def compute(self, model, params, batch, rng, step, extra):
        out = forward(model, params, batch, rng)
        recon = -out.log_px_z
        cov = dip_covariance(out.posterior.mean, out.posterior.log_var, self.kind)
        diag = jnp.diagonal(cov)
        off = cov - jnp.diag(diag)
        penalty = self.lambda_od * jnp.sum(off**2) + self.lambda_d * jnp.sum((diag - 1.0) ** 2)
        loss_ex = recon + out.kl
        loss = jnp.mean(loss_ex) + penalty
        metrics = elbo_metrics(batch["image"], recon, out.kl, loss_ex + penalty, model)
        metrics["dip_penalty"] = penalty
        return loss, metrics, None


class Discriminator(nn.Module):
    """FactorVAE's discriminator (Kim & Mnih 2018, appendix): 6 dense layers of 1000 units with
    LeakyReLU(0.2), two output logits (q(z) vs the product of its marginals)."""

    hidden: int = 1000
    layers: int = 6

    @nn.compact
    def __call__(self, z):
        h = z
        for _ in range(self.layers):
            h = nn.leaky_relu(nn.Dense(self.hidden)(h), 0.2)
        return nn.Dense(2)(h)


def permute_dims(rng: jax.Array, z: jax.Array) -> jax.Array:
    """Samples from the product of marginals: each latent dimension shuffled independently
    across the batch (Kim & Mnih 2018, algorithm 1). z: [M, d]."""
    keys = jax.random.split(rng, z.shape[1])
    cols = [jax.random.permutation(k, z[:, j]) for j, k in enumerate(keys)]
    return jnp.stack(cols, axis=1)


@dataclasses.dataclass(frozen=True)
class FactorVAE(Objective):
    """FactorVAE (Kim & Mnih 2018, eq. 2): the ELBO plus gamma times a density-ratio estimate
    of the total correlation,

        loss = E[-log p(x|z)] + KL(q(z|x) || p(z)) + gamma * E_q(z)[log D(z) - log(1 - D(z))],

    where the discriminator D tells samples of q(z) from samples with each dimension permuted
    across the batch. D has its own parameters and optax optimizer (Adam, lr 1e-4,
    b1 = 0.5, b2 = 0.9, as in the paper), kept in the train state's `extra` and updated in the
    same jitted step after the VAE update, on the same batch's (detached) codes.
    The paper's dSprites runs use gamma around 35 (it sweeps 10..100).
    """

    gamma: float = 35.0
    disc_learning_rate: float = 1e-4
    disc_hidden: int = 1000
    disc_layers: int = 6

    @property
    def discriminator(self) -> Discriminator:
        return Discriminator(self.disc_hidden, self.disc_layers)

    @property
    def disc_optimizer(self) -> optax.GradientTransformation:
        return optax.adam(self.disc_learning_rate, b1=0.5, b2=0.9)

    def init_extra(self, model, params, rng, image_shape) -> Any:
        disc_params = self.discriminator.init(rng, jnp.zeros((1, model.latent_dim)))["params"]
        return {"disc_params": disc_params, "disc_opt_state": self.disc_optimizer.init(disc_params)}

    def compute(self, model, params, batch, rng, step, extra):
        out = forward(model, params, batch, rng)
        recon = -out.log_px_z
        logits = self.discriminator.apply({"params": jax.lax.stop_gradient(extra["disc_params"])}, out.z)
        tc = logits[:, 0] - logits[:, 1]   # log D(z) - log(1 - D(z)) with D = softmax(logits)[0]
        loss_ex = recon + out.kl + self.gamma * tc
        metrics = elbo_metrics(batch["image"], recon, out.kl, loss_ex, model)
        metrics["tc"] = tc
        return jnp.mean(loss_ex), metrics, {"z": out.z}

    def update_extra(self, model, params, extra, aux, batch, rng, step):
        z = jax.lax.stop_gradient(aux["z"])
        z_perm = permute_dims(rng, z)
        disc = self.discriminator

        def disc_loss(dp):
            real = disc.apply({"params": dp}, z)
            perm = disc.apply({"params": dp}, z_perm)
            # class 0: a draw of q(z); class 1: a draw of prod_j q(z_j)
            return 0.5 * (jnp.mean(-jax.nn.log_softmax(real)[:, 0]) + jnp.mean(-jax.nn.log_softmax(perm)[:, 1]))

        loss, grads = jax.value_and_grad(disc_loss)(extra["disc_params"])
        updates, opt_state = self.disc_optimizer.update(grads, extra["disc_opt_state"], extra["disc_params"])
        new = {"disc_params": optax.apply_updates(extra["disc_params"], updates), "disc_opt_state": opt_state}
        return params, new, {"disc_loss": loss}
