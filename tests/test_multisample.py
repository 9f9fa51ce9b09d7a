"""MIWAE, CIWAE and PIWAE (Rainforth et al. 2018) against IWAE, the ELBO and numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.special import logsumexp

from vae.config import Config, ModelConfig, ObjectiveConfig, apply_overrides
from vae.errors import ConfigError
from vae.objectives import CIWAE, IWAE, MIWAE, PIWAE, ciwae_bound, iwae_bound, miwae_bound
from vae.presets import get_preset
from vae.step import create_train_state
from vae.variants import build_model, build_objective

SHAPE = (6, 6, 1)


@pytest.fixture(scope="module")
def tiny():
    model = build_model(ModelConfig(name="vae", latent_dim=3, hidden=(16,)), SHAPE)
    x = (jax.random.uniform(jax.random.PRNGKey(0), (5, *SHAPE)) > 0.5).astype(jnp.float32)
    params = create_train_state(model, optax.adam(1e-3), SHAPE, seed=0).params
    return model, params, {"image": x}


def test_bounds_match_numpy():
    lw = np.random.default_rng(0).normal(scale=3.0, size=(12, 4))
    np.testing.assert_allclose(iwae_bound(jnp.asarray(lw)), logsumexp(lw, 0) - np.log(12), rtol=1e-5)
    rows = [logsumexp(lw[4 * m:4 * m + 4], 0) - np.log(4) for m in range(3)]  # M = 3 groups of K = 4
    np.testing.assert_allclose(miwae_bound(jnp.asarray(lw), 3), np.mean(rows, 0), rtol=1e-5)
    np.testing.assert_allclose(ciwae_bound(jnp.asarray(lw), 0.3),
                               0.3 * lw.mean(0) + 0.7 * (logsumexp(lw, 0) - np.log(12)), rtol=1e-5)
    with pytest.raises(ValueError, match="12 samples do not split into outer=5"):
        miwae_bound(jnp.asarray(lw), 5)


def test_miwae_with_one_group_is_iwae_and_ciwae_spans_elbo_to_iwae(tiny):
    model, params, batch = tiny
    rng, step = jax.random.PRNGKey(7), jnp.asarray(0)
    iwae_loss, iwae_m = IWAE(num_samples=6)(model, params, batch, rng, step)
    miwae_loss, _ = MIWAE(outer=1, inner=6)(model, params, batch, rng, step)
    np.testing.assert_allclose(miwae_loss, iwae_loss, rtol=1e-6)
    np.testing.assert_allclose(CIWAE(samples=6, beta=0.0)(model, params, batch, rng, step)[0], iwae_loss, rtol=1e-6)
    # beta = 1: minus the K-sample ELBO, the mean of the log weights (drawn with the objective's key)
    lw = model.apply({"params": params}, batch["image"], 6, rngs={"sample": jax.random.split(rng)[0]},
                     method=type(model).log_importance_weights)
    assert float(jnp.std(lw)) > 0.1  # the weights differ, so the mean and the log-mean-exp differ
    ciwae1, _ = CIWAE(samples=6, beta=1.0)(model, params, batch, rng, step)
    np.testing.assert_allclose(ciwae1, -jnp.mean(lw), rtol=1e-5)
    # every multi-sample variant reports the ELBO, recon and KL of the same single-sample pass as IWAE
    m = MIWAE(outer=2, inner=3)(model, params, batch, rng, step)[1]
    for key in ("elbo", "recon", "kl"):
        np.testing.assert_allclose(m[key], iwae_m[key], rtol=1e-6)


def test_piwae_gives_the_decoder_iwae_and_the_encoder_miwae_gradients(tiny):
    model, params, batch = tiny
    rng, step = jax.random.PRNGKey(1), jnp.asarray(0)

    def grads(objective):
        return jax.grad(lambda p: objective(model, p, batch, rng, step)[0])(params)

    piwae, iwae, miwae = grads(PIWAE(outer=2, inner=3)), grads(IWAE(num_samples=6)), grads(MIWAE(outer=2, inner=3))
    for got, want in [(piwae["decoder"], iwae["decoder"]), (piwae["encoder"], miwae["encoder"])]:
        jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), got, want)
    # and the two targets differ on the encoder, so the test can tell them apart
    diffs = jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda a, b: float(jnp.max(jnp.abs(a - b))),
                                                             iwae["encoder"], miwae["encoder"]))
    assert max(diffs) > 1e-4
    loss, metrics = PIWAE(outer=2, inner=3)(model, params, batch, rng, step)
    np.testing.assert_allclose(loss, -jnp.mean(metrics["iwae_bound"]), rtol=1e-6)
    assert np.all(metrics["miwae_bound"] <= metrics["iwae_bound"] + 1e-4)   # Jensen, on the same samples


def test_variants_read_their_defaults_and_presets_override_them():
    def objective(name, *sets):
        cfg = apply_overrides(Config(model=ModelConfig(name=name)), list(sets))
        return build_objective(cfg, dataset_size=10, total_steps=10)

    assert objective("miwae") == MIWAE(outer=8, inner=8)
    assert objective("piwae", "objective.outer_samples=2") == PIWAE(outer=2, inner=8)
    assert objective("ciwae") == CIWAE(samples=64, beta=0.5)
    assert objective("iwae").num_samples == 5
    assert get_preset("ciwae_mnist5k").objective.iwae_samples == 16
    with pytest.raises(ConfigError, match=r"objective.ciwae_beta=1.5 must be in \[0, 1\]"):
        ObjectiveConfig(ciwae_beta=1.5)
    with pytest.raises(ConfigError, match="objective.outer_samples=0 is not allowed"):
        ObjectiveConfig(outer_samples=0)

