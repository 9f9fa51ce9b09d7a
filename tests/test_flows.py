"""Flow posteriors (planar, radial, IAF): log-determinants against autodiff Jacobians, and
identity flows against the plain VAE."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vae.config import ModelConfig
from vae.models.flows import IAFStep, made_masks, planar_step, radial_step
from vae.step import create_train_state
from vae.variants import build_model

SHAPE = (6, 6, 1)
D = 3


def _check_log_det(step, z):
    """z: [d]; step maps [1, d] -> ([1, d], [1])."""
    _, log_det = step(z[None])
    jac = jax.jacfwd(lambda v: step(v[None])[0][0])(z)
    sign, expect = jnp.linalg.slogdet(jac)
    assert sign > 0  # the constraints keep every step orientation-preserving (invertible)
    np.testing.assert_allclose(log_det[0], expect, rtol=1e-4, atol=1e-5)


def test_planar_and_radial_log_dets_match_the_jacobian():
    r = np.random.default_rng(0)
    for trial in range(4):
        z, u, w, z0 = (jnp.asarray(r.normal(size=D) * 1.5, jnp.float32) for _ in range(4))
        b, a, beta = (jnp.asarray(r.normal(size=1), jnp.float32) for _ in range(3))
        # u against w: the raw u would make f non-invertible; the constraint must repair it
        _check_log_det(lambda v: planar_step(v, -3.0 * w[None], w[None], b), z)
        _check_log_det(lambda v: planar_step(v, u[None], w[None], b), z)
        _check_log_det(lambda v: radial_step(v, z0[None], a, beta - 2.0 * trial), z)


def test_iaf_step_is_autoregressive_and_its_log_det_matches_the_jacobian():
    into, out = made_masks(4, 7)
    assert np.all(np.tril(into @ out) == 0)  # output j depends only on inputs i < j
    step = IAFStep(hidden=7)
    z, h = jnp.asarray([0.3, -1.2, 0.5, 2.0]), jnp.ones((1, 2))
    params = step.init(jax.random.PRNGKey(0), z[None], h)["params"]
    np.testing.assert_array_equal(step.apply({"params": params}, z[None], h)[0][0], z)  # zero output layer
    params = jax.tree_util.tree_map(lambda p: p + 0.3 * jax.random.normal(jax.random.PRNGKey(1), p.shape), params)
    jac = jax.jacfwd(lambda v: step.apply({"params": params}, v[None], h)[0][0])(z)
    np.testing.assert_allclose(jnp.triu(jac, 1), 0.0, atol=1e-7)   # triangular: det = product of the diagonal
    _check_log_det(lambda v: step.apply({"params": params}, v, h), z)


def _zero_flow_params(params, d):
    """Zero the encoder head's columns beyond the Gaussian's d (the flow's parameters / context)."""
    params = jax.tree_util.tree_map(lambda p: p, params)
    for head in ("mean", "log_var"):
        for key in ("kernel", "bias"):
            params["encoder"][head][key] = params["encoder"][head][key].at[..., d:].set(0.0)
    return params


@pytest.mark.parametrize("name,kw", [("vae_nf", {"flow": "planar"}), ("vae_nf", {"flow": "radial"}),
                                     ("vae_iaf", {"flow_hidden": 8})])
def test_identity_flows_give_the_plain_vaes_elbo_and_iwae(name, kw):
    x = (jax.random.uniform(jax.random.PRNGKey(0), (5, *SHAPE)) > 0.5).astype(jnp.float32)
    flow = build_model(ModelConfig(name=name, latent_dim=D, hidden=(16,), flow_length=3, **kw), SHAPE)
    plain = build_model(ModelConfig(name="vae", latent_dim=D, hidden=(16,)), SHAPE)
    fp = _zero_flow_params(create_train_state(flow, optax.adam(1e-3), SHAPE, seed=0).params, D)
    # the plain VAE: the same weights, its heads cut to the Gaussian's D outputs
    heads = {h: {k: v[..., :D] for k, v in fp["encoder"][h].items()} for h in ("mean", "log_var")}
    encoder = dict(fp["encoder"], **heads)
    pp = {"encoder": encoder, "decoder": fp["decoder"]}
    rng = jax.random.PRNGKey(2)
    f_out = flow.apply({"params": fp}, x, rngs={"sample": rng})
    p_out = plain.apply({"params": pp}, x, rngs={"sample": rng})
    np.testing.assert_allclose(f_out.z, p_out.z, atol=1e-6)  # a wider matmul: rounding differs
    np.testing.assert_allclose(f_out.log_px_z, p_out.log_px_z, rtol=1e-6)
    one_sample_kl = p_out.posterior.log_prob(p_out.z) - plain.apply({"params": pp}, p_out.z,
                                                                    method=type(plain).prior_log_prob)
    np.testing.assert_allclose(f_out.kl, one_sample_kl, rtol=1e-5, atol=1e-6)
    lw = [m.apply({"params": p}, x, 11, rngs={"sample": rng}, method=type(m).log_importance_weights)
          for m, p in ((flow, fp), (plain, pp))]
    np.testing.assert_allclose(lw[0], lw[1], rtol=1e-5, atol=1e-5)
    with pytest.raises(NotImplementedError, match="DReG"):
        flow.apply({"params": fp}, x, 2, None, True, rngs={"sample": rng}, method=type(flow).log_importance_weights)
