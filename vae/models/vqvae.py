"""VQ-VAE (van den Oord et al. 2017) with a choice of quantizer: a discrete latent of
`latent_dim / code size` codes."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae.models.base import LatentVariableModel, VAEOutput
from vae.models.distributions import PointMass
from vae.models.quantizers.fsq import FSQ
from vae.models.quantizers.lfq import LFQ
from vae.models.quantizers.rvq import residual_quantize
from vae.models.quantizers.vq import l2_normalize, nearest_code, rotation_trick, straight_through

QUANTIZERS = ("vq", "rvq", "fsq", "lfq")
GRADIENTS = ("straight_through", "rotation")


class VQVAE(LatentVariableModel):
    """Encoder -> z_e [batch, L * D] -> L quantized codes of D dims -> decoder. The posterior is
    one-hot over codes and the prior uniform, so KL = T log V nats for T code indices from a
    vocabulary of V, and log p(x) >= log p(x | z_q) - T log V.

    quantizer (each in `vae.models.quantizers`):
      vq   nearest of `num_codes` learned vectors (the paper); `cosine` compares l2-normalized
           vectors (Yu et al. 2022, sec. 3.2); `gradient` 'rotation' replaces straight-through
           with the rotation trick (Fifty et al. 2024); T = L, V = num_codes.
      rvq  `rvq_depth` codebooks of `num_codes` quantizing the residuals in turn (Zeghidour et al.
           2021); T = L * depth (level-major within each latent), V = num_codes.
      fsq  finite scalar quantization on the grid `fsq_levels` (Mentzer et al. 2024); D =
           len(fsq_levels), V = prod(levels), no codebook to learn.
      lfq  lookup-free: the signs of D channels (Yu et al. 2024); V = 2^D.
    codebook_dim (vq, rvq): look codes up in this lower dimension between two linear maps
    (the factorized codes of Yu et al. 2022, sec. 3.2); None: in D itself.

    `encode` returns the deterministic posterior `PointMass(z_e)` (the explorer works on the
    unquantized z_e); `decode` takes any [.., L * D] vector (it quantizes nothing);
    `reconstruct` and `__call__` quantize. `__call__` feeds the decoder the straight-through
    (or rotated) code, whose value is z_q, and returns z = z_q and the code indices.
    `train_pass` also returns what the objective's codebook terms need.
    Discrete-model interface: `codebook_size` (V), `encode_codes(x) -> [batch, T]`,
    `decode_codes(codes) -> z_q`, which the code prior of `vae.samplers` fits and samples.
    code_map (h, w): the L = h * w latents form a 2-D map, position-major (the fully
    convolutional networks of `vae.models.map_nets`); codes [batch, T] then read as
    [batch, h, w, tokens_per_latent] in raster order, which a PixelCNN prior uses. None: a
    sequence of L latents with no spatial layout.
    Leaves out: an autoregressive prior over codes inside the model (the model samples codes
    uniformly; `vae fit-sampler RUN --sampler code_prior` fits one after training).
    """

    encoder: nn.Module
    decoder: nn.Module
    likelihood: nn.Module
    latent_dim: int
    num_codes: int = 512
    code_dim: int = 8
    quantizer: str = "vq"
    cosine: bool = False
    gradient: str = "straight_through"
    codebook_dim: int | None = None
    rvq_depth: int = 4
    fsq_levels: tuple[int, ...] = (8, 5, 5, 5)
    code_map: tuple[int, int] | None = None
    num_classes: int = 0

    def setup(self):
        dim = self.codebook_dim or self.code_dim
        if self.quantizer == "vq":
            self.codebook = self.param("codebook", nn.initializers.normal(1.0), (self.num_codes, dim))
        elif self.quantizer == "rvq":
            self.codebook = self.param("codebook", nn.initializers.normal(1.0), (self.rvq_depth, self.num_codes, dim))
        if self.codebook_dim and self.quantizer in ("vq", "rvq"):
            self.project_in = nn.Dense(self.codebook_dim, name="project_in")
            self.project_out = nn.Dense(self.code_dim, name="project_out")

    # ------------------------------------------------------------------ sizes

    @property
    def code_size(self) -> int:
        """D: the latent dimensions each code spans."""
        return len(self.fsq_levels) if self.quantizer == "fsq" else self.code_dim

    @property
    def num_latents(self) -> int:
        """L: the quantized vectors per example."""
        return self.latent_dim // self.code_size

    @property
    def tokens_per_latent(self) -> int:
        return self.rvq_depth if self.quantizer == "rvq" else 1

    @property
    def num_tokens(self) -> int:
        """T: the code indices per example."""
        return self.num_latents * self.tokens_per_latent

    @property
    def codebook_size(self) -> int:
        """V: the values each code index takes."""
        if self.quantizer == "fsq":
            return math.prod(self.fsq_levels)
        if self.quantizer == "lfq":
            return 2 ** self.code_dim
        return self.num_codes

    def kl_constant(self) -> float:
        """KL(one-hot posterior || uniform prior) = T log V nats."""
        return self.num_tokens * math.log(self.codebook_size)

    # ------------------------------------------------------------------ quantization

    def _projected(self) -> bool:
        return bool(self.codebook_dim) and self.quantizer in ("vq", "rvq")

    def _quantize(self, z_e):
        """z_e [..., L*D] -> (decoder input [..., L*D] (value z_q, gradient by the estimator),
        z_q [..., L*D] (no gradient to z_e), codes [..., T], terms) where terms holds, per
        quantized vector (N = prod(lead) * L rows, in the codebook's space): 'vectors' [N, Dc]
        (the encoder's, normalized for cosine codebooks), 'quantized' [N, Dc] (gradient to the
        codebook only), 'codes' [N, tokens], and for rvq 'residuals' [Q, N, Dc] and 'entries'
        [Q, N, Dc] (each level's)."""
        lead = z_e.shape[:-1]
        v = z_e.reshape(-1, self.code_size)
        if self._projected():
            v = self.project_in(v)
        terms = {}
        if self.quantizer == "vq":
            if self.cosine:
                v = l2_normalize(v)
            codes, entries = nearest_code(v, self.codebook, cosine=self.cosine)
            quantized = entries
            passed = rotation_trick(v, entries) if self.gradient == "rotation" else straight_through(v, entries)
            codes = codes[:, None]
        elif self.quantizer == "rvq":
            passed, codes, residuals, entries = residual_quantize(v, self.codebook)
            quantized = jnp.sum(entries, axis=0)
            terms.update(residuals=residuals, entries=entries)
        elif self.quantizer == "fsq":
            passed, codes = FSQ(self.fsq_levels)(v)
            quantized, codes = jax.lax.stop_gradient(passed), codes[:, None]
        else:
            passed, codes = LFQ(self.code_dim)(v)
            quantized, codes = jax.lax.stop_gradient(passed), codes[:, None]
        terms.update(vectors=v, quantized=quantized, codes=codes)
        value = jax.lax.stop_gradient(quantized)
        if self._projected():
            passed, value = self.project_out(passed), self.project_out(value)
        return (passed.reshape(*lead, self.latent_dim), value.reshape(*lead, self.latent_dim),
                codes.reshape(*lead, self.num_tokens), terms)

    def quantize(self, z_e):
        """z_e [..., L*D] -> (z_q [..., L*D], codes [..., T])."""
        _, z_q, codes, _ = self._quantize(z_e)
        return z_q, codes

    def encode_codes(self, x, y=None):
        """x [batch, H, W, C] -> the code indices of its quantized latent: [batch, T] int32."""
        return self.quantize(self.encode(x).mean)[1].astype(jnp.int32)

    def decode_codes(self, codes):
        """codes [batch, T] int -> the latent z_q of those codes: [batch, L * D] (decode it with
        `decode`)."""
        lead = codes.shape[:-1]
        c = codes.reshape(-1, self.num_latents, self.tokens_per_latent)
        if self.quantizer == "vq":
            book = l2_normalize(self.codebook) if self.cosine else self.codebook
            v = book[c[..., 0]]
        elif self.quantizer == "rvq":
            v = sum(self.codebook[q][c[..., q]] for q in range(self.rvq_depth))
        elif self.quantizer == "fsq":
            v = FSQ(self.fsq_levels).codes_to_vectors(c[..., 0])
        else:
            v = LFQ(self.code_dim).codes_to_vectors(c[..., 0])
        if self._projected():
            v = self.project_out(v)
        return v.reshape(*lead, self.latent_dim)

    # ------------------------------------------------------------------ the model interface

    def encode(self, x, y=None) -> PointMass:
        mean, _ = self.encoder(x)
        return PointMass(mean)

    def train_pass(self, x, y=None):
        """(VAEOutput, terms): `__call__`'s output and the quantizer's terms (see `_quantize`)."""
        z_e = self.encode(x).mean
        passed, z_q, codes, terms = self._quantize(z_e)
        decoded = self.decode(passed)
        log_px_z = self.log_likelihood(decoded, x)
        # jnp.log in float32 here, the Python float in log_importance_weights: each as the
        # objective and the IWAE estimate computed it before, so logged numbers stay bit-identical
        kl = jnp.full_like(log_px_z, self.num_tokens * jnp.log(self.codebook_size))
        return VAEOutput(PointMass(z_e), z_q, decoded, log_px_z, jnp.zeros_like(z_e), kl, codes), terms

    def __call__(self, x, y=None) -> VAEOutput:
        return self.train_pass(x, y)[0]

    def log_importance_weights(self, x, num_samples, y=None, stop_posterior_grad=False):
        """Deterministic posterior: every 'sample' has weight log p(x|z_q) - T log V: [k, batch]."""
        z_q, _ = self.quantize(self.encode(x).mean)
        lw = self.likelihood.log_prob(self.decoder(z_q), x) - self.kl_constant()
        return jnp.broadcast_to(lw, (num_samples, *lw.shape))

    def reconstruct(self, x, y=None):
        z_q, _ = self.quantize(self.encode(x).mean)
        return self.likelihood.mean(self.decoder(z_q))

    def sample_prior(self, rng, num):
        """Codes drawn uniformly (the VQ-VAE's training prior), as their latent z_q: [num, L * D]."""
        return self.decode_codes(jax.random.randint(rng, (num, self.num_tokens), 0, self.codebook_size))

    def generate(self, num, temperature=1.0, y=None):
        """Decoder means at uniformly drawn codes (temperature does not apply to discrete codes;
        a fitted code prior samples better: `vae.samplers`)."""
        return self.likelihood.mean(self.decoder(self.sample_prior(self.make_rng("sample"), num)))
