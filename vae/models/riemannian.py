"""The Riemannian Hamiltonian VAE (Chadebec et al. 2020, "Geometry-Aware Hamiltonian
Variational Auto-Encoder"): the Hamiltonian VAE's dynamics with a position-dependent mass
matrix, a Riemannian metric G(z) learned with the model. Its inverse is (eq. 9)

    G^{-1}(z) = sum_n L_n L_n^T exp(-|z - c_n|^2 / T^2) + lambda I,

with c_n the posterior means of the batch and L_n lower-triangular matrices a metric network
reads from x_n. The Hamiltonian is H(z, rho) = -log p(x, z) + 1/2 log((2 pi)^d det G(z)) +
1/2 rho^T G^{-1}(z) rho, integrated by the generalized leapfrog (Girolami & Calderhead 2011,
eq. 16-18; its two implicit equations solved by fixed-point iterations), with the HVAE's
tempering between steps. With rho_0 ~ N(0, G(z_0) / beta_0) the bound is

    log p(x) >= E[ log p(x, z_K) + log N(rho_K; 0, G(z_K)) - log q_0(z_0|x)
                  - log N(rho_0; 0, G(z_0)/beta_0) + d/2 log beta_0 ],

where the last two terms are -log N(gamma; 0, I) + 1/2 log det G(z_0) for the standard normal
gamma that rho_0 is drawn from. Leaves out: the metric over all training centroids kept after
training (here the batch in hand defines it, in evaluation too; any metric gives a valid bound,
but a test image's estimate depends on the rest of its batch) and the paper's Riemannian
sampler; the fixed-point solves are not run to convergence, so the map is only nearly
volume-preserving, as in the paper.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vae.models.hamiltonian import HamiltonianVAE, tempering_schedule

LOG_2PI = math.log(2 * math.pi)


class MetricNet(nn.Module):
    """x [batch, ...] -> lower-triangular L [batch, d, d] with a positive diagonal (exp of a
    head), so L L^T is positive definite: one hidden layer of `hidden` units, as the paper's."""

    latent_dim: int
    hidden: int = 400

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        d = self.latent_dim
        h = nn.relu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)))
        diag = nn.Dense(d, name="diag")(h)
        lower = nn.Dense(d * (d - 1) // 2, name="lower")(h)
        rows, cols = np.tril_indices(d, -1)
        strict = jnp.zeros((x.shape[0], d, d), h.dtype).at[:, rows, cols].set(lower)
        return strict + jnp.exp(diag)[..., None] * jnp.eye(d, dtype=h.dtype)


def inverse_metric(z: jax.Array, centroids: jax.Array, m: jax.Array, temperature: float,
                   regularization: float) -> jax.Array:
    """G^{-1}(z) (eq. 9): z [..., d], centroids [N, d], m = L L^T [N, d, d] -> [..., d, d]."""
    # |z - c|^2 expanded: the [..., N, d] difference would not fit for k = 1000 IWAE samples.
    sq = jnp.sum(z**2, -1)[..., None] - 2 * z @ centroids.T + jnp.sum(centroids**2, -1)
    w = jnp.exp(-jnp.maximum(sq, 0.0) / temperature**2)
    return jnp.einsum("...n,nij->...ij", w, m) + regularization * jnp.eye(z.shape[-1], dtype=z.dtype)


def cholesky(a: jax.Array) -> jax.Array:
    """Lower Cholesky factor of positive-definite a [..., d, d], one column per iteration of a
    fori_loop in plain jnp (Cholesky-Banachiewicz, columns selected by one-hot products). Not
    jnp.linalg.cholesky: on XLA:CPU (jax 0.10.2) a training step that differentiates through
    several of its LAPACK calls hangs at random (see benchmarks/NOTES.md)."""
    d = a.shape[-1]
    eye = jnp.eye(d, dtype=a.dtype)
    idx = jnp.arange(d)

    def column(j, lower):
        e = eye[j]
        row = jnp.einsum("...jk,j->...k", lower, e) * (idx < j)                   # L[j, :j]
        pivot = jnp.sqrt(jnp.einsum("...ij,i,j->...", a, e, e) - jnp.sum(row**2, -1))
        rest = jnp.einsum("...ij,j->...i", a, e) - jnp.einsum("...ik,...k->...i", lower, row)
        col = jnp.where(idx > j, rest / pivot[..., None], jnp.where(idx == j, pivot[..., None], 0.0))
        return lower + col[..., :, None] * e

    return jax.lax.fori_loop(0, d, column, jnp.zeros_like(a))


def solve_upper(u: jax.Array, b: jax.Array) -> jax.Array:
    """x with u x = b for upper-triangular u [..., d, d], b [..., d], by back substitution in a
    fori_loop (plain jnp, for the reason `cholesky` gives)."""
    d = b.shape[-1]
    eye = jnp.eye(d, dtype=b.dtype)

    def entry(t, x):
        e = eye[d - 1 - t]
        u_row = jnp.einsum("...ij,i->...j", u, e)
        value = (jnp.sum(b * e, -1) - jnp.sum(u_row * x, -1)) / jnp.sum(u_row * e, -1)
        return x + value[..., None] * e

    return jax.lax.fori_loop(0, d, entry, jnp.zeros_like(b))


def half_log_det_from_cholesky(chol: jax.Array) -> jax.Array:
    """1/2 log det G for the Cholesky factor C of G^{-1} (C C^T = G^{-1}): -sum log diag C, [...]."""
    return -jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), -1)


