"""A deep hierarchical VAE after NVAE (Vahdat & Kautz 2020; see also VDVAE, Child 2021), of any
depth: `latent_scales` resolutions with `groups_per_scale` latent groups each, L = scales x
groups in all, z_l of shape [h_l, w_l, group_channels].

    p(z) = prod_l p(z_l | z_<l),   q(z | x) = prod_l q(z_l | x, z_<l)          (eq. 1)

A bottom-up tower of residual cells reads x once (features f_l); a top-down tower, shared by
the prior and the posterior, carries a state h_l (from a learned input) through cells and
through each sampled group. p(z_l | z_<l) = N(mu_l, sigma_l) comes from h_l (p(z_1) = N(0, I)),
and the posterior is relative to it (the residual parameterization, eq. 2):

    q(z_l | x, z_<l) = N(mu_l + dmu_l, sigma_l * dsigma_l),  (dmu_l, log dsigma_l) from f_l + conv(h_l)

so its KL to the prior is, per dimension, 1/2 (dmu^2 / sigma^2 + dsigma^2 - 1) - log dsigma.
The KL of each group is reported separately (kl_per_dim holds one KL per group, [batch, L]),
so the ELBO's free bits apply per group.

In, from NVAE: the two towers, residual cells with squeeze-and-excitation (Swish, depthwise 5x5
convolutions in the generative cells, residual branches scaled by 0.1), the residual
posterior, soft-clamped Gaussian parameters (5 tanh(x / 5)), groups at several resolutions, and,
through the objective, KL warm-up and free bits per group. Changed: the Gaussian heads start at
zero (every group at N(0, I), posterior on prior), which stands in for batch norm's control of
the scales at initialization. Left out: batch normalization (and so its readjustment for
temperature sampling; the toolkit's train state has no mutable statistics),
spectral regularization, KL balancing across groups, normalizing flows in the encoder, channel
doubling between latent scales (`channels` gives one width per pre-processing resolution, e.g.
(16, 32, 64) doubles twice as the authors' MNIST model does, and the last width for every latent
scale), and mixed precision.

Images whose H or W is not a multiple of 2^halvings are zero-padded around (28x28 -> 32x32 for
three halvings, as NVAE pads MNIST) and the output is cropped back: the likelihood sees the
original pixels only.

It generalizes the ladder VAE (Sønderby et al. 2016): both share the top-down path between
prior and posterior; the ladder merges a bottom-up and a top-down Gaussian by precision where
NVAE offsets the prior by a learned residual.

Interface: `encode` returns the top group's posterior, flattened ([batch, h_1 w_1 c]); `decode`
runs the top-down tower from a top-group z with every lower group at its prior mean;
`reconstruct` uses the posterior means of every group; `generate` samples every group from the
prior, each scaled by the temperature; `generate_from` takes the top group as given (from a fitted
sampler) and samples the lower ones from p(z_l | z_<l).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae.models.base import LatentVariableModel, VAEOutput
from vae.models.distributions import DiagonalGaussian
from vae.models.hierarchical import gaussian_kl
from vae.models.nvae_cells import DecoderCell, EncoderCell, soft_clamp


class NVAE(LatentVariableModel):
    """See the module docstring. image_shape: (H, W, C); out_channels: the likelihood's
    parameter channels; channels: the width at each resolution from the full one down to the
    latent scales' (one pre-processing block, halving H and W, between consecutive entries);
    process_cells: residual cells per pre- and post-processing block."""

    likelihood: nn.Module
    image_shape: tuple[int, int, int]
    out_channels: int
    channels: tuple[int, ...] = (32, 64)
    latent_scales: int = 2
    groups_per_scale: int = 10
    group_channels: int = 20
    cells_per_group: int = 2
    process_cells: int = 1
    expand: int = 6
    activation: Callable = nn.swish
    clamp: float | None = 5.0
    num_classes: int = 0

    @property
    def num_groups(self) -> int:
        return self.latent_scales * self.groups_per_scale

    @property
    def halvings(self) -> int:
        """How often the bottom-up tower halves H and W: once per pre-processing block, then
        between consecutive latent scales."""
        return len(self.channels) - 1 + self.latent_scales - 1

    @property
    def padded_shape(self) -> tuple[int, int]:
        """H and W rounded up to multiples of 2^halvings (28 -> 32 for three halvings)."""
        step = 2 ** self.halvings
        return tuple(-(-n // step) * step for n in self.image_shape[:2])

    @property
    def top_shape(self) -> tuple[int, int, int]:
        s = 2 ** self.halvings
        return self.padded_shape[0] // s, self.padded_shape[1] // s, self.group_channels

    @property
    def latent_dim(self) -> int:
        return math.prod(self.top_shape)

    def setup(self):
        widths, c_lat, act = self.channels, self.channels[-1], self.activation
        n, gc = self.num_groups, self.group_channels
        self.stem = nn.Conv(widths[0], (3, 3))
        pre = []
        for i in range(len(widths) - 1):  # a block: cells at its width, then one halving to the next
            pre += [EncoderCell(widths[i], activation=act) for _ in range(self.process_cells)]
            pre.append(EncoderCell(widths[i + 1], downsample=True, activation=act))
        self.pre = pre
        self.enc_cells = [[EncoderCell(c_lat, activation=act) for _ in range(self.cells_per_group)] for _ in range(n)]
        self.enc_down = [EncoderCell(c_lat, downsample=True, activation=act) for _ in range(self.latent_scales - 1)]
        self.enc_top = nn.Dense(c_lat)
        # The Gaussian heads start at zero, so every group starts at N(0, I) with its posterior on
        # its prior (KL 0): without batch norm, random heads let the scales compound down the
        # tower (at init, the KL of the 10th group of 10 was 1e8 nats).
        head = lambda: nn.Conv(gc, (3, 3), kernel_init=nn.initializers.zeros_init())  # noqa: E731
        self.q_mean = [head() for _ in range(n)]
        self.q_log_var = [head() for _ in range(n)]
        self.enc_combine = [nn.Dense(c_lat) for _ in range(n - 1)]
        self.p_mean = [head() for _ in range(n - 1)]
        self.p_log_var = [head() for _ in range(n - 1)]
        self.dec_cells = [[DecoderCell(c_lat, self.expand, activation=act) for _ in range(self.cells_per_group)]
                          for _ in range(n - 1)]
        self.dec_up = [DecoderCell(c_lat, self.expand, upsample=True, activation=act)
                       for _ in range(self.latent_scales - 1)]
        self.dec_combine = [nn.Dense(c_lat) for _ in range(n)]
        self.top_down_input = self.param("top_down_input", nn.initializers.normal(1.0), (*self.top_shape[:2], c_lat))
        # the mirror of `pre`; the authors' code expands the post-processing cells by 3, the
        # top-down cells by 6
        post = []
        for i in reversed(range(len(widths) - 1)):
            post.append(DecoderCell(widths[i], 3, upsample=True, activation=act))
            post += [DecoderCell(widths[i], 3, activation=act) for _ in range(self.process_cells)]
        self.post = post
        self.out = nn.Conv(self.out_channels, (3, 3))

    # -- the two towers ------------------------------------------------------------------

    def bottom_up(self, x: jax.Array) -> list[jax.Array]:
        """x [B, H, W, C] -> the encoder feature of each group in top-down order, [B, h_l, w_l, c]."""
        h = self.stem(jnp.pad(x, ((0, 0), *self._margins(), (0, 0))))
        for cell in self.pre:
            h = cell(h)
        feats = []
        for s in range(self.latent_scales):
            for g in range(self.groups_per_scale):
                for cell in self.enc_cells[s * self.groups_per_scale + g]:
                    h = cell(h)
                feats.append(h)
            if s < self.latent_scales - 1:
                h = self.enc_down[s](h)
        return feats[::-1]

    def _gaussian(self, mean: jax.Array, log_var: jax.Array) -> DiagonalGaussian:
        # NVAE clamps mu and log sigma; log var = 2 log sigma
        return DiagonalGaussian(soft_clamp(mean, self.clamp), 2.0 * soft_clamp(0.5 * log_var, self.clamp))

    def _posterior_top(self, feat: jax.Array) -> DiagonalGaussian:
        f = self.enc_top(self.activation(feat))
        return self._gaussian(self.q_mean[0](f), self.q_log_var[0](f))

    def top_down(self, batch: int, pick: Callable, feats: list[jax.Array] | None = None):
        """Runs the generative tower for `batch` rows. For each group l, `pick(l, p, q)` returns
        z_l [batch, h_l, w_l, c] from its prior p (None for the top group: N(0, I)) and its
        posterior q (None when feats is None). Returns (likelihood parameters [batch, H, W, P],
        [(p_l, q_l, z_l)] per group)."""
        h = jnp.broadcast_to(self.top_down_input, (batch, *self.top_down_input.shape))
        groups = []
        for l in range(self.num_groups):
            if l == 0:
                p = None
                q = None if feats is None else self._posterior_top(feats[0])
            else:
                if l % self.groups_per_scale == 0:
                    h = self.dec_up[l // self.groups_per_scale - 1](h)
                for cell in self.dec_cells[l - 1]:
                    h = cell(h)
                a = self.activation(h)
                p = self._gaussian(self.p_mean[l - 1](a), self.p_log_var[l - 1](a))
                q = None
                if feats is not None:
                    f = feats[l] + self.enc_combine[l - 1](h)
                    dq = self._gaussian(self.q_mean[l](f), self.q_log_var[l](f))
                    q = DiagonalGaussian(p.mean + dq.mean, p.log_var + dq.log_var)
            z = pick(l, p, q)
            groups.append((p, q, z))
            h = self.dec_combine[l](jnp.concatenate([h, z], axis=-1))
        for cell in self.post:
            h = cell(h)
        (top, bottom), (left, right) = self._margins()
        out = self.out(self.activation(h))
        return out[:, top:out.shape[1] - bottom, left:out.shape[2] - right], groups

    def _margins(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """Zero rows / columns added above-below and left-right of the images (NVAE pads MNIST
        to 32x32); the output is cropped back, so the likelihood sees the original pixels only."""
        return tuple(((p - n) // 2, p - n - (p - n) // 2) for n, p in zip(self.image_shape[:2], self.padded_shape))

    # -- the model interface ---------------------------------------------------------------

    def _top(self, q: DiagonalGaussian) -> DiagonalGaussian:
        b = q.mean.shape[0]
        return DiagonalGaussian(q.mean.reshape(b, -1), q.log_var.reshape(b, -1))

    def encode(self, x: jax.Array, y: jax.Array | None = None) -> DiagonalGaussian:
        return self._top(self._posterior_top(self.bottom_up(x)[0]))

    @staticmethod
    def _group_kl(p: DiagonalGaussian | None, q: DiagonalGaussian) -> jax.Array:
        if p is None:
            return jnp.sum(q.kl_standard_normal_per_dim(), axis=(1, 2, 3))
        return jnp.sum(gaussian_kl(q, p), axis=(1, 2, 3))

    def __call__(self, x: jax.Array, y: jax.Array | None = None) -> VAEOutput:
        keys = jax.random.split(self.make_rng("sample"), self.num_groups)
        decoded, groups = self.top_down(x.shape[0], lambda l, p, q: q.sample(keys[l]), self.bottom_up(x))
        kl_groups = jnp.stack([self._group_kl(p, q) for p, q, _ in groups], axis=-1)          # [B, L]
        q0, z0 = groups[0][1], groups[0][2]
        return VAEOutput(self._top(q0), z0.reshape(x.shape[0], -1), decoded, self.log_likelihood(decoded, x),
                         kl_groups, jnp.sum(kl_groups, -1))

    def log_importance_weights(self, x: jax.Array, num_samples: int, y: jax.Array | None = None,
                               stop_posterior_grad: bool = False) -> jax.Array:
        """log p(x, z_1..L) - log q(z_1..L | x) for k joint draws of every group: [k, batch]."""
        b, k = x.shape[0], num_samples
        feats = [jnp.broadcast_to(f, (k, *f.shape)).reshape(k * b, *f.shape[1:]) for f in self.bottom_up(x)]
        keys = jax.random.split(self.make_rng("sample"), self.num_groups)
        decoded, groups = self.top_down(k * b, lambda l, p, q: q.sample(keys[l]), feats)
        log_w = self.log_likelihood(decoded.reshape(k, b, *decoded.shape[1:]), x)
        for p, q, z in groups:
            if stop_posterior_grad:
                q = jax.lax.stop_gradient(q)
            if p is None:
                p = DiagonalGaussian(jnp.zeros_like(z), jnp.zeros_like(z))
            log_w = log_w + jnp.sum(p.log_prob(z) - q.log_prob(z), axis=(1, 2)).reshape(k, b)
        return log_w

    def decode(self, z: jax.Array, y: jax.Array | None = None) -> jax.Array:
        """Top-group z [..., batch, d] -> likelihood parameters [..., batch, H, W, P], the lower
        groups at their prior means."""
        lead = z.shape[:-1]
        flat = z.reshape(-1, *self.top_shape)
        decoded, _ = self.top_down(flat.shape[0], lambda l, p, q: flat if l == 0 else p.mean)
        return decoded.reshape(*lead, *decoded.shape[1:])

    def reconstruct(self, x: jax.Array, y: jax.Array | None = None) -> jax.Array:
        """The likelihood's mean with every group at its posterior mean: [batch, H, W, C]."""
        decoded, _ = self.top_down(x.shape[0], lambda l, p, q: q.mean, self.bottom_up(x))
        return self.likelihood.mean(decoded)

    def sample_prior(self, rng: jax.Array, num: int) -> jax.Array:
        """The top group z_1 ~ N(0, I): [num, d]."""
        return jax.random.normal(rng, (num, self.latent_dim))

    def generate(self, num: int, temperature: float = 1.0, y: jax.Array | None = None) -> jax.Array:
        """Means of p(x | z) for z drawn group by group from the prior, each group's noise
        scaled by `temperature`: [num, H, W, C]."""
        keys = jax.random.split(self.make_rng("sample"), self.num_groups)
        top = temperature * jax.random.normal(keys[0], (num, *self.group_shape(0)))
        return self._ancestral(top, keys, temperature)

    def generate_from(self, z: jax.Array, temperature: float = 1.0, y: jax.Array | None = None) -> jax.Array:
        """Means of p(x | z) for the given top group z [num, d] and the lower groups drawn from
        p(z_l | z_<l), their noise scaled by `temperature`: [num, H, W, C]."""
        keys = jax.random.split(self.make_rng("sample"), self.num_groups)
        return self._ancestral(z.reshape(-1, *self.top_shape), keys, temperature)

    def _ancestral(self, top: jax.Array, keys: jax.Array, temperature: float) -> jax.Array:
        """The top-down pass from top [num, h, w, c], group l >= 1 drawn with keys[l]."""
        def pick(l, p, q):
            if p is None:
                return top
            eps = temperature * jax.random.normal(keys[l], (top.shape[0], *self.group_shape(l)))
            return p.mean + jnp.exp(0.5 * p.log_var) * eps

        decoded, _ = self.top_down(top.shape[0], pick)
        return self.likelihood.mean(decoded)

    def group_shape(self, l: int) -> tuple[int, int, int]:
        """[h_l, w_l, c] of group l (top-down order; the top group is 0)."""
        up = 2 ** (l // self.groups_per_scale)
        h, w, c = self.top_shape
        return h * up, w * up, c

