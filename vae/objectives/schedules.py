"""KL-weight schedules and free bits, as optax-style schedules: functions of the step.

Each schedule maps step -> a multiplier in [0, 1] of the KL weight beta, so they compose
with every objective: KL weight at step t = beta * schedule(t).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def constant_kl_schedule() -> optax.Schedule:
    return lambda step: jnp.ones((), jnp.float32)


def linear_kl_warmup(warmup_steps: int) -> optax.Schedule:
    """KL annealing / warm-up (Bowman et al. 2016; Sønderby et al. 2016): 0 -> 1 linearly over
    `warmup_steps`, then 1."""
    if warmup_steps <= 0:
        return constant_kl_schedule()
    return optax.linear_schedule(0.0, 1.0, warmup_steps)


def cyclical_kl_schedule(total_steps: int, num_cycles: int = 4, ratio: float = 0.5) -> optax.Schedule:
    """Cyclical annealing (Fu et al. 2019, eq. 5 with the linear f): the run is split into
    `num_cycles` cycles (M = 4); within each, the weight rises linearly from 0 to 1 over the
    first `ratio` (R = 0.5) of the cycle and stays at 1 for the rest."""
    period = max(total_steps / num_cycles, 1.0)

    def schedule(step):
        tau = jnp.mod(jnp.asarray(step, jnp.float32), period) / period
        return jnp.minimum(tau / ratio, 1.0)

    return schedule


def make_kl_schedule(kind: str, *, total_steps: int, warmup_steps: int = 0, num_cycles: int = 4,
                     ratio: float = 0.5) -> optax.Schedule:
    """kind: 'constant', 'linear' (warm-up over warmup_steps) or 'cyclical'."""
    if kind == "constant":
        return constant_kl_schedule()
    if kind == "linear":
        return linear_kl_warmup(warmup_steps)
    if kind == "cyclical":
        return cyclical_kl_schedule(total_steps, num_cycles, ratio)
    raise ValueError(f"kl schedule {kind!r} is not one of 'constant', 'linear', 'cyclical'")


def free_bits_kl(kl_per_dim: jax.Array, free_bits: float, group_size: int = 1) -> jax.Array:
    """Free bits (Kingma et al. 2016, eq. 15): the KL of each group of `group_size` latent
    dimensions, averaged over the minibatch, is replaced by max(lambda, KL_group), so no group
    is pushed below `free_bits` nats. kl_per_dim: [batch, d] -> the per-example penalty [batch]
    whose batch mean equals sum_groups max(lambda, E_batch KL_group).
    """
    if free_bits <= 0:
        return jnp.sum(kl_per_dim, axis=-1)
    b, d = kl_per_dim.shape
    if d % group_size:
        raise ValueError(f"free-bits group size {group_size} does not divide the latent size {d}")
    groups = kl_per_dim.reshape(b, d // group_size, group_size).sum(-1)     # [b, G]
    mean_groups = jnp.mean(groups, axis=0)                                   # [G]
    # below the threshold the group contributes the constant lambda (no gradient), above it its KL
    clamped = jnp.where(mean_groups > free_bits, groups, jax.lax.stop_gradient(jnp.zeros_like(groups) + free_bits))
    return jnp.sum(clamped, axis=-1)
