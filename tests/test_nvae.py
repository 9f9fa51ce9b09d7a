"""The deep hierarchical VAE (NVAE): with one latent group it is a plain VAE on the same
weights; with linear cells and constant prior variances it is a linear-Gaussian model whose
IWAE estimate matches the exact log-likelihood; its KL is reported per group."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vae.config import ConfigError, ModelConfig, apply_overrides, Config
from vae.models import VAE, GaussianLikelihood, StandardNormalPrior
from vae.models.nvae import NVAE
from vae.models.nvae_cells import DepthwiseConv
from vae.objectives import ELBO
from vae.step import create_train_state
from vae.trained.inference import TrainedModel
from vae.variants import build_model, build_objective

SHAPE = (4, 4, 1)


def _tiny(scales, groups, **kw):
    cfg = ModelConfig(name="nvae", channels=(4, 4), latent_scales=scales, groups_per_scale=groups, group_channels=2,
                      cells_per_group=1, **kw)
    model = build_model(cfg, SHAPE).clone(expand=2)
    params = create_train_state(model, optax.adam(1e-3), SHAPE, seed=0).params
    return model, params


class _Encoder(nn.Module):
    nvae: NVAE

    def __call__(self, x):
        q = self.nvae.encode(x)
        return q.mean, q.log_var


class _Decoder(nn.Module):
    nvae: NVAE

    def __call__(self, z):
        decoded, _ = self.nvae.top_down(z.shape[0], lambda l, p, q: z.reshape(-1, *self.nvae.top_shape))
        return decoded


def test_one_group_is_the_plain_vae_objective_on_the_same_weights():
    model, params = _tiny(1, 1)
    x = (jax.random.uniform(jax.random.PRNGKey(0), (3, *SHAPE)) > 0.5).astype(jnp.float32)
    out = jax.jit(lambda p: model.apply({"params": p}, x, rngs={"sample": jax.random.PRNGKey(1)}))(params)
    assert out.kl_per_dim.shape == (3, 1) and out.z.shape == (3, model.latent_dim)

    plain = VAE(encoder=_Encoder(model.clone()), decoder=_Decoder(model.clone()), prior=StandardNormalPrior(),
                likelihood=model.likelihood.clone(), latent_dim=model.latent_dim)
    variables = {"params": {"encoder": {"nvae": params}, "decoder": {"nvae": params}}}

    @jax.jit
    def plain_terms(v, z):  # the plain VAE's closed-form KL and log p(x | z) at the NVAE's z
        q = plain.apply(v, x, method=VAE.encode)
        log_px_z = plain.apply(v, plain.apply(v, z, method=VAE.decode), x, method=VAE.log_likelihood)
        return q.mean, jnp.sum(q.kl_standard_normal_per_dim(), -1), log_px_z

    q_mean, kl, log_px_z = plain_terms(variables, out.z)
    np.testing.assert_allclose(q_mean, out.posterior.mean, rtol=1e-6)
    np.testing.assert_allclose(out.kl, kl, rtol=1e-5)
    np.testing.assert_allclose(out.log_px_z, log_px_z, rtol=1e-5)
    loss, _, _ = jax.jit(lambda p: ELBO().compute(model, p, {"image": x}, jax.random.PRNGKey(1), 0, {}))(params)
    np.testing.assert_allclose(loss, jnp.mean(-log_px_z + kl), rtol=1e-5)


def _linear_gaussian(model, params):
    """Identity activations, constant SE gates and prior variances, no clamp: the generative
    model is linear-Gaussian. The posterior heads are constants off the prior (a valid proposal)."""
    def edit(path, leaf):
        names = [getattr(k, "key", "") for k in path]
        if names[-1] == "kernel" and ("gate" in names or any(n.startswith(("p_log_var", "q_")) for n in names)):
            return jnp.zeros_like(leaf)
        if names[-1] == "bias" and any(n.startswith("q_mean") for n in names):
            return jnp.full_like(leaf, 0.3)
        if names[-1] == "bias" and any(n.startswith("q_log_var") for n in names):
            return jnp.full_like(leaf, -0.5)
        return leaf
    return model.clone(activation=lambda h: h, clamp=None), jax.tree_util.tree_map_with_path(edit, params)


@pytest.fixture(scope="module")
def two_scales():
    """Two resolutions (1x1 and 2x2), one group each; initialising costs ~20 s (every parameter's
    own random draw), so the tests share it."""
    return _tiny(2, 1)


def test_iwae_of_a_linear_gaussian_hierarchy_matches_the_exact_log_likelihood(two_scales):
    model, params = _linear_gaussian(two_scales[0].clone(likelihood=GaussianLikelihood(sigma=1.0)), two_scales[1])
    sizes = [int(np.prod(model.group_shape(l))) for l in range(model.num_groups)]

    def mean_of(eps):  # all groups' standard-normal noise [sum sizes] -> E[x | z(eps)] [16]
        parts = jnp.split(eps, np.cumsum(sizes)[:-1])

        def pick(l, p, q):
            e = parts[l].reshape(1, *model.group_shape(l))
            return e if p is None else p.mean + jnp.exp(0.5 * p.log_var) * e
        decoded, _ = model.apply({"params": params}, 1, pick, method=NVAE.top_down)
        return decoded.reshape(-1)

    zero = jnp.zeros(sum(sizes))
    mean_fn = jax.jit(mean_of)
    c, a = np.asarray(mean_fn(zero), np.float64), np.asarray(jax.jit(jax.jacrev(mean_of))(zero), np.float64)
    np.testing.assert_allclose(mean_fn(jnp.ones(sum(sizes))), c + a.sum(1), rtol=1e-4, atol=1e-4)   # it is linear
    x = np.random.default_rng(0).uniform(size=(1, *SHAPE)).astype(np.float32)
    cov = a @ a.T + np.eye(a.shape[0])                                                    # sigma = 1
    diff = x.reshape(-1) - c
    exact = -0.5 * (diff @ np.linalg.solve(cov, diff) + np.linalg.slogdet(cov)[1] + len(diff) * np.log(2 * np.pi))

    weights = jax.jit(lambda key: model.apply({"params": params}, jnp.asarray(x), 20_000, rngs={"sample": key},
                                              method=NVAE.log_importance_weights))
    lw = np.concatenate([np.asarray(weights(jax.random.PRNGKey(i)))[:, 0] for i in range(3)]).astype(np.float64)
    top = lw.max()
    w = np.exp(lw - top)
    estimate = top + np.log(w.mean())
    standard_error = np.sqrt(np.var(w) / len(w)) / w.mean()
    assert standard_error < 0.05
    assert abs(estimate - exact) < 4 * standard_error + 1e-3, (estimate, exact, standard_error)


def test_kl_is_per_group_and_free_bits_apply_per_group(two_scales):
    model, params = two_scales
    assert model.num_groups == 2 and [model.group_shape(l) for l in (0, 1)] == [(1, 1, 2), (2, 2, 2)]
    x = (jax.random.uniform(jax.random.PRNGKey(0), (5, *SHAPE)) > 0.5).astype(jnp.float32)
    out = jax.jit(lambda p: model.apply({"params": p}, x, rngs={"sample": jax.random.PRNGKey(1)}))(params)
    assert out.kl_per_dim.shape == (5, 2) and np.all(np.asarray(out.kl_per_dim) >= 0)
    np.testing.assert_allclose(out.kl, out.kl_per_dim.sum(-1), rtol=1e-6)
    threshold = float(jnp.max(out.kl_per_dim.mean(0))) + 1.0                           # above every group's KL
    objective = ELBO(free_bits=threshold)
    loss, _, _ = jax.jit(lambda p: objective.compute(model, p, {"image": x}, jax.random.PRNGKey(1), 0, {}))(params)
    np.testing.assert_allclose(loss, jnp.mean(-out.log_px_z) + 2 * threshold, rtol=1e-5)
    lw, samples = jax.jit(lambda p: (
        model.apply({"params": p}, x, 3, rngs={"sample": jax.random.PRNGKey(2)}, method=NVAE.log_importance_weights),
        model.apply({"params": p}, 6, 0.5, rngs={"sample": jax.random.PRNGKey(3)}, method=NVAE.generate)))(params)
    assert lw.shape == (3, 5) and np.all(np.isfinite(lw))
    assert samples.shape == (6, *SHAPE) and np.all((samples >= 0) & (samples <= 1))


def test_images_are_padded_to_the_towers_halvings_and_the_output_cropped_back():
    """28x28 with two pre-processing blocks and two latent scales: three halvings, so the towers
    run on 32x32 (2 zero rows / columns on each side) with a 4x4 top group, and every output is
    28x28 again."""
    cfg = ModelConfig(name="nvae", channels=(2, 2, 2), latent_scales=2, groups_per_scale=1, group_channels=2)
    model = build_model(cfg, (28, 28, 1)).clone(expand=1)
    assert model.halvings == 3 and model.padded_shape == (32, 32) and model.top_shape == (4, 4, 2)
    assert model._margins() == ((2, 2), (2, 2))
    x = jnp.zeros((2, 28, 28, 1))
    keys = {"params": jax.random.PRNGKey(0), "sample": jax.random.PRNGKey(1)}
    variables = jax.eval_shape(model.init, keys, x)
    out = jax.eval_shape(lambda v: model.apply(v, x, rngs=keys), variables)
    assert out.decoded.shape == (2, 28, 28, 1) and out.z.shape == (2, 4 * 4 * 2) and out.kl_per_dim.shape == (2, 2)
    feats = jax.eval_shape(lambda v: model.apply(v, x, method=NVAE.bottom_up), variables)
    assert [f.shape[1:3] for f in feats] == [(4, 4), (8, 8)]
    assert jax.eval_shape(lambda v: model.apply(v, 3, rngs=keys, method=NVAE.generate), variables).shape == (3, 28, 28, 1)


def test_bad_priors_are_refused():
    with pytest.raises(ConfigError, match="model.prior='mog' is not allowed with model.name='nvae'"):
        build_objective(apply_overrides(Config(), ["model.name=nvae", "model.prior=mog"]))


def test_the_shifted_depthwise_convolution_is_the_grouped_convolution():
    h = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 5, 3))
    params = DepthwiseConv(5).init(jax.random.PRNGKey(1), h)["params"]
    params = dict(params, bias=jnp.asarray([0.1, -0.2, 0.3]))
    grouped = nn.Conv(3, (5, 5), feature_group_count=3)
    want = grouped.apply({"params": params}, h)
    np.testing.assert_allclose(DepthwiseConv(5).apply({"params": params}, h), want, rtol=1e-5, atol=1e-6)
    # the written-out VJP against autodiff of the grouped convolution, for the input and the kernel
    weights = jax.random.normal(jax.random.PRNGKey(2), want.shape)
    mine = jax.grad(lambda p, h: jnp.sum(weights * DepthwiseConv(5).apply({"params": p}, h)), argnums=(0, 1))(params, h)
    ref = jax.grad(lambda p, h: jnp.sum(weights * grouped.apply({"params": p}, h)), argnums=(0, 1))(params, h)
    for a, b in zip(jax.tree_util.tree_leaves(mine), jax.tree_util.tree_leaves(ref)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_a_given_top_group_is_completed_by_ancestral_sampling(two_scales):
    """generate_from(z_top) draws the lower groups from p(z_l | z_<l) exactly as `generate` does
    after drawing z_top itself (the same key stream), so a fitted sampler that replaces the top
    prior still samples the whole hierarchy; at temperature 0 it is `decode` (lower groups at
    their prior means)."""
    model, params = two_scales
    key, t, n = jax.random.PRNGKey(7), 0.7, 6
    top = model.apply({"params": params}, rngs={"sample": key}, method=lambda m: t * jax.random.normal(
        jax.random.split(m.make_rng("sample"), m.num_groups)[0], (n, *m.group_shape(0))).reshape(n, -1))
    sampled = model.apply({"params": params}, n, t, rngs={"sample": key}, method=NVAE.generate)
    completed = model.apply({"params": params}, top, t, rngs={"sample": key}, method=NVAE.generate_from)
    np.testing.assert_allclose(completed, sampled, rtol=1e-6, atol=1e-6)
    decoded = model.apply({"params": params}, top, method=lambda m, z: m.likelihood.mean(m.decode(z)))
    cold = model.apply({"params": params}, top, 0.0, rngs={"sample": key}, method=NVAE.generate_from)
    np.testing.assert_allclose(cold, decoded, rtol=1e-6, atol=1e-6)
    assert np.abs(np.asarray(completed) - np.asarray(decoded)).max() > 1e-3    # the lower group was drawn


def test_a_trained_hierarchy_samples_its_lower_groups_under_a_fitted_sampler(two_scales):
    model, params = two_scales
    trained = TrainedModel(model, params, batch_size=4)
    z = np.random.default_rng(0).normal(size=(6, model.latent_dim)).astype(np.float32)
    key = jax.random.PRNGKey(0)
    np.testing.assert_allclose(trained.generate_from(key, z, 0.0), trained.decode(z), rtol=1e-6, atol=1e-6)
    a, b = trained.generate_from(key, z, 1.0), trained.generate_from(jax.random.PRNGKey(1), z, 1.0)
    assert a.shape == (6, *SHAPE) and np.abs(a - b).max() > 1e-3
    np.testing.assert_array_equal(a, trained.generate_from(key, z, 1.0))                  # a function of the key
