"""Distributions on the sphere: the log Bessel function against scipy in float64, densities that
integrate to 1 on S^2, KLs against Monte Carlo, and the samplers against closed-form moments."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.special import ive

from vae.config import Config, ModelConfig, apply_overrides
from vae.errors import ConfigError
from vae.models.spherical import PowerSpherical, VonMisesFisher, log_bessel_iv, log_sphere_area
from vae.step import create_train_state
from vae.variants import build_model


def test_log_bessel_matches_scipy_and_stays_finite_for_large_kappa_and_dimension():
    x = np.logspace(-3, 4, 120)
    for v in (0.0, 0.5, 1.5, 4.0, 19.5, 49.5):
        ref = np.log(ive(v, x)) + x                         # float64 reference
        got = jax.jit(lambda x: log_bessel_iv(v, x))(jnp.asarray(x, jnp.float32))
        np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-5)
        grad = jax.vmap(jax.grad(lambda x: log_bessel_iv(v, x)))(jnp.asarray(x, jnp.float32))
        np.testing.assert_allclose(grad, ive(v + 1, x) / ive(v, x) + v / x, rtol=1e-4, atol=1e-5)
    # where scipy's ive underflows (tiny x, order 500) or I_v overflows float32 (x = 1e5)
    extreme = log_bessel_iv(499.0, jnp.asarray([1e-3, 1.0, 1e5]))
    assert np.all(np.isfinite(extreme)) and extreme[0] < -3000 and extreme[2] > 9.9e4


def _sphere_integral(log_density):
    """int over S^2 of exp(log_density(z)) by the midpoint rule in (theta, phi)."""
    n = 300
    theta = (np.arange(n) + 0.5) * np.pi / n
    phi = (np.arange(2 * n) + 0.5) * np.pi / n
    t, p = np.meshgrid(theta, phi, indexing="ij")
    z = np.stack([np.cos(t), np.sin(t) * np.cos(p), np.sin(t) * np.sin(p)], -1).reshape(-1, 3)
    dens = np.exp(np.asarray(log_density(jnp.asarray(z, jnp.float32)), np.float64)).reshape(n, 2 * n)
    return float((dens * np.sin(t)).sum() * (np.pi / n) ** 2)


@pytest.mark.parametrize("cls", [VonMisesFisher, PowerSpherical])
def test_densities_integrate_to_one_on_s2_and_kl_matches_monte_carlo(cls):
    mu = jnp.asarray([0.6, 0.0, 0.8])
    log_prob = jax.jit(lambda z, kappa: cls(mu, kappa).log_prob(z))       # compiled once for every kappa
    sample = jax.jit(lambda key, kappa: cls(mu, kappa).sample(key, 20_000))
    for kappa in (0.5, 5.0, 40.0):
        q = cls(mu, jnp.asarray(kappa))
        np.testing.assert_allclose(_sphere_integral(lambda z: log_prob(z, kappa)), 1.0, rtol=2e-3)
        z = sample(jax.random.PRNGKey(0), kappa)
        np.testing.assert_allclose(np.linalg.norm(z, axis=-1), 1.0, rtol=1e-5)
        mc = np.asarray(q.log_prob(z) + log_sphere_area(3))
        assert abs(mc.mean() - float(q.kl_uniform())) < 4 * mc.std() / math.sqrt(len(mc)) + 1e-4


def test_uniform_entropy_and_sampler_moments_have_their_closed_forms():
    assert math.isclose(log_sphere_area(3), math.log(4 * math.pi)) and math.isclose(log_sphere_area(2),
                                                                                      math.log(2 * math.pi))
    np.testing.assert_allclose(VonMisesFisher(jnp.asarray([0.0, 1.0, 0.0]), jnp.asarray(1e-3)).kl_uniform(), 0.0,
                               atol=1e-5)
    mu = jnp.asarray([0.0, 0.0, 1.0])
    sample = jax.jit(lambda key, kappa: VonMisesFisher(mu, kappa).sample(key, 20_000))
    for kappa in (0.7, 3.0, 50.0):       # on S^2, E[mu.z] = coth(kappa) - 1/kappa
        q = VonMisesFisher(mu, jnp.asarray(kappa))
        w = np.asarray(sample(jax.random.PRNGKey(1), kappa))[:, 2]
        expect = 1 / np.tanh(kappa) - 1 / kappa
        np.testing.assert_allclose(q.mean_resultant(), expect, rtol=1e-5)
        assert abs(w.mean() - expect) < 4 * w.std() / math.sqrt(len(w))
    # power spherical: E[mu.z] = (a - b) / (a + b), and its sampler is reparameterized exactly
    q = lambda k: PowerSpherical(jnp.asarray([1.0, 0.0, 0.0, 0.0, 0.0]), k)  # noqa: E731
    w = jax.jit(jax.value_and_grad(lambda k: jnp.mean(q(k).sample(jax.random.PRNGKey(2), 50_000)[:, 0])))
    value, grad = w(3.0)
    np.testing.assert_allclose(value, q(3.0).mean_resultant(), atol=5e-3)
    np.testing.assert_allclose(grad, jax.grad(lambda k: q(k).mean_resultant())(3.0), rtol=0.05)


def test_svae_bounds_and_its_error_for_a_circle_of_one_dimension():
    model = build_model(ModelConfig(name="svae", latent_dim=3, hidden=(8,)), (4, 4, 1))
    params = create_train_state(model, optax.adam(1e-3), (4, 4, 1), seed=0).params
    x = (jax.random.uniform(jax.random.PRNGKey(0), (2, 4, 4, 1)) > 0.5).astype(jnp.float32)
    q = model.apply({"params": params}, x, method=type(model).encode)
    out = model.apply({"params": params}, x, rngs={"sample": jax.random.PRNGKey(1)})
    np.testing.assert_allclose(out.kl, q.kl_uniform(), rtol=1e-6)
    lw = model.apply({"params": params}, x, 4000, rngs={"sample": jax.random.PRNGKey(2)},
                     method=type(model).log_importance_weights)
    iwae, elbo = jax.nn.logsumexp(lw, 0) - np.log(4000), lw.mean(0)
    assert np.all(iwae >= elbo) and np.all(np.abs(np.asarray(elbo) - np.asarray(out.log_px_z - out.kl)) < 5.0)
    with pytest.raises(ConfigError, match="model.latent_dim=1 is not allowed with svae"):
        apply_overrides(Config(model=ModelConfig(name="svae")), ["model.latent_dim=1"])
