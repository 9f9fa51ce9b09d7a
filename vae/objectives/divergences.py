"""Sample-based divergences between the aggregate posterior q(z) and the prior p(z): the maximum
mean discrepancy (WAE, InfoVAE) and the sliced Wasserstein distance (SWAE). Both take two
batches of codes [n, d] and return a scalar; both are differentiable in their inputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp

KERNELS = ("imq", "rbf")


def _squared_distances(a: jax.Array, b: jax.Array) -> jax.Array:
    """||a_i - b_j||^2: [n, m]. The expanded form, clipped at 0 against float cancellation."""
    d2 = jnp.sum(a**2, -1)[:, None] + jnp.sum(b**2, -1)[None, :] - 2.0 * a @ b.T
    return jnp.maximum(d2, 0.0)


def kernel_matrix(a: jax.Array, b: jax.Array, kernel: str, scale: float) -> jax.Array:
    """k(a_i, b_j): [n, m]. imq: C / (C + ||a - b||^2) (Tolstikhin et al. 2018, sec. 4);
    rbf: exp(-||a - b||^2 / C); C = `scale`."""
    d2 = _squared_distances(a, b)
    if kernel == "imq":
        return scale / (scale + d2)
    if kernel == "rbf":
        return jnp.exp(-d2 / scale)
    raise ValueError(f"kernel={kernel!r} is not allowed; choose one of {', '.join(map(repr, KERNELS))}")


def default_kernel_scale(latent_dim: int, prior_variance: float = 1.0) -> float:
    """C = 2 d sigma^2, the expected squared distance between two draws of N(0, sigma^2 I_d):
    the WAE paper's choice for its IMQ kernel (sec. 4), used here for both kernels."""
    return 2.0 * latent_dim * prior_variance


def mmd(z_q: jax.Array, z_p: jax.Array, kernel: str = "imq", scale: float | None = None) -> jax.Array:
    """The unbiased estimate of MMD^2 between samples z_q [n, d] and z_p [m, d] (Gretton et al.
    2012, eq. 3; WAE's algorithm 2):

        1/(n(n-1)) sum_{i != j} k(q_i, q_j) + 1/(m(m-1)) sum_{i != j} k(p_i, p_j) - 2/(nm) sum_{i,j} k(q_i, p_j)

    scale: the kernel's C (default 2 d, `default_kernel_scale`). Can be slightly negative."""
    n, m = z_q.shape[0], z_p.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"the unbiased MMD needs at least 2 samples on each side; got {n} and {m}")
    c = default_kernel_scale(z_q.shape[-1]) if scale is None else scale

    def within(z):
        k = kernel_matrix(z, z, kernel, c)
        return (jnp.sum(k) - jnp.sum(jnp.diagonal(k))) / (z.shape[0] * (z.shape[0] - 1))

    cross = jnp.sum(kernel_matrix(z_q, z_p, kernel, c)) / (n * m)
    return within(z_q) + within(z_p) - 2.0 * cross


def prior_draws(rng: jax.Array, z: jax.Array) -> jax.Array:
    """As many draws of the reference N(0, I) as codes in the batch: [n, d] for z [n, d]."""
    return jax.random.normal(rng, z.shape, z.dtype)


def random_directions(rng: jax.Array, num: int, dim: int) -> jax.Array:
    """`num` directions drawn uniformly on the unit sphere S^{dim-1}: [num, dim]."""
    v = jax.random.normal(rng, (num, dim))
    return v / jnp.linalg.norm(v, axis=-1, keepdims=True)


def wasserstein_1d(a: jax.Array, b: jax.Array, p: float = 2.0) -> jax.Array:
    """W_p^p between the empirical distributions of equal-size samples along the last axis
    [..., n] (sorted matching): mean_i |a_(i) - b_(i)|^p, batched over leading axes."""
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"1-D Wasserstein by sorting needs equal sample sizes; got {a.shape[-1]} and {b.shape[-1]}")
    return jnp.mean(jnp.abs(jnp.sort(a, axis=-1) - jnp.sort(b, axis=-1)) ** p, axis=-1)


def sliced_wasserstein(z_q: jax.Array, z_p: jax.Array, rng: jax.Array, num_projections: int = 50,
                       p: float = 2.0) -> jax.Array:
    """The Monte-Carlo sliced Wasserstein distance SW_p^p (Kolouri et al. 2019, eq. 10-11):
    the mean over `num_projections` random directions theta of W_p^p between the projections
    <theta, z_q> and <theta, z_p>. z_q, z_p: [n, d] (equal n)."""
    theta = random_directions(rng, num_projections, z_q.shape[-1])
    return jnp.mean(wasserstein_1d(theta @ z_q.T, theta @ z_p.T, p))
