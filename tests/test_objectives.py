"""Each objective on a fixed tiny input against a hand-computed or independent number."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

from vae.config import Config, ModelConfig, ObjectiveConfig, OptimConfig
from vae.variants import build_model, build_objective
from vae.models.hierarchical import gaussian_kl
from vae.models.distributions import DiagonalGaussian
from vae.objectives import (
    ELBO, IWAE, AnnealedVAE, BetaTCVAE, DIPVAE, FactorVAE, VQObjective, free_bits_kl,
    make_kl_schedule, tc_decomposition,
)
from vae.objectives import dip_covariance, permute_dims
from vae.step import create_train_state, make_optimizer, make_train_step

SHAPE = (6, 6, 1)


def _setup(name="vae", **model_kw):
    cfg = ModelConfig(name=name, latent_dim=4, hidden=(32,), **model_kw)
    model = build_model(cfg, SHAPE, num_classes=3)
    x = (jax.random.uniform(jax.random.PRNGKey(0), (8, *SHAPE)) > 0.5).astype(jnp.float32)
    batch = {"image": x, "label": jnp.arange(8) % 3}
    params = create_train_state(model, optax.adam(1e-3), SHAPE, seed=0).params
    return model, params, batch


def test_beta_tcvae_at_beta_one_is_the_elbo_and_decomposes_the_kl():
    model, params, batch = _setup()
    rng, step = jax.random.PRNGKey(3), jnp.asarray(0)
    elbo_loss, elbo_m = ELBO()(model, params, batch, rng, step)
    tc_loss, tc_m = BetaTCVAE(beta=1.0, dataset_size=100)(model, params, batch, rng, step)
    np.testing.assert_allclose(tc_loss, elbo_loss, rtol=1e-6)
    # mi + tc + dwkl = log q(z|x) - log p(z), sample by sample (the decomposition of Chen et al., eq. 2)
    out = model.apply({"params": params}, batch["image"], rngs={"sample": rng})
    mc_kl = out.posterior.log_prob(out.z) - model.apply({"params": params}, out.z, method=type(model).prior_log_prob)
    np.testing.assert_allclose(tc_m["mi"] + tc_m["tc"] + tc_m["dwkl"], mc_kl, rtol=1e-4, atol=1e-4)


def test_tc_estimators_match_a_direct_computation():
    rng = np.random.default_rng(0)
    m, d, n = 5, 3, 50
    z, mean, log_var = rng.normal(size=(m, d)), rng.normal(size=(m, d)), rng.normal(scale=0.3, size=(m, d))
    logq = stats.norm(mean[None], np.exp(0.5 * log_var[None])).logpdf(z[:, None])    # [i, j, dim]
    mws = tc_decomposition(jnp.asarray(z), jnp.asarray(mean), jnp.asarray(log_var), n, "mws")
    expect_qz = np.log(np.exp(logq.sum(-1)).sum(1)) - np.log(n * m)
    expect_prod = (np.log(np.exp(logq).sum(1)) - np.log(n * m)).sum(-1)
    np.testing.assert_allclose(mws["log_qz"], expect_qz, rtol=1e-5)
    np.testing.assert_allclose(mws["log_prod_qzj"], expect_prod, rtol=1e-5)
    # stratified weights (Chen et al. appendix C.2): 1/N on the diagonal, (N-M')/(N M') next to it, 1/M' elsewhere
    mp = m - 1
    w = np.full((m, m), 1 / mp)
    np.fill_diagonal(w, 1 / n)
    for i in range(m - 1):
        w[i, i + 1] = (n - mp) / (n * mp)
    w[mp - 1, 0] = (n - mp) / (n * mp)
    mss = tc_decomposition(jnp.asarray(z), jnp.asarray(mean), jnp.asarray(log_var), n, "mss")
    np.testing.assert_allclose(mss["log_qz"], np.log((w * np.exp(logq.sum(-1))).sum(1)), rtol=1e-5)


def test_iwae_k1_is_an_unbiased_elbo_and_k_tightens():
    model, params, batch = _setup()
    step = jnp.asarray(0)
    elbo = -float(ELBO()(model, params, batch, jax.random.PRNGKey(0), step)[0])
    keys = jax.random.split(jax.random.PRNGKey(1), 400)

    def mean_over_keys(fn, keys):  # one compiled program over all keys, not one dispatch per op and key
        return float(jnp.mean(jax.jit(jax.vmap(fn))(keys)))

    k1 = mean_over_keys(lambda k: IWAE(num_samples=1)(model, params, batch, k, step)[1]["iwae_bound"].mean(), keys)
    k1_elbo = mean_over_keys(lambda k: -ELBO()(model, params, batch, k, step)[0], keys[:100])
    # the closed-form-KL ELBO and the k=1 bound estimate the same number
    assert abs(k1 - k1_elbo) < 0.02 * abs(k1_elbo)
    k20 = mean_over_keys(lambda k: IWAE(num_samples=20)(model, params, batch, k, step)[1]["iwae_bound"].mean(),
                         keys[:50])
    assert k20 > k1
    assert np.isfinite(elbo)


def test_dreg_has_the_iwae_value_and_decoder_gradient():
    model, params, batch = _setup()
    rng, step = jax.random.PRNGKey(2), jnp.asarray(0)
    plain = lambda p: IWAE(num_samples=5)(model, p, batch, rng, step)[0]
    dreg = lambda p: IWAE(num_samples=5, dreg=True)(model, p, batch, rng, step)[0]
    np.testing.assert_allclose(plain(params), dreg(params), rtol=1e-6)
    g_plain, g_dreg = jax.grad(plain)(params), jax.grad(dreg)(params)
    for a, b in zip(jax.tree_util.tree_leaves(g_plain["decoder"]), jax.tree_util.tree_leaves(g_dreg["decoder"])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    enc_diff = sum(float(jnp.abs(a - b).sum()) for a, b in
                   zip(jax.tree_util.tree_leaves(g_plain["encoder"]), jax.tree_util.tree_leaves(g_dreg["encoder"])))
    assert enc_diff > 0  # the encoder gets a different (lower-variance) estimator


def test_capacity_loss_at_zero_capacity_is_gamma_times_kl():
    model, params, batch = _setup()
    rng, step = jax.random.PRNGKey(0), jnp.asarray(0)
    loss, m = AnnealedVAE(gamma=7.0, c_max=0.0)(model, params, batch, rng, step)
    np.testing.assert_allclose(loss, jnp.mean(m["recon"]) + 7.0 * jnp.mean(m["kl"]), rtol=1e-6)
    ann = AnnealedVAE(gamma=1.0, c_max=25.0, c_steps=100)
    np.testing.assert_allclose([ann.capacity(0), ann.capacity(50), ann.capacity(100), ann.capacity(500)],
                               [0, 12.5, 25, 25])


def test_dip_penalty_matches_numpy():
    rng = np.random.default_rng(0)
    mean, log_var = rng.normal(size=(32, 3)), rng.normal(scale=0.2, size=(32, 3))
    np.testing.assert_allclose(dip_covariance(jnp.asarray(mean), jnp.asarray(log_var), "i"),
                               np.cov(mean.T, bias=True), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dip_covariance(jnp.asarray(mean), jnp.asarray(log_var), "ii"),
                               np.cov(mean.T, bias=True) + np.diag(np.exp(log_var).mean(0)), rtol=1e-4, atol=1e-6)
    model, params, batch = _setup()
    r, s = jax.random.PRNGKey(0), jnp.asarray(0)
    loss, m = DIPVAE(kind="i", lambda_od=2.0, lambda_d=3.0)(model, params, batch, r, s)
    out = model.apply({"params": params}, batch["image"], rngs={"sample": r})
    cov = np.cov(np.asarray(out.posterior.mean).T, bias=True)
    off = cov - np.diag(np.diag(cov))
    expected = 2.0 * (off**2).sum() + 3.0 * ((np.diag(cov) - 1) ** 2).sum()
    np.testing.assert_allclose(m["dip_penalty"], expected, rtol=1e-4)
    np.testing.assert_allclose(loss, jnp.mean(m["recon"] + m["kl"]) + expected, rtol=1e-5)


def test_factor_vae_updates_both_parameter_sets_in_one_step():
    model, params, batch = _setup()
    objective = FactorVAE(gamma=10.0, disc_hidden=16, disc_layers=2)
    optimizer = optax.adam(1e-3)
    state = create_train_state(model, optimizer, SHAPE, seed=0, objective=objective)
    before = jax.tree_util.tree_map(np.asarray, (state.params, state.extra["disc_params"]))
    step = make_train_step(model, objective, optimizer)
    state, metrics = step(state, batch)
    after = (state.params, state.extra["disc_params"])
    for b, a in zip(before, after):
        assert any(not np.array_equal(x, np.asarray(y)) for x, y in zip(jax.tree_util.tree_leaves(b),
                                                                         jax.tree_util.tree_leaves(a)))
    assert {"disc_loss", "tc", "elbo"} <= set(metrics)
    assert np.isfinite(float(metrics["disc_loss"]))


def test_permute_dims_permutes_each_column():
    z = jnp.arange(20.0).reshape(10, 2)
    p = np.asarray(permute_dims(jax.random.PRNGKey(0), z))
    for j in range(2):
        assert sorted(p[:, j].tolist()) == sorted(np.asarray(z[:, j]).tolist())


def test_kl_schedules_and_free_bits():
    lin = make_kl_schedule("linear", total_steps=100, warmup_steps=10)
    np.testing.assert_allclose([lin(0), lin(5), lin(10), lin(50)], [0, 0.5, 1, 1])
    cyc = make_kl_schedule("cyclical", total_steps=100, num_cycles=4, ratio=0.5)
    # cycles of 25 steps: rise over 12.5 steps, then flat
    np.testing.assert_allclose([cyc(0), cyc(6.25), cyc(12.5), cyc(20), cyc(25), cyc(31.25)], [0, 0.5, 1, 1, 0, 0.5])
    kl = jnp.array([[0.1, 2.0, 0.3, 0.0], [0.3, 4.0, 0.1, 0.0]])   # batch means per dim: 0.2, 3.0, 0.2, 0.0
    np.testing.assert_allclose(jnp.mean(free_bits_kl(kl, 0.5)), 0.5 + 3.0 + 0.5 + 0.5)
    np.testing.assert_allclose(jnp.mean(free_bits_kl(kl, 0.5, group_size=2)), 3.2 + 0.5)
    np.testing.assert_allclose(free_bits_kl(kl, 0.0), kl.sum(-1))
    g = jax.grad(lambda k: jnp.mean(free_bits_kl(k, 0.5)))(kl)
    np.testing.assert_allclose(g[:, 0], 0.0)  # below the threshold: no gradient
    np.testing.assert_allclose(g[:, 1], 0.5)


def test_warmup_weights_the_kl():
    model, params, batch = _setup()
    obj = build_objective(Config(model=ModelConfig(name="vae"),
                                 objective=ObjectiveConfig(kl_schedule="linear", kl_warmup_steps=10)))
    r = jax.random.PRNGKey(0)
    loss0, m0 = obj(model, params, batch, r, jnp.asarray(0))
    loss5, m5 = obj(model, params, batch, r, jnp.asarray(5))
    np.testing.assert_allclose(loss0, jnp.mean(m0["recon"]), rtol=1e-6)
    np.testing.assert_allclose(loss5, jnp.mean(m5["recon"] + 0.5 * m5["kl"]), rtol=1e-6)


def test_gaussian_kl_closed_form_matches_monte_carlo():
    q = DiagonalGaussian(jnp.array([0.5, -1.0]), jnp.array([-0.5, 0.3]))
    p = DiagonalGaussian(jnp.array([0.0, 0.4]), jnp.array([0.2, -0.1]))
    z = q.sample(jax.random.PRNGKey(0), num_samples=200_000)
    mc = jnp.mean(q.log_prob(z) - p.log_prob(z))
    assert abs(float(mc) - float(gaussian_kl(q, p).sum())) < 0.02


def test_vq_ema_update_and_straight_through():
    model, params, batch = _setup(name="vqvae", num_codes=6, code_dim=2)
    obj = VQObjective(commitment=0.25, decay=0.9)
    extra = obj.init_extra(model, params, jax.random.PRNGKey(0), SHAPE)
    loss, metrics, aux = obj.compute(model, params, batch, jax.random.PRNGKey(0), jnp.asarray(0), extra)
    np.testing.assert_allclose(metrics["kl"], 2 * math.log(6), rtol=1e-6)  # 4 / 2 = 2 codes of log 6 nats
    new_params, new_extra, _ = obj.update_extra(model, params, extra, aux, batch, None, jnp.asarray(0))
    codes, z_e = np.asarray(aux["codes"]), np.asarray(aux["z_e"])
    counts = np.bincount(codes, minlength=6)
    sums = np.zeros((6, 2))
    np.add.at(sums, codes, z_e)
    cluster = 0.9 * 1.0 + 0.1 * counts
    embed = 0.9 * np.asarray(params["codebook"]) + 0.1 * sums
    smoothed = (cluster + 1e-5) / (cluster.sum() + 6e-5) * cluster.sum()
    np.testing.assert_allclose(new_params["codebook"], embed / smoothed[:, None], rtol=1e-5)
    grads = jax.grad(lambda p: obj.compute(model, p, batch, jax.random.PRNGKey(0), jnp.asarray(0), extra)[0])(params)
    assert float(jnp.abs(grads["codebook"]).sum()) == 0.0       # EMA: no gradient to the codebook
    assert any(float(jnp.abs(g).sum()) > 0 for g in jax.tree_util.tree_leaves(grads["encoder"]))  # straight-through


def test_ladder_vae_and_cvae_and_priors_give_finite_losses():
    for name, kw in [("ladder_vae", {"bottom_latent_dim": 6}), ("cvae", {}), ("vae", {"prior": "mog"}),
                     ("vae", {"prior": "vamp", "prior_components": 4})]:
        model, params, batch = _setup(name=name, **kw)
        loss, m = ELBO()(model, params, batch, jax.random.PRNGKey(0), jnp.asarray(0))
        assert np.isfinite(float(loss)), name
        np.testing.assert_allclose(m["elbo"], -(m["recon"] + m["kl"]), rtol=1e-5)
        lw = model.apply({"params": params}, batch["image"], 3, batch["label"] if name == "cvae" else None,
                         rngs={"sample": jax.random.PRNGKey(1)}, method=type(model).log_importance_weights)
        assert lw.shape == (3, 8) and np.isfinite(np.asarray(lw)).all()