def half_log_det_metric(g_inv: jax.Array) -> jax.Array:
    """1/2 log det G = -1/2 log det G^{-1}: [..., d, d] -> [...]."""
    return half_log_det_from_cholesky(cholesky(g_inv))


def kinetic(g_inv: jax.Array, rho: jax.Array) -> jax.Array:
    """1/2 log det G + 1/2 rho^T G^{-1} rho, the Hamiltonian's z-dependent terms besides U: [...]."""
    return half_log_det_metric(g_inv) + 0.5 * jnp.einsum("...i,...ij,...j->...", rho, g_inv, rho)


def generalized_leapfrog(z: jax.Array, rho: jax.Array, grad_u_z: jax.Array, grad_u: Callable,
                         g_inv_fn: Callable, eps: float, fixed_point_steps: int = 3):
    """One step of the generalized leapfrog (Girolami & Calderhead 2011, eq. 16-18) for
    H = U(z) + kinetic(G^{-1}(z), rho): (z, rho) [..., d], grad_u_z = dU/dz at z (passed in so
    consecutive steps share it), grad_u: z -> dU/dz, g_inv_fn: z -> G^{-1}(z) [..., d, d].
    Returns (z', rho', dU/dz at z')."""

    def grad_kinetic(zz, r):
        return jax.grad(lambda zz: jnp.sum(kinetic(g_inv_fn(zz), r)))(zz)

    rho_half = rho
    for _ in range(fixed_point_steps):  # rho' = rho - eps/2 dH/dz(z, rho')
        rho_half = rho - 0.5 * eps * (grad_u_z + grad_kinetic(z, rho_half))
    velocity0 = jnp.einsum("...ij,...j->...i", g_inv_fn(z), rho_half)
    z_new = z
    for _ in range(fixed_point_steps):  # z' = z + eps/2 (G^{-1}(z) + G^{-1}(z')) rho'
        z_new = z + 0.5 * eps * (velocity0 + jnp.einsum("...ij,...j->...i", g_inv_fn(z_new), rho_half))
    grad_u_new = grad_u(z_new)
    rho_new = rho_half - 0.5 * eps * (grad_u_new + grad_kinetic(z_new, rho_half))
    return z_new, rho_new, grad_u_new


class RiemannianHamiltonianVAE(HamiltonianVAE):
    """A VAE whose posterior sample is moved by `leapfrog_steps` tempered generalized-leapfrog
    steps under the learned metric (see the module docstring). Fixed, the paper's code's
    defaults: step size 1e-3, sqrt(beta_0) = 0.3, T = 1.5, lambda = 0.01, 3 fixed-point
    iterations. Learned: the encoder, decoder and the metric network. `encode` returns q_0; `kl`
    in the output is -(bound - log p(x|z_K)), a one-sample estimate."""

    leapfrog_steps: int = 3
    step_size: float = 1e-3
    beta0: float = 0.09
    metric_temperature: float = 1.5
    metric_regularization: float = 0.01
    fixed_point_steps: int = 3
    metric_hidden: int = 400

    def setup(self):
        self.metric = MetricNet(self.latent_dim, self.metric_hidden)

    def _bound_terms(self, x: jax.Array, y, num_samples: int | None):
        q = self.encode(x, y)
        lower = self.metric(x)
        m = lower @ jnp.swapaxes(lower, -1, -2)

        def g_inv_fn(z):
            return inverse_metric(z, q.mean, m, self.metric_temperature, self.metric_regularization)

        rng_z, rng_rho = jax.random.split(self.make_rng("sample"))
        z0 = q.sample(rng_z, num_samples)
        gamma = jax.random.normal(rng_rho, z0.shape, z0.dtype)
        chol0 = cholesky(g_inv_fn(z0))
        # rho_0 = C^{-T} gamma / sqrt(beta_0) with C C^T = G^{-1}: covariance G / beta_0.
        rho = solve_upper(jnp.swapaxes(chol0, -1, -2), gamma)
        rho = rho / math.sqrt(self.beta0)
        betas = tempering_schedule(jnp.float32(self.beta0), self.leapfrog_steps)
        z, grad_u_z = z0, self._grad_u(z0, x)
        for k in range(1, self.leapfrog_steps + 1):
            z, rho, grad_u_z = generalized_leapfrog(z, rho, grad_u_z, lambda zz: self._grad_u(zz, x), g_inv_fn,
                                                    self.step_size, self.fixed_point_steps)
            rho = rho * jnp.sqrt(betas[k - 1] / betas[k])
        d = z.shape[-1]
        log_n_rho_k = -kinetic(g_inv_fn(z), rho) - 0.5 * d * LOG_2PI
        log_n_gamma = -0.5 * jnp.sum(gamma**2, -1) - 0.5 * d * LOG_2PI
        return q, z0, z, log_n_rho_k - log_n_gamma + half_log_det_from_cholesky(chol0)
