"""An autoregressive prior over the code indices of a discrete model: a small causal transformer
(Vaswani et al. 2017, pre-norm; as the code priors of VQ-GAN, Esser et al. 2021, sec. 3.2),
p(c) = prod_i p(c_i | c_<i), fitted by maximum likelihood to the codes of the training split
and sampled one code at a time with a temperature and top-k truncation.

The VQ-VAE paper fits a PixelCNN over a 2-D map of codes: that is `pixelcnn`
(`vae.samplers.pixelcnn`, for models with `model.code_map`), which shares this module's fitting
and sampling (AutoregressiveCodePrior). The transformer takes codes in any layout, as a
sequence. Left out: dropout, class conditioning.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vae.samplers.base import LatentSampler, SamplerError, positive, register_sampler
from vae.samplers.fitting import fit_by_gradient, likelihood_report


class CausalTransformer(nn.Module):
    """codes [n, L] int -> logits [n, L, K], where logits[:, i] is a function of codes[:, :i] only
    (the input is shifted right behind a start token K)."""

    vocab: int
    width: int = 128
    depth: int = 2
    heads: int = 4

    @nn.compact
    def __call__(self, codes: jax.Array) -> jax.Array:
        n, length = codes.shape
        tokens = jnp.concatenate([jnp.full((n, 1), self.vocab, codes.dtype), codes[:, :-1]], axis=1)
        h = nn.Embed(self.vocab + 1, self.width)(tokens)
        h = h + self.param("position", nn.initializers.normal(0.02), (length, self.width))
        mask = nn.make_causal_mask(tokens)
        for _ in range(self.depth):
            h = h + nn.MultiHeadDotProductAttention(num_heads=self.heads, qkv_features=self.width)(
                nn.LayerNorm()(h), mask=mask)
            r = nn.gelu(nn.Dense(4 * self.width)(nn.LayerNorm()(h)))
            h = h + nn.Dense(self.width)(r)
        return nn.Dense(self.vocab)(nn.LayerNorm()(h))


def top_k_logits(logits: jax.Array, k: int) -> jax.Array:
    """logits [..., K] with all but the k largest set to -inf (k = 0: unchanged)."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = jax.lax.top_k(logits, k)[0][..., -1:]
    return jnp.where(logits < kth, -jnp.inf, logits)


@dataclasses.dataclass(frozen=True)
class AutoregressiveCodePrior(LatentSampler):
    """Base class of the priors over code indices (kind 'codes'): a network mapping codes [n, L]
    to logits [n, L, K] whose position i sees only the codes before it (`network`), fitted by
    maximum likelihood, sampled one code at a time. temperature divides the logits; top_k (0:
    off) keeps the k most likely codes at each position. num_codes: the vocabulary (0: the
    model's codebook size, set by `bind`). check_every: every so many steps the held-out
    log-likelihood is measured and the best params are kept (early stopping; 0: off), which
    matters here: a few thousand code sequences are memorized within a few hundred steps."""

    kind = "codes"

    steps: int = 3000
    batch_size: int = 128
    learning_rate: float = 3e-4
    held_out: float = 0.1
    check_every: int = 100
    top_k: int = 0
    num_codes: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size", "learning_rate"):
            positive(name, getattr(self, name))
        if self.top_k < 0:
            raise SamplerError(f"top_k={self.top_k} must be >= 0 (0: no truncation)")

    def check_model(self, model) -> None:
        if not hasattr(model, "encode_codes"):
            raise SamplerError(f"sampler {self.name!r} needs a discrete model (one with codes, e.g. vqvae); "
                               f"this one is {type(model).__name__}")

    def bind(self, model) -> "AutoregressiveCodePrior":
        self.check_model(model)
        return dataclasses.replace(self, num_codes=int(model.codebook_size))

    def network(self, vocab: int) -> nn.Module:
        """The module codes [n, L] int -> logits [n, L, vocab], causal in the code order."""
        raise NotImplementedError

    def check_codes(self, codes: np.ndarray) -> None:
        """SamplerError when `codes` [N, L] do not fit this prior (beyond dtype and range)."""

    def _log_prob(self, params, codes: jax.Array, vocab: int) -> jax.Array:
        logp = jax.nn.log_softmax(self.network(vocab).apply({"params": params}, codes))
        return jnp.sum(jnp.take_along_axis(logp, codes[..., None], axis=-1)[..., 0], axis=-1)

    def fit(self, data, key):
        codes = np.asarray(data)
        if codes.ndim != 2 or not np.issubdtype(codes.dtype, np.integer):
            raise SamplerError(f"{self.name} fits [N, L] integer codes, got {codes.dtype} of shape {codes.shape}")
        vocab = int(self.num_codes or codes.max() + 1)
        if codes.min() < 0 or codes.max() >= vocab:
            raise SamplerError(f"codes must lie in [0, {vocab}), got [{codes.min()}, {codes.max()}]")
        self.check_codes(codes)
        codes = codes.astype(np.int32)
        k_init, k_fit = jax.random.split(key)
        params = self.network(vocab).init(k_init, jnp.asarray(codes[:2]))["params"]
        params, report = fit_by_gradient(lambda p, b, _: -self._log_prob(p, b, vocab), params, codes, k_fit,
                                         steps=self.steps, batch_size=self.batch_size,
                                         learning_rate=self.learning_rate, held_out=self.held_out,
                                         check_every=self.check_every)
        report = {**likelihood_report(report), "uniform_log_prob": float(-codes.shape[1] * np.log(vocab))}
        # the vocabulary and the length as the shapes of placeholders: static under jit
        return {"vocab": np.zeros((vocab,), np.int8), "length": np.zeros((codes.shape[1],), np.int8),
                "network": params}, report

    def sample(self, state, key, num, temperature=1.0):
        vocab, length = state["vocab"].shape[0], state["length"].shape[0]
        net = self.network(vocab)

        def body(i, carry):
            codes, key = carry
            key, sub = jax.random.split(key)
            logits = net.apply({"params": state["network"]}, codes)[:, i] / jnp.maximum(temperature, 1e-6)
            choice = jax.random.categorical(sub, top_k_logits(logits, self.top_k))
            return codes.at[:, i].set(choice.astype(codes.dtype)), key

        codes, _ = jax.lax.fori_loop(0, length, body, (jnp.zeros((num, length), jnp.int32), key))
        return codes

    def log_prob(self, state, z):
        """log p(codes): z [n, L] int codes -> [n] (the sum of the L conditionals)."""
        return self._log_prob(state["network"], jnp.asarray(z, jnp.int32), state["vocab"].shape[0])


@register_sampler
@dataclasses.dataclass(frozen=True)
class CodePriorSampler(AutoregressiveCodePrior):
    """A causal transformer prior over code indices, in the order the model lists them (see
    AutoregressiveCodePrior for the shared options)."""

    name = "code_prior"
    summary = "causal transformer over the code indices (discrete models)"
    paper = "van den Oord et al. 2017, sec. 3.2 (a learned prior over codes); the transformer of Esser et al. 2021"

    width: int = 128
    depth: int = 2
    heads: int = 4

    def __post_init__(self):
        super().__post_init__()
        for name in ("width", "depth", "heads"):
            positive(name, getattr(self, name))
        if self.width % self.heads:
            raise SamplerError(f"width={self.width} must be a multiple of heads={self.heads}")

    def network(self, vocab: int) -> CausalTransformer:
        return CausalTransformer(vocab, self.width, self.depth, self.heads)
