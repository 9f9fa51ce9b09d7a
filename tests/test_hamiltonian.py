"""The Hamiltonian VAE: the tempered leapfrog map's Jacobian is exactly the bound's d/2 log
beta_0, and with vanishing steps the bound is the plain VAE's one-sample ELBO."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vae.config import ModelConfig
from vae.models.hamiltonian import tempering_schedule
from vae.step import create_train_state
from vae.variants import build_model

SHAPE = (4, 4, 1)


@pytest.fixture(scope="module")
def hvae():
    model = build_model(ModelConfig(name="hamiltonian_vae", latent_dim=3, hidden=(8,), flow_length=3), SHAPE)
    params = create_train_state(model, optax.adam(1e-3), SHAPE, seed=0).params
    params = dict(params, log_step_size=jnp.log(jnp.asarray([0.3, 0.2, 0.4])))   # steps large enough to matter
    x = (jax.random.uniform(jax.random.PRNGKey(0), (1, *SHAPE)) > 0.5).astype(jnp.float32)
    return model, params, x


def test_tempering_ends_at_one_and_the_map_has_the_bounds_log_jacobian(hvae):
    model, params, x = hvae
    beta0 = jax.nn.sigmoid(params["beta0_logit"])
    betas = tempering_schedule(beta0, 3)
    np.testing.assert_allclose([betas[0], betas[-1]], [beta0, 1.0], rtol=1e-6)
    assert np.all(np.diff(np.asarray(betas)) > 0)

    def step(v):  # (z_0, rho_0) [6] -> (z_K, rho_K) [6], through the model's own dynamics
        z, rho, _ = model.apply({"params": params}, x, v[None, :3], v[None, 3:] * jnp.sqrt(beta0),
                                method=type(model).flow)
        return jnp.concatenate([z[0], rho[0]])

    v = jnp.asarray([0.3, -0.5, 0.8, 0.4, 1.1, -0.7])
    sign, log_det = jnp.linalg.slogdet(jax.jacfwd(step)(v))
    assert sign > 0
    np.testing.assert_allclose(log_det, 1.5 * jnp.log(beta0), rtol=1e-4, atol=1e-4)
    assert float(jnp.max(jnp.abs(step(v)[:3] - v[:3]))) > 0.05    # the dynamics did move z


def test_vanishing_steps_give_the_plain_one_sample_elbo(hvae):
    model, params, x = hvae
    params = dict(params, log_step_size=jnp.full((3,), -30.0))
    out = model.apply({"params": params}, x, rngs={"sample": jax.random.PRNGKey(1)})
    q = out.posterior
    plain_kl = q.log_prob(out.z) - model.apply({"params": params}, out.z, method=type(model).prior_log_prob)
    np.testing.assert_allclose(out.kl, plain_kl, rtol=1e-4, atol=1e-4)
    lw = model.apply({"params": params}, x, 5, rngs={"sample": jax.random.PRNGKey(2)},
                     method=type(model).log_importance_weights)
    assert lw.shape == (5, 1) and np.all(np.isfinite(lw))

