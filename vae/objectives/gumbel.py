"""The ELBO of a categorical-latent VAE trained through the Gumbel-softmax relaxation."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from vae.objectives.base import Objective, elbo_metrics, forward


def gumbel_temperature(step, initial: float = 1.0, minimum: float = 0.5, rate: float = 1e-5):
    """tau(t) = max(minimum, initial exp(-rate t)) (Jang et al. 2017, sec. 4.3: tau0 = 1, floor
    0.5, r = 1e-5; the paper updates tau every N steps, here every step)."""
    return jnp.maximum(minimum, initial * jnp.exp(-rate * jnp.asarray(step, jnp.float32)))


@dataclasses.dataclass(frozen=True)
class GumbelSoftmaxELBO(Objective):
    """Negative ELBO of a `CategoricalVAE` with a relaxed draw in the reconstruction (Jang et al.
    2017, sec. 3):

        loss = -log p(x | y) + beta KL,   y = softmax((logits + g) / tau(t)),

    with KL = KL(q(z|x) || uniform) of the categoricals in closed form (kl='discrete', Jang et
    al.), or the relaxed one-sample estimate log q_tau(y) - log p_tau(y) of the concrete
    densities (kl='relaxed', as Maddison et al. 2017 train, here with one temperature for both). The
    reported elbo, recon and kl come from a pass with an exact one-hot draw: a bound on log p(x)
    of the discrete model, whatever the temperature.
    """

    beta: float = 1.0
    initial_temperature: float = 1.0
    min_temperature: float = 0.5
    anneal_rate: float = 1e-5
    kl: str = "discrete"
    per_example = True

    def compute(self, model, params, batch, rng, step, extra):
        rng_relaxed, rng_hard = jax.random.split(rng)
        tau = gumbel_temperature(step, self.initial_temperature, self.min_temperature, self.anneal_rate)
        log_px, kl_discrete, kl_relaxed = model.apply({"params": params}, batch["image"], tau,
                                                      rngs={"sample": rng_relaxed}, method=type(model).relaxed)
        loss_ex = -log_px + self.beta * (kl_discrete if self.kl == "discrete" else kl_relaxed)
        out = forward(model, jax.lax.stop_gradient(params), batch, rng_hard)
        metrics = elbo_metrics(batch["image"], -out.log_px_z, out.kl, loss_ex, model)
        metrics.update(temperature=tau, relaxed_recon=jax.lax.stop_gradient(-log_px))
        return jnp.mean(loss_ex), metrics, None


@dataclasses.dataclass(frozen=True)
class JointVAEObjective(Objective):
    """JointVAE (Dupont 2018, sec. 3): capacities on the continuous and discrete KLs separately,

        loss = -log p(x | z_c, y) + gamma |KL(q(z_c|x) || p(z_c)) - C_c(t)| + gamma |KL(q(z_d|x) || p(z_d)) - C_d(t)|

    with y a relaxed draw of z_d at a fixed temperature, each C rising linearly from 0 to its
    maximum over capacity_steps, C_d capped at sum_n log K_n (the most a discrete code can carry),
    and, as in the paper's code, the batch-mean KLs inside |.|. Defaults: the paper's MNIST
    setting (gamma 30, 5 nats each over 25,000 steps, temperature 0.67). The reported elbo,
    recon and kl come from a pass with exact one-hot draws.
    """

    gamma: float = 30.0
    cont_capacity: float = 5.0
    disc_capacity: float = 5.0
    capacity_steps: int = 25_000
    temperature: float = 0.67
    max_disc_capacity: float = float("inf")

    def capacities(self, step):
        """(C_c(t), C_d(t))."""
        frac = jnp.minimum(jnp.asarray(step, jnp.float32) / self.capacity_steps, 1.0)
        return frac * self.cont_capacity, jnp.minimum(frac * self.disc_capacity, self.max_disc_capacity)

    def compute(self, model, params, batch, rng, step, extra):
        rng_relaxed, rng_hard = jax.random.split(rng)
        log_px, kl_c, kl_d = model.apply({"params": params}, batch["image"], self.temperature,
                                         rngs={"sample": rng_relaxed}, method=type(model).relaxed)
        c_c, c_d = self.capacities(step)
        penalty = self.gamma * (jnp.abs(jnp.mean(kl_c) - c_c) + jnp.abs(jnp.mean(kl_d) - c_d))
        loss = jnp.mean(-log_px) + penalty
        out = forward(model, jax.lax.stop_gradient(params), batch, rng_hard)
        metrics = elbo_metrics(batch["image"], -out.log_px_z, out.kl, loss, model)
        metrics.update(kl_continuous=kl_c, kl_discrete=kl_d, capacity_continuous=c_c, capacity_discrete=c_d)
        return loss, metrics, None
