"""The Riemannian Hamiltonian VAE: the metric against a direct sum, the generalized leapfrog
against its defining properties (volume-preserving, reversible, the plain leapfrog for G = I),
and the bound: with a vanishing step it is the plain VAE's one-sample ELBO."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vae.config import ModelConfig
from vae.models.riemannian import generalized_leapfrog, inverse_metric, kinetic
from vae.step import create_train_state
from vae.variants import build_model

SHAPE = (4, 4, 1)
RNG = np.random.default_rng(0)
CENTROIDS = jnp.asarray(RNG.normal(size=(3, 2)), jnp.float32)
LOWER = np.tril(RNG.normal(size=(3, 2, 2))) + 2 * np.eye(2)
M = jnp.asarray(LOWER @ np.swapaxes(LOWER, -1, -2), jnp.float32)
A = jnp.asarray([[2.0, 0.5], [0.5, 1.0]])


def g_inv(z):
    return inverse_metric(z, CENTROIDS, M, 1.5, 0.01)


def grad_u(z):  # U(z) = 1/2 z^T A z
    return z @ A


def test_inverse_metric_is_the_weighted_sum_of_its_matrices():
    z = np.asarray([[0.3, -0.2], [1.5, 0.7]], np.float64)
    want = np.stack([sum(np.asarray(M[n], np.float64) * np.exp(-np.sum((zi - np.asarray(CENTROIDS[n])) ** 2) / 1.5**2)
                         for n in range(3)) + 0.01 * np.eye(2) for zi in z])
    np.testing.assert_allclose(g_inv(jnp.asarray(z, jnp.float32)), want, rtol=1e-5)


@jax.jit
def _leapfrog(v, eps):
    z, rho = v[:2], v[2:]
    z2, rho2, _ = generalized_leapfrog(z, rho, grad_u(z), grad_u, g_inv, eps, fixed_point_steps=12)
    return jnp.concatenate([z2, rho2])


def test_generalized_leapfrog_preserves_volume_and_is_reversible():
    v = jnp.asarray([0.4, -0.3, 0.9, 0.5])
    eps = jnp.float32(0.1)
    jac = jax.jacfwd(_leapfrog)(v, eps)
    np.testing.assert_allclose(jnp.linalg.det(jac), 1.0, atol=1e-4)
    out = _leapfrog(v, eps)
    assert float(jnp.max(jnp.abs(out - v))) > 0.05                                    # it moved
    back = _leapfrog(jnp.concatenate([out[:2], -out[2:]]), eps)
    np.testing.assert_allclose(back, jnp.concatenate([v[:2], -v[2:]]), atol=1e-5)

    def energy(w):
        return 0.5 * w[:2] @ A @ w[:2] + kinetic(g_inv(w[:2]), w[2:])
    errors = [abs(float(energy(_leapfrog(v, jnp.float32(e))) - energy(v))) for e in (0.02, 0.01)]
    assert 6 < errors[0] / errors[1] < 10                     # a second-order integrator: O(eps^3) per step


def test_with_the_identity_metric_it_is_the_plain_leapfrog():
    z, rho, eps = jnp.asarray([0.4, -0.3]), jnp.asarray([0.9, 0.5]), 0.1
    identity = lambda zz: jnp.broadcast_to(jnp.eye(2), (*zz.shape, 2))  # noqa: E731
    z2, rho2, _ = generalized_leapfrog(z, rho, grad_u(z), grad_u, identity, eps)
    r = rho - 0.5 * eps * grad_u(z)
    z_plain = z + eps * r
    np.testing.assert_allclose(z2, z_plain, rtol=1e-6)
    np.testing.assert_allclose(rho2, r - 0.5 * eps * grad_u(z_plain), rtol=1e-6)


@pytest.fixture(scope="module")
def rhvae():
    model = build_model(ModelConfig(name="rhvae", latent_dim=3, hidden=(8,), flow_length=1), SHAPE)
    model = model.clone(metric_hidden=8)
    params = create_train_state(model, optax.adam(1e-3), SHAPE, seed=0).params
    x = (jax.random.uniform(jax.random.PRNGKey(0), (4, *SHAPE)) > 0.5).astype(jnp.float32)
    return model, params, x


def test_vanishing_steps_give_the_plain_one_sample_elbo(rhvae):
    """rho_0 ~ N(0, G(z_0) / beta_0) tempered back to N(0, G(z_0)): the momentum terms cancel."""
    model, params, x = rhvae
    still = model.clone(step_size=0.0)
    out = still.apply({"params": params}, x, rngs={"sample": jax.random.PRNGKey(1)})
    plain_kl = out.posterior.log_prob(out.z) - still.apply({"params": params}, out.z,
                                                           method=type(still).prior_log_prob)
    np.testing.assert_allclose(out.kl, plain_kl, rtol=1e-4, atol=1e-4)


def test_the_bound_and_its_importance_weights_are_finite_and_move_z(rhvae):
    model, params, x = rhvae
    moving = model.clone(step_size=0.3)
    out = moving.apply({"params": params}, x, rngs={"sample": jax.random.PRNGKey(1)})
    z0 = out.posterior.sample(jax.random.split(jax.random.PRNGKey(1))[0])
    assert float(jnp.max(jnp.abs(out.z - z0))) > 1e-3
    assert np.all(np.isfinite(out.kl)) and np.all(np.isfinite(out.log_px_z))
    lw = moving.apply({"params": params}, x, 5, rngs={"sample": jax.random.PRNGKey(2)},
                      method=type(moving).log_importance_weights)
    assert lw.shape == (5, 4) and np.all(np.isfinite(lw))
