"""The VQ-VAE objective for every quantizer of `vae.models.VQVAE`, with codebook upkeep."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from vae.models.quantizers.codebook import expire_dead_codes, kmeans_codebook, level_usage
from vae.models.quantizers.lfq import LFQ
from vae.models.quantizers.vq import nearest_code
from vae.objectives.base import Objective, elbo_metrics


@dataclasses.dataclass(frozen=True)
class VQObjective(Objective):
    """VQ-VAE loss (van den Oord et al. 2017, eq. 3):

        loss = -log p(x | z_q) + ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2,

    with the straight-through gradient z_e + sg(z_q - z_e) into the decoder (or the model's
    rotation trick) and beta = 0.25, summed over the L quantized vectors. With decay > 0 the
    codebook term is replaced by exponential moving averages of the codes' counts and sums
    (appendix A.1, decay 0.99, Laplace-smoothed counts), applied after the optimizer update in
    the same step; residual VQ keeps one such average per level, toward the residual it saw.
    FSQ has no codebook and no commitment term (Mentzer et al. 2024, sec. 3); LFQ adds
    entropy_weight * (E[H(p(c|z))] - gamma H(E[p(c|z)])) (Yu et al. 2024, eq. 4; weight 0.1 as in
    MAGVIT-v2's training) to its commitment term.

    Codebook upkeep (vq, rvq): kmeans_init replaces the codebook after the first step by k-means
    of that batch's encoder outputs (level by level for rvq; SoundStream, sec. 3.3);
    dead_code_steps > 0 replaces codes unused for that many steps by the batch's encoder outputs
    (ibid.). Metrics: codes_used, perplexity and dead_codes of the batch's codes (over all levels
    for rvq), and codes_replaced. elbo = log p(x|z_q) - T log V (uniform prior).
    """

    commitment: float = 0.25
    decay: float = 0.99
    epsilon: float = 1e-5
    kmeans_init: bool = False
    dead_code_steps: int = 0
    entropy_weight: float = 0.1
    diversity_gamma: float = 1.0
    lfq_temperature: float = 0.01

    def _learned(self, model) -> bool:
        return model.quantizer in ("vq", "rvq")

    def _ema(self, model) -> bool:
        return bool(self.decay) and self._learned(model)

    def init_extra(self, model, params, rng, image_shape):
        if not self._learned(model):
            return {}
        codebook = params["codebook"]
        extra = {}
        if self._ema(model):
            # a copy: the state is donated to the train step and must not hold one buffer twice
            extra.update(cluster_size=jnp.ones(codebook.shape[:-1]), embed_sum=jnp.copy(codebook))
        if self.dead_code_steps:
            extra["idle_steps"] = jnp.zeros(codebook.shape[:-1], jnp.int32)
        return extra

    def compute(self, model, params, batch, rng, step, extra):
        x = batch["image"]
        p = dict(params)
        if self._ema(model):
            p["codebook"] = jax.lax.stop_gradient(params["codebook"])
        out, terms = model.apply({"params": p}, x, rngs={"sample": rng}, method=type(model).train_pass)
        batch_size = x.shape[0]
        v, quantized = terms["vectors"], terms["quantized"]
        per_row = lambda a: jnp.sum(a.reshape(batch_size, -1), axis=-1)  # noqa: E731 - [N, Dc] -> [batch]
        recon = -out.log_px_z
        commit = 0.0 if model.quantizer == "fsq" else self.commitment * per_row(
            (v - jax.lax.stop_gradient(quantized)) ** 2)
        codebook_loss = 0.0
        if self._learned(model) and not self._ema(model):
            if model.quantizer == "rvq":
                codebook_loss = per_row(jnp.sum((jax.lax.stop_gradient(terms["residuals"]) - terms["entries"]) ** 2, 0))
            else:
                codebook_loss = per_row((jax.lax.stop_gradient(v) - quantized) ** 2)
        loss_ex = recon + commit + codebook_loss
        loss = jnp.mean(loss_ex)
        metrics = elbo_metrics(x, recon, out.kl, loss_ex, model)
        if model.quantizer == "lfq":
            entropy = LFQ(model.code_dim, self.lfq_temperature, self.diversity_gamma).entropy_terms(v)
            loss = loss + self.entropy_weight * entropy["entropy_loss"]
            metrics.update(sample_entropy=entropy["sample_entropy"], codebook_entropy=entropy["codebook_entropy"])
        metrics["commitment"] = jnp.broadcast_to(commit, recon.shape)
        metrics.update(level_usage(terms["codes"], model.codebook_size))
        aux = {"z_e": jax.lax.stop_gradient(v), "codes": terms["codes"][:, 0] if model.quantizer != "rvq"
               else terms["codes"]}
        if model.quantizer == "rvq":
            aux["residuals"] = jax.lax.stop_gradient(terms["residuals"])
        return loss, metrics, aux

    # ------------------------------------------------------------------ codebook upkeep

    def _level_data(self, model, aux):
        """[(codes [N], vectors [N, Dc]) per codebook level]."""
        if model.quantizer == "rvq":
            return [(aux["codes"][:, q], aux["residuals"][q]) for q in range(model.rvq_depth)]
        return [(aux["codes"], aux["z_e"])]

    def _ema_update(self, model, codebook, cluster, embed, codes, vectors):
        one_hot = jax.nn.one_hot(codes, model.num_codes)                                 # [N, K]
        cluster = self.decay * cluster + (1 - self.decay) * jnp.sum(one_hot, axis=0)
        embed = self.decay * embed + (1 - self.decay) * (one_hot.T @ vectors)            # [K, Dc]
        total = jnp.sum(cluster)
        smoothed = (cluster + self.epsilon) / (total + model.num_codes * self.epsilon) * total
        return embed / smoothed[:, None], cluster, embed

    def _kmeans(self, model, aux, key):
        """The codebook by k-means of this batch's encoder outputs (rvq: level by level, each on
        what the levels before it leave)."""
        if model.quantizer == "vq":
            return kmeans_codebook(aux["z_e"], model.num_codes, key)
        levels, residual = [], aux["z_e"]
        for q in range(model.rvq_depth):
            book = kmeans_codebook(residual, model.num_codes, jax.random.fold_in(key, q))
            residual = residual - nearest_code(residual, book)[1]
            levels.append(book)
        return jnp.stack(levels)

    @staticmethod
    def _split(model, x):
        """A codebook-shaped array as a list over levels (vq: [K, ...] is one level; rvq: [Q, K, ...])."""
        return [x] if model.quantizer == "vq" else list(x)

    @staticmethod
    def _join(model, xs):
        return xs[0] if model.quantizer == "vq" else jnp.stack(xs)

    def update_extra(self, model, params, extra, aux, batch, rng, step):
        if not self._learned(model):
            return params, extra, {}
        levels = self._level_data(model, aux)
        books = self._split(model, params["codebook"])
        new = dict(extra)
        if self._ema(model):
            cl, em = self._split(model, extra["cluster_size"]), self._split(model, extra["embed_sum"])
            for q, (codes, vectors) in enumerate(levels):
                books[q], cl[q], em[q] = self._ema_update(model, books[q], cl[q], em[q], codes, vectors)
        metrics = {}
        if self.dead_code_steps:
            idle = self._split(model, extra["idle_steps"])
            replaced = 0
            for q, (codes, vectors) in enumerate(levels):
                counts = jnp.zeros(model.num_codes).at[codes].add(1.0)
                before = books[q]
                books[q], idle[q], n = expire_dead_codes(before, idle[q], counts, vectors,
                                                         jax.random.fold_in(rng, q), self.dead_code_steps)
                replaced = replaced + n
                if self._ema(model):   # a replaced code restarts its averages at its new vector
                    fresh = jnp.any(books[q] != before, axis=-1)
                    cl[q] = jnp.where(fresh, 1.0, cl[q])
                    em[q] = jnp.where(fresh[:, None], books[q], em[q])
            new["idle_steps"] = self._join(model, idle)
            metrics["codes_replaced"] = replaced
        codebook = self._join(model, books)
        if self.kmeans_init:
            codebook = jax.lax.cond(step == 0, lambda: self._kmeans(model, aux, jax.random.fold_in(rng, 7919)),
                                    lambda: codebook)
        if self._ema(model):
            cluster, embed = self._join(model, cl), self._join(model, em)
            if self.kmeans_init:   # the averages restart at the k-means codes
                cluster, embed = jnp.where(step == 0, 1.0, cluster), jnp.where(step == 0, codebook, embed)
            new["cluster_size"], new["embed_sum"] = cluster, embed
        params = dict(params)
        params["codebook"] = codebook
        return params, new, metrics
