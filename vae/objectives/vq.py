"""The VQ-VAE objective with a straight-through estimator and EMA codebook updates."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from vae.models.quantizers.codebook import codebook_usage
from vae.objectives.base import Objective, elbo_metrics, forward


@dataclasses.dataclass(frozen=True)
class VQObjective(Objective):
    """VQ-VAE loss (van den Oord et al. 2017, eq. 3):

        loss = -log p(x | z_q) + ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2,

    with the straight-through gradient z_e + sg(z_q - z_e) into the decoder and beta = 0.25.
    With decay > 0 the codebook term is replaced by exponential moving averages of the codes'
    counts and sums (appendix A.1, decay 0.99, Laplace-smoothed counts), applied after the
    optimizer update in the same step. elbo = log p(x|z_q) - L log K (uniform prior).
    """

    commitment: float = 0.25
    decay: float = 0.99
    epsilon: float = 1e-5

    def init_extra(self, model, params, rng, image_shape):
        if not self.decay:
            return {}
        codebook = params["codebook"]
        # a copy: the state is donated to the train step and must not hold one buffer twice
        return {"cluster_size": jnp.ones(codebook.shape[0]), "embed_sum": jnp.copy(codebook)}

    def compute(self, model, params, batch, rng, step, extra):
        x = batch["image"]
        p = dict(params)
        if self.decay:
            p["codebook"] = jax.lax.stop_gradient(params["codebook"])
        out = forward(model, p, batch, rng)          # decodes the straight-through code
        z_e, z_q, codes = out.posterior.mean, out.z, out.codes
        recon = -out.log_px_z
        commit = self.commitment * jnp.sum((z_e - jax.lax.stop_gradient(z_q)) ** 2, axis=-1)
        codebook_loss = 0.0 if self.decay else jnp.sum((jax.lax.stop_gradient(z_e) - z_q) ** 2, axis=-1)
        loss_ex = recon + commit + codebook_loss
        metrics = elbo_metrics(x, recon, out.kl, loss_ex, model)
        metrics["commitment"] = commit
        metrics["codes_used"] = codebook_usage(codes, model.num_codes)["codes_used"]
        aux = {"z_e": jax.lax.stop_gradient(z_e).reshape(-1, model.code_dim), "codes": codes.reshape(-1)}
        return jnp.mean(loss_ex), metrics, aux

    def update_extra(self, model, params, extra, aux, batch, rng, step):
        if not self.decay:
            return params, extra, {}
        one_hot = jax.nn.one_hot(aux["codes"], model.num_codes)                      # [B*L, K]
        counts = jnp.sum(one_hot, axis=0)
        sums = one_hot.T @ aux["z_e"]                                                 # [K, D]
        cluster = self.decay * extra["cluster_size"] + (1 - self.decay) * counts
        embed = self.decay * extra["embed_sum"] + (1 - self.decay) * sums
        total = jnp.sum(cluster)
        smoothed = (cluster + self.epsilon) / (total + model.num_codes * self.epsilon) * total
        params = dict(params)
        params["codebook"] = embed / smoothed[:, None]
        return params, {"cluster_size": cluster, "embed_sum": embed}, {}
