"""The Hamiltonian VAE (Caterini et al. 2018): the Gaussian posterior's sample is moved by K
tempered leapfrog steps of Hamiltonian dynamics on U(z) = -log p(x, z), which makes the bound
tighter without a density to evaluate at arbitrary z.

With rho_0 ~ N(0, I / beta_0), K leapfrog steps of per-dimension size eps, and after step k the
momentum scaled by sqrt(beta_{k-1} / beta_k) (quadratic schedule 1 / sqrt(beta_k) = (1 - 1 /
sqrt(beta_0)) k^2 / K^2 + 1 / sqrt(beta_0), so beta_K = 1), the map (z_0, rho_0) -> (z_K, rho_K)
has log-Jacobian (d / 2) log beta_0, and

    log p(x) >= E[ log p(x, z_K) + log N(rho_K; 0, I) - log q_0(z_0 | x) - log N(rho_0; 0, I / beta_0) + d/2 log beta_0 ]

(Caterini et al. 2018, sec. 3-4). eps (per dimension) and beta_0 are learned.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae.models.base import VAEOutput
from vae.models.vae import VAE

LOG_2PI = math.log(2 * math.pi)


def tempering_schedule(beta0: jax.Array, steps: int) -> jax.Array:
    """beta_k for k = 0..K, quadratic in k for 1 / sqrt(beta_k): [K + 1]."""
    k = jnp.arange(steps + 1, dtype=jnp.float32)
    inv_sqrt = (1 - 1 / jnp.sqrt(beta0)) * k**2 / steps**2 + 1 / jnp.sqrt(beta0)
    return inv_sqrt ** -2


class HamiltonianVAE(VAE):
    """A VAE whose posterior sample is refined by `leapfrog_steps` tempered leapfrog steps (see
    the module docstring). Learned: log eps [d] (init log `step_size`) and beta_0 = sigmoid(b)
    (init `beta0`). `encode` returns q_0 (the Gaussian before the dynamics); `kl` in the output is
    -(bound - log p(x|z_K)), a one-sample estimate."""

    leapfrog_steps: int = 5
    step_size: float = 0.01
    beta0: float = 0.3

    def setup(self):
        self.log_eps = self.param("log_step_size", nn.initializers.constant(math.log(self.step_size)),
                                  (self.latent_dim,))
        self.beta0_logit = self.param("beta0_logit", nn.initializers.constant(math.log(self.beta0 / (1 - self.beta0))),
                                      ())

    def log_joint(self, z: jax.Array, x: jax.Array) -> jax.Array:
        """log p(x, z) = log p(x | z) + log p(z): z [..., batch, d] -> [..., batch]."""
        return self.log_likelihood(self.decode(z), x) + self.prior_log_prob(z)

    def _grad_u(self, z: jax.Array, x: jax.Array) -> jax.Array:
        """dU/dz for U = -log p(x, z), each sample's own (the samples do not interact)."""
        (grad,) = nn.grad(lambda mdl, z: -jnp.sum(mdl.log_joint(z, x)), self, z)
        return grad

    def flow(self, x: jax.Array, z0: jax.Array, gamma0: jax.Array):
        """(z_0, standard normal gamma_0) -> (z_K, rho_K, the bound's terms other than log q_0 and
        log p(x, z_K): log N(rho_K; 0, I) - log N(rho_0; 0, I / beta_0) + d/2 log beta_0)."""
        eps, beta0 = jnp.exp(self.log_eps), jax.nn.sigmoid(self.beta0_logit)
        betas = tempering_schedule(beta0, self.leapfrog_steps)
        rho0 = gamma0 / jnp.sqrt(beta0)
        z, rho = z0, rho0
        for k in range(1, self.leapfrog_steps + 1):
            rho = rho - 0.5 * eps * self._grad_u(z, x)
            z = z + eps * rho
            rho = (rho - 0.5 * eps * self._grad_u(z, x)) * jnp.sqrt(betas[k - 1] / betas[k])
        d = z.shape[-1]
        log_n_rho_k = -0.5 * jnp.sum(rho**2, -1) - 0.5 * d * LOG_2PI
        log_n_rho_0 = -0.5 * beta0 * jnp.sum(rho0**2, -1) - 0.5 * d * LOG_2PI + 0.5 * d * jnp.log(beta0)
        return z, rho, log_n_rho_k - log_n_rho_0 + 0.5 * d * jnp.log(beta0)

    def _bound_terms(self, x: jax.Array, y, num_samples: int | None):
        q = self.encode(x, y)
        rng_z, rng_rho = jax.random.split(self.make_rng("sample"))
        z0 = q.sample(rng_z, num_samples)
        z, _, extra = self.flow(x, z0, jax.random.normal(rng_rho, z0.shape, z0.dtype))
        return q, z0, z, extra

    def __call__(self, x: jax.Array, y: jax.Array | None = None) -> VAEOutput:
        q, z0, z, extra = self._bound_terms(x, y, None)
        decoded = self.decode(z, y)
        log_px_z = self.log_likelihood(decoded, x)
        kl = q.log_prob(z0) - self.prior_log_prob(z) - extra
        return VAEOutput(q, z, decoded, log_px_z, jnp.zeros_like(z), kl)

    def log_importance_weights(self, x: jax.Array, num_samples: int, y: jax.Array | None = None,
                               stop_posterior_grad: bool = False) -> jax.Array:
        """The bound's integrand for each of k samples: [k, batch]."""
        if stop_posterior_grad:
            raise NotImplementedError("DReG needs log q at a given z; the Hamiltonian posterior's density is "
                                      "only known along its own samples")
        q, z0, z, extra = self._bound_terms(x, y, num_samples)
        return self.log_joint(z, x) + extra - q.log_prob(z0)
