"""Normalizing-flow posteriors: q(z_K | x) = q_0(z_0 | x) pushed through z_k = f_k(z_{k-1}),

    log q(z_K | x) = log q_0(z_0 | x) - sum_k log |det df_k / dz_{k-1}|      (Rezende & Mohamed 2015, eq. 7)

with planar and radial steps (ibid., eq. 10-14) whose parameters the encoder outputs for each x
(amortized), or inverse autoregressive steps (Kingma et al. 2016, eq. 10) whose MADE networks
see a context h the encoder outputs. Every step is the identity when its parameters (planar,
radial) or its MADE's output layer (IAF, zero-initialized) are zero, so a new flow posterior
starts as the plain Gaussian one.

Shapes: z [..., batch, d] (leading sample axes allowed), per-example parameters [batch, ...].
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from vae.models.base import VAEOutput
from vae.models.distributions import DiagonalGaussian
from vae.models.vae import VAE

FLOWS = ("planar", "radial", "iaf")


def planar_step(z: jax.Array, u: jax.Array, w: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """f(z) = z + u^ tanh(w.z + b) with u^ = u + (m(w.u) - w.u) w / |w|^2, m(a) = -1 + softplus(a),
    which keeps f invertible (Rezende & Mohamed 2015, eq. 10, 12 and appendix A.1);
    log |det| = log |1 + u^.psi|, psi = (1 - tanh^2(w.z + b)) w (eq. 11-12).
    z: [..., batch, d]; u, w: [batch, d]; b: [batch] -> (f(z), log |det| [..., batch])."""
    wu = jnp.sum(w * u, axis=-1, keepdims=True)
    u_hat = u + (jax.nn.softplus(wu) - 1.0 - wu) * w / (jnp.sum(w * w, axis=-1, keepdims=True) + 1e-8)
    h = jnp.tanh(jnp.sum(w * z, axis=-1) + b)                                          # [..., batch]
    psi_u = (1.0 - h**2) * jnp.sum(w * u_hat, axis=-1)
    return z + u_hat * h[..., None], jnp.log(jnp.abs(1.0 + psi_u) + 1e-8)


def radial_step(z: jax.Array, z0: jax.Array, a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """f(z) = z + beta h(alpha, r) (z - z0), h = 1 / (alpha + r), r = |z - z0|, with alpha =
    softplus(a) > 0 and beta = -alpha + softplus(b) >= -alpha, which keeps f invertible
    (Rezende & Mohamed 2015, eq. 14 and appendix A.2); log |det| = (d - 1) log(1 + beta h) +
    log(1 + beta h + beta h' r), h' = -h^2. z: [..., batch, d]; z0: [batch, d]; a, b: [batch]."""
    alpha = jax.nn.softplus(a)
    beta = -alpha + jax.nn.softplus(b)
    diff = z - z0
    r = jnp.sqrt(jnp.sum(diff**2, axis=-1) + 1e-12)
    h = 1.0 / (alpha + r)
    d = z.shape[-1]
    log_det = (d - 1) * jnp.log1p(beta * h) + jnp.log1p(beta * h - beta * h**2 * r)
    return z + (beta * h)[..., None] * diff, log_det


def made_masks(d: int, hidden: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks of a one-hidden-layer MADE (Germain et al. 2015) over inputs ordered 1..d: hidden
    unit k has degree m_k in 1..d-1 and sees inputs i <= m_k; output j sees hidden units with
    m_k < j, so output j depends only on inputs before it. -> ([d, hidden], [hidden, d])."""
    degrees = np.arange(hidden) % max(d - 1, 1) + 1
    inputs = np.arange(1, d + 1)
    into = (inputs[:, None] <= degrees[None, :]).astype(np.float32)
    out = (degrees[:, None] < inputs[None, :]).astype(np.float32)
    if d == 1:  # nothing comes before the only input: the step depends on the context alone
        into[:] = 0.0
    return into, out


class IAFStep(nn.Module):
    """One inverse autoregressive step (Kingma et al. 2016, eq. 10): [mu, s] = MADE(z, h),
    z' = mu + sigma * z with log sigma = 3 tanh(s / 3) (a soft bound that keeps sigma in
    (e^-3, e^3)); log |det| = sum log sigma. The output layer starts at zero (identity)."""

    hidden: int

    @nn.compact
    def __call__(self, z: jax.Array, context: jax.Array) -> tuple[jax.Array, jax.Array]:
        d = z.shape[-1]
        into, out = made_masks(d, self.hidden)
        w1 = self.param("w_in", nn.initializers.lecun_normal(), (d, self.hidden))
        w2 = self.param("w_out", nn.initializers.zeros, (self.hidden, 2 * d))
        b2 = self.param("b_out", nn.initializers.zeros, (2 * d,))
        h = nn.elu(z @ (w1 * into) + nn.Dense(self.hidden, name="context")(context))
        mu, s = jnp.split(h @ (w2 * jnp.concatenate([out, out], axis=1)) + b2, 2, axis=-1)
        log_sigma = 3.0 * jnp.tanh(s / 3.0)
        return mu + jnp.exp(log_sigma) * z, jnp.sum(log_sigma, axis=-1)


@struct.dataclass
class FlowPosterior:
    """q(z_K | x) of a flow VAE. base: q_0 (DiagonalGaussian); context: the encoder's flow
    parameters (planar, radial) or IAF context [batch, P]. mean: f(base.mean), the flow's image of
    q_0's mean (not E_q[z], which has no closed form); log_var: q_0's log-variance."""

    base: DiagonalGaussian
    context: jax.Array
    mean: jax.Array
    deterministic = False

    @property
    def log_var(self) -> jax.Array:
        return self.base.log_var


def context_size(flow: str, length: int, latent_dim: int, hidden: int) -> int:
    """How many numbers per example the encoder outputs for the flow (P)."""
    per_step = {"planar": 2 * latent_dim + 1, "radial": latent_dim + 2}
    return length * per_step[flow] if flow in per_step else latent_dim


class FlowVAE(VAE):
    """A VAE whose posterior is a normalizing flow on the Gaussian q_0 (see the module docstring).

    The encoder outputs latent_dim + ceil(P / 2) means and log-variances; the first latent_dim
    of each parameterize q_0, the rest (both heads together, first P numbers) are the flow's
    per-example parameters or IAF context. flow: planar | radial | iaf; flow_length: K steps;
    flow_hidden: the MADE's hidden width (iaf). IAF steps reverse the order of z between steps.
    """

    flow: str = "planar"
    flow_length: int = 10
    flow_hidden: int = 128

    def setup(self):
        if self.flow not in FLOWS:
            raise ValueError(f"flow={self.flow!r} is not allowed; choose one of {FLOWS}")
        if self.flow == "iaf":
            self.steps = [IAFStep(self.flow_hidden, name=f"iaf_{k}") for k in range(self.flow_length)]

    def apply_flow(self, z: jax.Array, context: jax.Array) -> tuple[jax.Array, jax.Array]:
        """z_0 [..., batch, d] -> (z_K, sum_k log |det df_k/dz| [..., batch])."""
        d, total = self.latent_dim, jnp.zeros(z.shape[:-1], z.dtype)
        if self.flow == "iaf":
            for k, step in enumerate(self.steps):
                z = z[..., ::-1] if k else z
                z, log_det = step(z, jnp.broadcast_to(context, (*z.shape[:-1], context.shape[-1])))
                total = total + log_det
            return z, total
        per = context_size(self.flow, 1, d, 0)
        for k in range(self.flow_length):
            c = context[..., k * per:(k + 1) * per]
            if self.flow == "planar":
                z, log_det = planar_step(z, c[..., :d], c[..., d:2 * d], c[..., 2 * d])
            else:
                z, log_det = radial_step(z, c[..., :d], c[..., d], c[..., d + 1])
            total = total + log_det
        return z, total

    def encode(self, x: jax.Array, y: jax.Array | None = None) -> FlowPosterior:
        mean, log_var = self.encoder(self._condition_x(x, y))
        d = self.latent_dim
        p = context_size(self.flow, self.flow_length, d, self.flow_hidden)
        context = jnp.concatenate([mean[:, d:], log_var[:, d:]], axis=-1)[:, :p]
        base = DiagonalGaussian(mean[:, :d], log_var[:, :d])
        return FlowPosterior(base, context, self.apply_flow(base.mean, context)[0])

    def sample_posterior(self, posterior: FlowPosterior, rng: jax.Array, num_samples: int | None = None):
        """(z_K [(k,) batch, d], log q(z_K | x) [(k,) batch]) for z_0 ~ q_0."""
        z0 = posterior.base.sample(rng, num_samples)
        z, log_det = self.apply_flow(z0, posterior.context)
        return z, posterior.base.log_prob(z0) - log_det

    def __call__(self, x: jax.Array, y: jax.Array | None = None):
        posterior = self.encode(x, y)
        z, log_q = self.sample_posterior(posterior, self.make_rng("sample"))
        decoded = self.decode(z, y)
        kl = log_q - self.prior_log_prob(z)             # one-sample estimate: no closed form
        if self.is_initializing() and getattr(self.prior, "uses_encoder", False):
            self.prior_log_prob(z)
        return VAEOutput(posterior, z, decoded, self.log_likelihood(decoded, x), jnp.zeros_like(z), kl)

    def log_importance_weights(self, x: jax.Array, num_samples: int, y: jax.Array | None = None,
                               stop_posterior_grad: bool = False) -> jax.Array:
        """log p(x, z_i) - log q(z_i | x) with the flow's log-determinant: [k, batch]."""
        if stop_posterior_grad:
            raise NotImplementedError("DReG needs log q at a given z with q's parameters held fixed; a flow "
                                      "posterior's density is only known along its own samples")
        posterior = self.encode(x, y)
        z, log_q = self.sample_posterior(posterior, self.make_rng("sample"), num_samples)
        return self.log_likelihood(self.decode(z, y), x) + self.prior_log_prob(z) - log_q


def encoder_latent_dim(flow: str, length: int, latent_dim: int, hidden: int) -> int:
    """The encoder's output size per head for a FlowVAE: latent_dim + ceil(P / 2)."""
    return latent_dim + math.ceil(context_size(flow, length, latent_dim, hidden) / 2)
