"""The two-stage VAE's second stage (Dai & Wipf 2019, sec. 4): a small VAE fitted to the first
model's latents, whose own prior N(0, I) is then pushed through its decoder. Its Gaussian decoder
has one learned variance gamma (eq. 6), which lets the second stage match the aggregate
posterior's density closely; the paper's second stage is fully connected with latent size equal
to the data's (kappa = d) and is fitted on samples z ~ q(z|x) of the first stage.

Sampling takes u ~ temperature * N(0, I) and returns the decoder's mean (the paper's
generation: with gamma small the decoder's noise is negligible). Left out: the paper's 3 x 1024
hidden layers and its learning-rate schedule (here 2 x 256 and constant Adam); no log-density
is given (there is an ELBO, reported by fitting as train_elbo / held_out_elbo). A change from
the paper: the encoder's log-variance starts at -6 rather than 0; from 0 the second stage
collapsed onto its prior on the VAE's latents (gamma stayed at 1, every sample the same point),
from -6 it reached gamma 0.2 with samples spread like the data (benchmarks/NOTES.md, "Samplers").
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vae.samplers.base import LatentSampler, SamplerError, check_fit_on, positive, register_sampler
from vae.samplers.fitting import fit_by_gradient, likelihood_report

INITIAL_LOG_VAR = -6.0


class SecondStage(nn.Module):
    """z [n, d] -> per-row negative ELBO [n] (Dai & Wipf 2019, eq. 6); `decode` maps u [n, latent]
    to the mean of z [n, d]."""

    dim: int
    latent: int
    hidden: tuple[int, ...] = (256, 256)

    def setup(self):
        # the log-variance half of the head starts at -6: with 0 (noise as large as the prior's) the
        # second stage collapsed onto its prior in every fit here (gamma stayed 1, every sample the mean)
        head_bias = lambda key, shape, dtype=jnp.float32: jnp.concatenate(  # noqa: E731
            [jnp.zeros((self.latent,), dtype), jnp.full((self.latent,), INITIAL_LOG_VAR, dtype)])
        self.enc = [nn.Dense(h) for h in self.hidden] + [nn.Dense(2 * self.latent, bias_init=head_bias)]
        self.dec = [nn.Dense(h) for h in self.hidden] + [nn.Dense(self.dim)]
        self.log_gamma = self.param("log_gamma", nn.initializers.zeros_init(), ())

    @staticmethod
    def _mlp(layers, h: jax.Array) -> jax.Array:
        for layer in layers[:-1]:
            h = nn.relu(layer(h))
        return layers[-1](h)

    def decode(self, u: jax.Array) -> jax.Array:
        return self._mlp(self.dec, u)

    def __call__(self, z: jax.Array, key: jax.Array) -> jax.Array:
        mean, log_var = jnp.split(self._mlp(self.enc, z), 2, axis=-1)
        u = mean + jnp.exp(0.5 * log_var) * jax.random.normal(key, mean.shape)
        log_lik = (-0.5 * jnp.sum((z - self.decode(u)) ** 2, axis=-1) / jnp.exp(self.log_gamma)
                   - 0.5 * self.dim * (self.log_gamma + math.log(2 * math.pi)))
        kl = 0.5 * jnp.sum(mean ** 2 + jnp.exp(log_var) - 1.0 - log_var, axis=-1)
        return kl - log_lik


@register_sampler
@dataclasses.dataclass(frozen=True)
class TwoStageSampler(LatentSampler):
    """A second VAE on the latents (Dai & Wipf 2019). latent: its latent size (0: the data's, the
    paper's kappa = d); fit_on: 'sample' (z ~ q(z|x), the paper's) or 'mean'; check_every: early
    stopping on the held-out ELBO (0: off)."""

    name = "two_stage"
    summary = "a second small VAE fitted to the latents (learned decoder variance)"
    paper = "Dai & Wipf 2019, Diagnosing and Enhancing VAE Models, sec. 4 and eq. 6"

    latent: int = 0
    hidden: tuple[int, ...] = (256, 256)
    steps: int = 3000
    batch_size: int = 256
    learning_rate: float = 1e-3
    held_out: float = 0.1
    check_every: int = 100
    fit_on: str = "sample"

    def __post_init__(self):
        for name in ("steps", "batch_size", "learning_rate"):
            positive(name, getattr(self, name))
        if self.latent < 0:
            raise SamplerError(f"latent={self.latent} must be >= 0 (0: the latents' own size)")
        check_fit_on(self.fit_on)

    def network(self, dim: int) -> SecondStage:
        return SecondStage(dim, self.latent or dim, tuple(self.hidden))

    def fit(self, data, key):
        data = np.asarray(data, np.float32)
        if data.ndim != 2:
            raise SamplerError(f"two_stage fits [N, d] latents, got shape {data.shape}")
        mean, std = data.mean(0), data.std(0) + 1e-6
        x = (data - mean) / std
        net = self.network(x.shape[1])
        k_init, k_noise, k_fit = jax.random.split(key, 3)
        params = net.init(k_init, jnp.asarray(x[:2]), k_noise)["params"]
        params, report = fit_by_gradient(lambda p, b, k: net.apply({"params": p}, b, k), params, x, k_fit,
                                         steps=self.steps, batch_size=self.batch_size,
                                         learning_rate=self.learning_rate, held_out=self.held_out,
                                         check_every=self.check_every)
        shift = float(np.sum(np.log(std)))   # the ELBO of z, not of the standardized z
        report = {**likelihood_report(report, "elbo", shift), "gamma": float(np.exp(params["log_gamma"]))}
        return {"mean": mean, "std": std, "network": params}, report

    def sample(self, state, key, num, temperature=1.0):
        dim = state["mean"].shape[-1]
        net = self.network(dim)
        latent = self.latent or dim
        u = temperature * jax.random.normal(key, (num, latent))
        return net.apply({"params": state["network"]}, u, method=SecondStage.decode) * state["std"] + state["mean"]
