"""The Poincaré ball: Möbius identities, boundary clipping, and the wrapped normal's density
(integrated over the 2-D ball), KL and sampler against numerical integration."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vae.config import ModelConfig
from vae.models.poincare import WrappedNormal, conformal_factor, distance, exp_map, log_map, mobius_add
from vae.step import create_train_state
from vae.variants import build_model


def test_mobius_identities_and_the_euclidean_limit():
    x, y = jnp.asarray([0.5, 0.1]), jnp.asarray([-0.2, 0.7])
    for c in (1.0, 0.3):
        xs, ys = x / math.sqrt(c) * 0.9, y / math.sqrt(c) * 0.9
        np.testing.assert_allclose(mobius_add(xs, jnp.zeros(2), c), xs, rtol=1e-6)
        np.testing.assert_allclose(mobius_add(-xs, xs, c), 0.0, atol=1e-6)
        np.testing.assert_allclose(exp_map(xs, log_map(xs, ys, c), c), ys, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(distance(xs, ys, c), distance(ys, xs, c), rtol=1e-5)
        np.testing.assert_allclose(distance(jnp.zeros(2), ys, c),
                                   2 / math.sqrt(c) * np.arctanh(math.sqrt(c) * np.linalg.norm(ys)), rtol=1e-5)
    np.testing.assert_allclose(mobius_add(x, y, 1e-6), x + y, rtol=1e-5)        # c -> 0: flat space
    np.testing.assert_allclose(distance(x, y, 1e-6), 2 * np.linalg.norm(x - y), rtol=1e-4)   # lambda = 2 at c = 0


def test_the_boundary_is_clipped_and_nothing_overflows():
    far = exp_map(jnp.zeros(3), jnp.asarray([300.0, -200.0, 50.0]), 1.0)           # a huge tangent step
    assert float(jnp.linalg.norm(far)) < 1.0
    log_q = jax.jit(jax.value_and_grad(lambda m, z: WrappedNormal(m, jnp.zeros(3), 1.0).log_prob(z)))
    for z in (far, jnp.asarray([0.0, 0.9999999, 0.0]), jnp.asarray([0.0, 0.0, 0.0])):
        value, grad = log_q(jnp.asarray([0.2, 0.0, 0.1]), z)
        assert np.isfinite(value) and np.all(np.isfinite(grad))


def _ball_grid(c, n=500):
    radius = (1 - 1e-6) / math.sqrt(c)
    r = (np.arange(n) + 0.5) / n * radius
    t = (np.arange(2 * n) + 0.5) / (2 * n) * 2 * np.pi
    rr, tt = np.meshgrid(r, t, indexing="ij")
    z = np.stack([rr * np.cos(tt), rr * np.sin(tt)], -1).reshape(-1, 2)
    # Riemannian volume lambda_z^2 dz, in polar coordinates r dr dtheta
    weight = np.asarray(conformal_factor(jnp.asarray(z, jnp.float32), c), np.float64)[:, 0] ** 2 * rr.reshape(-1)
    return jnp.asarray(z, jnp.float32), weight * (radius / n) * (np.pi / n)


@pytest.mark.parametrize("c", [1.0, 0.3])
def test_wrapped_normal_integrates_to_one_and_its_kl_and_sampler_match_integration(c):
    z, w = _ball_grid(c)
    q = WrappedNormal(jnp.asarray([0.3, -0.2]) / math.sqrt(c), jnp.log(jnp.asarray([0.5, 0.2])), c)
    p = WrappedNormal(jnp.zeros(2), jnp.zeros(2), c)
    log_q, log_p = (np.asarray(jax.jit(d.log_prob)(z), np.float64) for d in (q, p))
    np.testing.assert_allclose((np.exp(log_q) * w).sum(), 1.0, rtol=1e-4)
    np.testing.assert_allclose((np.exp(log_p) * w).sum(), 1.0, rtol=1e-4)
    kl = (np.exp(log_q) * (log_q - log_p) * w).sum()
    draws = jax.jit(lambda k: q.sample(k, 20_000))(jax.random.PRNGKey(0))
    mc = np.asarray(q.log_prob(draws) - p.log_prob(draws))
    assert abs(mc.mean() - kl) < 4 * mc.std() / math.sqrt(len(mc))
    # P(d(0, z) < 1) by sampling and by integration
    near = np.asarray(distance(jnp.zeros(2), z, c)) < 1.0
    frac = np.mean(np.asarray(distance(jnp.zeros(2), draws, c)) < 1.0)
    assert abs(frac - (np.exp(log_q) * w)[near].sum()) < 0.015


def test_pvae_reports_bounds_with_the_one_sample_kl():
    model = build_model(ModelConfig(name="pvae", latent_dim=2, hidden=(8,), curvature=0.5), (4, 4, 1))
    assert model.curvature == 0.5
    params = create_train_state(model, optax.adam(1e-3), (4, 4, 1), seed=0).params
    x = (jax.random.uniform(jax.random.PRNGKey(0), (2, 4, 4, 1)) > 0.5).astype(jnp.float32)
    out = model.apply({"params": params}, x, rngs={"sample": jax.random.PRNGKey(1)})
    q = out.posterior
    expect = q.log_prob(out.z) - WrappedNormal(jnp.zeros(2), jnp.zeros(2), 0.5).log_prob(out.z)
    np.testing.assert_allclose(out.kl, expect, rtol=1e-5)
    assert np.all(np.linalg.norm(np.asarray(out.z), axis=-1) < 1 / math.sqrt(0.5))
    lw = model.apply({"params": params}, x, 500, rngs={"sample": jax.random.PRNGKey(2)},
                     method=type(model).log_importance_weights)
    assert np.all(jax.nn.logsumexp(lw, 0) - np.log(500) >= lw.mean(0))
