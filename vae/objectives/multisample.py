"""The multi-sample bounds of Rainforth et al. (2018), "Tighter Variational Bounds are Not
Necessarily Better", sec. 4: MIWAE, CIWAE and PIWAE, beside IWAE (`vae.objectives.iwae`).

All three draw M x K samples z_{m,k} ~ q(z|x) and use the log weights
log w_{m,k} = log p(x, z_{m,k}) - log q(z_{m,k}|x) of `model.log_importance_weights`.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from vae.objectives.base import Objective, elbo_metrics, forward
from vae.objectives.iwae import _split_params


def iwae_bound(log_w: jax.Array) -> jax.Array:
    """log (1/K) sum_k w_k. log_w: [K, batch] -> [batch] (Burda et al. 2016, eq. 8)."""
    return jax.nn.logsumexp(log_w, axis=0) - math.log(log_w.shape[0])


def miwae_bound(log_w: jax.Array, outer: int) -> jax.Array:
    """ELBO_{M,K} = (1/M) sum_m log (1/K) sum_k w_{m,k}: the mean of M independent IWAE
    bounds of K samples each. log_w: [M*K, batch] -> [batch]. M = 1 is IWAE_K; K = 1 the
    ELBO averaged over M samples."""
    total, batch = log_w.shape
    if total % outer:
        raise ValueError(f"{total} samples do not split into outer={outer} groups")
    return jnp.mean(iwae_bound(log_w.reshape(outer, total // outer, batch).swapaxes(0, 1)), axis=0)


def ciwae_bound(log_w: jax.Array, beta: float) -> jax.Array:
    """beta ELBO + (1 - beta) IWAE_K over the same K samples: beta = 1 is the ELBO (averaged
    over K samples), beta = 0 is IWAE_K. log_w: [K, batch] -> [batch]."""
    return beta * jnp.mean(log_w, axis=0) + (1.0 - beta) * iwae_bound(log_w)


def _log_weights(model, params, batch, num_samples, rng):
    """[num_samples, batch] log weights (labels passed to conditional models)."""
    y = batch.get("label") if getattr(model, "num_classes", 0) else None
    return model.apply({"params": params}, batch["image"], num_samples, y, rngs={"sample": rng},
                       method=type(model).log_importance_weights)


class _MultiSample(Objective):
    """What the three share: the bound's metrics, and the ELBO / recon / KL of one extra
    single-sample pass so that every variant reports the same numbers."""

    per_example = True

    def _finish(self, model, params, batch, rng, loss_ex, extra_metrics):
        out = forward(model, jax.lax.stop_gradient(params), batch, rng)
        metrics = elbo_metrics(batch["image"], -out.log_px_z, out.kl, loss_ex, model)
        metrics.update({k: jax.lax.stop_gradient(v) for k, v in extra_metrics.items()})
        return jnp.mean(loss_ex), metrics, None


@dataclasses.dataclass(frozen=True)
class MIWAE(_MultiSample):
    """Multiply importance weighted AE: maximizes ELBO_{M,K} (see `miwae_bound`), M outer
    groups of K inner samples. Loss: -ELBO_{M,K}; `miwae_bound` is reported as a metric."""

    outer: int = 8
    inner: int = 8

    def compute(self, model, params, batch, rng, step, extra):
        rng_w, rng_elbo = jax.random.split(rng)
        bound = miwae_bound(_log_weights(model, params, batch, self.outer * self.inner, rng_w), self.outer)
        return self._finish(model, params, batch, rng_elbo, -bound, {"miwae_bound": bound})


@dataclasses.dataclass(frozen=True)
class CIWAE(_MultiSample):
    """Combination importance weighted AE: maximizes beta ELBO + (1 - beta) IWAE_K on the same
    K samples (see `ciwae_bound`). Loss: minus that; `ciwae_bound` is reported."""

    samples: int = 64
    beta: float = 0.5

    def compute(self, model, params, batch, rng, step, extra):
        rng_w, rng_elbo = jax.random.split(rng)
        bound = ciwae_bound(_log_weights(model, params, batch, self.samples, rng_w), self.beta)
        return self._finish(model, params, batch, rng_elbo, -bound, {"ciwae_bound": bound})


@dataclasses.dataclass(frozen=True)
class PIWAE(_MultiSample):
    """Partially importance weighted AE: one set of M x K samples, the decoder (and prior)
    follow the gradient of IWAE_{MK} and the encoder that of ELBO_{M,K} (MIWAE), which keeps the
    encoder's gradient signal-to-noise ratio from vanishing as K grows (the paper's point).
    Loss value: -IWAE_{MK}; `miwae_bound` and `iwae_bound` are reported."""

    outer: int = 8
    inner: int = 8

    def compute(self, model, params, batch, rng, step, extra):
        rng_w, rng_elbo = jax.random.split(rng)
        total = self.outer * self.inner
        # the same rng, so both passes see the same z; each lets gradients reach one side only
        lw_theta = _log_weights(model, _split_params(params, "rest"), batch, total, rng_w)
        lw_phi = _log_weights(model, _split_params(params, "encoder"), batch, total, rng_w)
        iwae, miwae = iwae_bound(lw_theta), miwae_bound(lw_phi, self.outer)
        surrogate = -(iwae + miwae)
        loss_ex = -jax.lax.stop_gradient(iwae) + surrogate - jax.lax.stop_gradient(surrogate)
        return self._finish(model, params, batch, rng_elbo, loss_ex, {"iwae_bound": iwae, "miwae_bound": miwae})
