"""The importance-weighted bound as a training objective (IWAE), with optional DReG gradients."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from vae.objectives.base import Objective, elbo_metrics, forward


def _split_params(params: dict, keep: str) -> dict:
    """Stops gradients to every top-level module except (keep='encoder') or except not (keep='rest')."""
    sg = jax.lax.stop_gradient
    if keep == "encoder":
        return {k: (v if k == "encoder" else sg(v)) for k, v in params.items()}
    return {k: (sg(v) if k == "encoder" else v) for k, v in params.items()}


@dataclasses.dataclass(frozen=True)
class IWAE(Objective):
    """Importance weighted autoencoder (Burda et al. 2016, eq. 8): maximizes

        L_k = E[ log (1/k) sum_i p(x, z_i) / q(z_i|x) ],  z_i ~ q(z|x),

    which is the ELBO at k = 1 and tightens with k. With dreg=True the encoder gets the
    doubly-reparameterized gradient of Tucker et al. (2019, eq. 5): sum_i w~_i^2 d log w_i/dz
    dz/dphi, with the posterior's parameters held fixed inside log q; the decoder keeps the
    IWAE gradient. `loss` is -L_k; `elbo`, `recon`, `kl` come from one extra single-sample pass
    so every variant reports the same numbers.
    """

    num_samples: int = 5
    dreg: bool = False
    per_example = True

    def compute(self, model, params, batch, rng, step, extra):
        x = batch["image"]
        y = batch.get("label") if getattr(model, "num_classes", 0) else None
        k = self.num_samples
        rng_w, rng_elbo = jax.random.split(rng)

        def log_weights(p, stop_q=False):
            return model.apply({"params": p}, x, k, y, stop_q, rngs={"sample": rng_w},
                               method=type(model).log_importance_weights)

        if self.dreg:
            lw_theta = log_weights(_split_params(params, "rest"))                # decoder/prior path
            lw_phi = log_weights(_split_params(params, "encoder"), stop_q=True)   # encoder path through z only
            w = jax.lax.stop_gradient(jax.nn.softmax(lw_theta, axis=0))
            surrogate = -jnp.sum(w * lw_theta + w**2 * lw_phi, axis=0)
            bound = jax.nn.logsumexp(lw_theta, axis=0) - math.log(k)
            loss_ex = -jax.lax.stop_gradient(bound) + surrogate - jax.lax.stop_gradient(surrogate)
        else:
            bound = jax.nn.logsumexp(log_weights(params), axis=0) - math.log(k)
            loss_ex = -bound
        out = forward(model, jax.lax.stop_gradient(params), batch, rng_elbo)
        metrics = elbo_metrics(x, -out.log_px_z, out.kl, loss_ex, model)
        metrics["iwae_bound"] = jax.lax.stop_gradient(bound)
        return jnp.mean(loss_ex), metrics, None
