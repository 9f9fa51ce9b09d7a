"""Likelihoods against reference computations: Gaussian with learned sigma, discretized logistic
mixture (PixelCNN++), 256-way categorical, and bits/dim."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from vae.models.distributions import (
    BernoulliLikelihood,
    Categorical256,
    DiscretizedLogisticMixture,
    GaussianLikelihood,
    bits_per_dim,
)

LEVELS = np.arange(256, dtype=np.float32) / 255.0


def random_dlm_params(rng, lead, channels, k, log_scale=(-5.0, 0.0), mean_range=1.2, coeff_scale=1.0):
    """Random DLM parameters [*lead, P] in the layout of DiscretizedLogisticMixture."""
    n = 3 if channels == 3 else 2
    logits = rng.normal(0, 2, (*lead, k))
    means = rng.uniform(-mean_range, mean_range, (*lead, channels, k))
    log_scales = rng.uniform(*log_scale, (*lead, channels, k))
    per_channel = [means, log_scales] + ([rng.normal(0, coeff_scale, (*lead, channels, k))] if n == 3 else [])
    rest = np.concatenate(per_channel, axis=-1).reshape(*lead, channels * n * k)
    return np.concatenate([logits, rest], axis=-1).astype(np.float32)


def pixelcnnpp_reference(x01, params):
    """numpy (float64) port of PixelCNN++'s discretized_mix_logistic_loss (Salimans et al. 2017,
    pixel_cnn_pp/nn.py) for 3 channels, returning log P per example [batch]."""
    x = 2.0 * x01.astype(np.float64) - 1.0
    l = params.astype(np.float64)
    k = l.shape[-1] // 10
    logit_probs = l[..., :k]
    l = l[..., k:].reshape(*x.shape, 3 * k)
    means = l[..., :k]
    log_scales = np.maximum(l[..., k:2 * k], -7.0)
    coeffs = np.tanh(l[..., 2 * k:3 * k])
    x = x[..., None] + np.zeros(k)
    m2 = means[..., 1, :] + coeffs[..., 0, :] * x[..., 0, :]
    m3 = means[..., 2, :] + coeffs[..., 1, :] * x[..., 0, :] + coeffs[..., 2, :] * x[..., 1, :]
    means = np.concatenate([means[..., 0:1, :], m2[..., None, :], m3[..., None, :]], axis=-2)
    centered = x - means
    inv = np.exp(-log_scales)
    plus_in, min_in, mid_in = inv * (centered + 1 / 255), inv * (centered - 1 / 255), inv * centered
    cdf_delta = special.expit(plus_in) - special.expit(min_in)
    log_cdf_plus = plus_in - np.logaddexp(0, plus_in)
    log_one_minus_cdf_min = -np.logaddexp(0, min_in)
    log_pdf_mid = mid_in - log_scales - 2.0 * np.logaddexp(0, mid_in)
    with np.errstate(divide="ignore"):
        inner = np.where(cdf_delta > 1e-5, np.log(np.maximum(cdf_delta, 1e-12)), log_pdf_mid - np.log(127.5))
    log_probs = np.where(x < -0.999, log_cdf_plus, np.where(x > 0.999, log_one_minus_cdf_min, inner))
    log_probs = log_probs.sum(-2) + logit_probs - special.logsumexp(logit_probs, axis=-1, keepdims=True)
    return special.logsumexp(log_probs, axis=-1).reshape(x.shape[0], -1).sum(-1)


# ---------------------------------------------------------------- discretized logistic mixture


def test_dlm_param_channels():
    assert DiscretizedLogisticMixture(num_mixtures=10).param_channels(1) == 30
    assert DiscretizedLogisticMixture(num_mixtures=10).param_channels(3) == 100
    assert DiscretizedLogisticMixture(num_mixtures=4).param_channels(3) == 40
    assert Categorical256().param_channels(3) == 768
    assert GaussianLikelihood().param_channels(3) == 3 and BernoulliLikelihood().param_channels(1) == 1
    assert [c.discrete for c in (BernoulliLikelihood, GaussianLikelihood, DiscretizedLogisticMixture,
                                 Categorical256)] == [True, False, True, True]


def test_dlm_one_channel_sums_to_one_over_bins():
    rng = np.random.default_rng(0)
    k = 5
    lik = DiscretizedLogisticMixture(num_mixtures=k)
    # 64 random mixtures, scales from far below the bin width (e^-7, mid-point regime in the
    # tails) to wider than the range, means partly outside [-1, 1]
    params = random_dlm_params(rng, (64, 1, 1, 1), 1, k, log_scale=(-7.5, 0.5))
    x = LEVELS.reshape(256, 1, 1, 1)                      # batch = the 256 levels
    logp = np.asarray(jax.jit(lik.log_prob)(params, x), np.float64)  # [64, 256]
    assert logp.shape == (64, 256)
    np.testing.assert_allclose(np.exp(logp).sum(-1), 1.0, atol=1e-4)


@pytest.fixture(scope="module")
def rgb_joint():
    """One RGB pixel with K = 3 coupled components: the full joint P(R, G, B) over 256^3 levels."""
    rng = np.random.default_rng(1)
    k = 3
    params = random_dlm_params(rng, (1, 1, 1), 3, k, log_scale=(-4.0, -2.0), mean_range=0.6, coeff_scale=0.5)
    lik = DiscretizedLogisticMixture(num_mixtures=k)
    g, b = np.meshgrid(LEVELS, LEVELS, indexing="ij")

    @jax.jit
    def slab(r):  # all (G, B) for one R: [256, 256]
        x = jnp.stack([jnp.full(g.shape, r), g, b], axis=-1).reshape(-1, 1, 1, 3)
        return lik.log_prob(jnp.asarray(params)[None], x).reshape(256, 256)

    logp = np.asarray(jax.lax.map(slab, jnp.asarray(LEVELS)), np.float64)  # [R, G, B]
    return lik, params, logp


def test_dlm_rgb_joint_sums_to_one(rgb_joint):
    """All 256^3 values of a coupled RGB pixel: the joint is normalized."""
    _, _, logp = rgb_joint
    np.testing.assert_allclose(np.exp(logp).sum(), 1.0, atol=1e-4)


def test_dlm_rgb_one_channel_sums_to_one_given_the_others():
    """K = 1, coefficients zero: the channels are independent, so summing one channel over its
    256 levels leaves the product of the other two channels' bin masses (computed in numpy)."""
    rng = np.random.default_rng(2)
    lik = DiscretizedLogisticMixture(num_mixtures=1)
    params = random_dlm_params(rng, (8, 1, 1, 1), 3, 1, log_scale=(-7.0, 0.0))
    params[..., 3::3] = 0.0  # layout [logit, (mu, log_s, coeff) x 3]: zero the coefficients
    others_level = 128
    log_prob = jax.jit(lik.log_prob)
    for c in range(3):
        x = np.full((256, 1, 1, 3), others_level / 255.0, np.float32)
        x[:, 0, 0, c] = LEVELS
        logp = np.asarray(log_prob(params, x), np.float64)  # [8, 256]
        p_others = np.ones(8)
        xo = 2 * others_level / 255 - 1
        for o in (o for o in range(3) if o != c):
            mu = params[:, 0, 0, 0, 1 + 3 * o].astype(np.float64)
            s = np.exp(np.maximum(params[:, 0, 0, 0, 2 + 3 * o].astype(np.float64), -7.0))
            p_others *= special.expit((xo + 1 / 255 - mu) / s) - special.expit((xo - 1 / 255 - mu) / s)
        np.testing.assert_allclose(np.exp(logp).sum(-1), p_others, rtol=2e-4, atol=1e-7)


def test_dlm_matches_pixelcnnpp_reference():
    rng = np.random.default_rng(3)
    k = 4
    lik = DiscretizedLogisticMixture(num_mixtures=k)
    params = random_dlm_params(rng, (3, 4, 5), 3, k, log_scale=(-4.0, 0.0))
    x = (rng.integers(0, 256, (3, 4, 5, 3)) / 255.0).astype(np.float32)
    x[0, 0, 0] = [0.0, 1.0, 0.0]  # the edge bins
    x[1, 2, 3] = [1.0, 1.0, 1.0]
    got = jax.jit(lik.log_prob)(params, x)
    np.testing.assert_allclose(got, pixelcnnpp_reference(x, params), rtol=1e-4)


def test_dlm_one_component_one_channel_matches_numpy():
    lik = DiscretizedLogisticMixture(num_mixtures=1)
    mu, log_s = 0.13, -1.5  # every bin mass > 1e-5: no mid-point approximation
    s = math.exp(log_s)
    levels = np.array([0, 1, 7, 100, 128, 200, 254, 255])
    x01 = (levels / 255.0).astype(np.float32)
    xs = 2 * levels / 255 - 1
    expected = np.log(special.expit((xs + 1 / 255 - mu) / s) - special.expit((xs - 1 / 255 - mu) / s))
    expected[0] = np.log(special.expit((xs[0] + 1 / 255 - mu) / s))          # (-inf, -1 + 1/255]
    expected[-1] = np.log(1.0 - special.expit((xs[-1] - 1 / 255 - mu) / s))  # [1 - 1/255, inf)
    params = np.tile(np.array([0.3, mu, log_s], np.float32), (len(levels), 1, 1, 1))  # logit ignored (K=1)
    got = jax.jit(lik.log_prob)(params, x01.reshape(-1, 1, 1, 1))
    assert np.exp(expected).min() > 1e-5
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_dlm_midpoint_approximation_in_the_far_tail_and_finite_gradients():
    lik = DiscretizedLogisticMixture(num_mixtures=1)
    mu, log_s = -0.8, -3.0
    s = math.exp(log_s)
    x01 = np.array([0.9], np.float32)
    xs = 2 * float(x01[0]) - 1
    z_lo, z_hi = (xs - 1 / 255 - mu) / s, (xs + 1 / 255 - mu) / s
    exact = np.log(special.expit(-z_lo) - special.expit(-z_hi))  # float64, well below 1e-5
    assert exact < np.log(1e-5)
    # plus points in every branch (edges, mid-point, extreme scales), for finite values and gradients
    x = (np.array([0.9 * 255, 0, 255, 3, 250, 128]) / 255.0).astype(np.float32).reshape(6, 1, 1, 1)
    p = np.array([[[[0.0, m, ls]]] for m, ls in [(mu, log_s), (5.0, -9.0), (-5.0, -9.0), (0.9, -7.0), (-0.9, 3.0),
                                                (0.0, -7.0)]], np.float32)
    logp, grads = jax.jit(jax.value_and_grad(lambda q: lik.log_prob(q, x)[0]))(p)
    assert abs(float(logp) - exact) < 1e-3 * abs(exact)
    logp_all, grads = jax.jit(jax.value_and_grad(lambda q: jnp.sum(lik.log_prob(q, x))))(p)
    assert np.isfinite(np.asarray(grads)).all() and np.isfinite(float(logp_all))


def test_dlm_sample_histogram_and_mean_one_channel():
    rng = np.random.default_rng(4)
    k = 3
    lik = DiscretizedLogisticMixture(num_mixtures=k)
    params = random_dlm_params(rng, (1, 1, 1), 1, k, log_scale=(-3.5, -1.5), mean_range=0.7)
    probs = np.exp(np.asarray(jax.jit(lik.log_prob)(params[None], LEVELS.reshape(256, 1, 1, 1)), np.float64))[0]
    n = 40_000
    draws = np.asarray(jax.jit(lik.sample)(jax.random.PRNGKey(0), np.broadcast_to(params, (n, 1, 1, 3 * k))))
    assert draws.shape == (n, 1, 1, 1) and draws.min() >= 0 and draws.max() <= 1
    levels = np.round(draws * 255).astype(int).ravel()
    np.testing.assert_allclose(levels / 255.0, draws.ravel(), atol=1e-6)  # on the 8-bit grid
    freq = np.bincount(levels, minlength=256) / n
    assert 0.5 * np.abs(freq - probs).sum() < 0.03  # total variation
    exact_mean = (probs * LEVELS).sum()
    np.testing.assert_allclose(float(jax.jit(lik.mean)(params)[0, 0, 0, 0]), exact_mean, atol=2e-3)
    np.testing.assert_allclose(draws.mean(), exact_mean, atol=5e-3)


def test_dlm_rgb_sample_and_mean_match_exact_joint(rgb_joint):
    lik, params, logp = rgb_joint
    p = np.exp(logp)
    exact = [(p.sum((1, 2)) * LEVELS).sum(), (p.sum((0, 2)) * LEVELS).sum(), (p.sum((0, 1)) * LEVELS).sum()]
    np.testing.assert_allclose(np.asarray(jax.jit(lik.mean)(params))[0, 0, 0], exact, atol=2e-3)
    n = 40_000
    draws = np.asarray(jax.jit(lik.sample)(jax.random.PRNGKey(1), np.broadcast_to(params, (n, 1, 1, 30))))
    assert draws.shape == (n, 1, 1, 3)
    np.testing.assert_allclose(draws.reshape(n, 3).mean(0), exact, atol=5e-3)
    # the coupled G and B given R: compare the sample correlation of R and G with the exact one
    r_g = (p.sum(2) * LEVELS[:, None] * LEVELS[None, :]).sum() - exact[0] * exact[1]
    d = draws.reshape(n, 3)
    np.testing.assert_allclose(np.cov(d[:, 0], d[:, 1], bias=True)[0, 1], r_g, atol=3e-3)


# ---------------------------------------------------------------- categorical


def test_categorical_matches_numpy_log_softmax_and_normalizes():
    rng = np.random.default_rng(5)
    lik = Categorical256()
    log_prob = jax.jit(lik.log_prob)
    logits = rng.normal(0, 3, (2, 3, 4, 256 * 3)).astype(np.float32)
    x = (rng.integers(0, 256, (2, 3, 4, 3)) / 255.0).astype(np.float32)
    x[0, 0, 0] = [0.0, 1.0, 0.0]
    per = logits.astype(np.float64).reshape(2, 3, 4, 3, 256)
    logp = per - special.logsumexp(per, axis=-1, keepdims=True)
    idx = np.round(x * 255).astype(int)
    expected = np.take_along_axis(logp, idx[..., None], axis=-1)[..., 0].reshape(2, -1).sum(-1)
    np.testing.assert_allclose(log_prob(logits, x), expected, rtol=1e-5)
    # sums to one over the 256 levels (one sub-pixel)
    lp = np.asarray(log_prob(logits[:1, :1, :1, :256], LEVELS.reshape(256, 1, 1, 1)), np.float64)
    np.testing.assert_allclose(np.exp(lp).sum(), 1.0, atol=1e-5)
    # mean: expected level / 255
    np.testing.assert_allclose(jax.jit(lik.mean)(logits), (np.exp(logp) * np.arange(256)).sum(-1) / 255, atol=1e-5)


# ---------------------------------------------------------------- Gaussian with learned sigma


@pytest.mark.parametrize("mode,shape", [("global", ()), ("pixel", (4, 5, 3))])
def test_gaussian_learned_sigma_params_log_prob_and_grad(mode, shape):
    rng = np.random.default_rng(6)
    mean = rng.random((2, 4, 5, 3)).astype(np.float32)
    x = rng.random((2, 4, 5, 3)).astype(np.float32)
    lik = GaussianLikelihood(sigma=0.2, learn_sigma=mode)
    floor = math.log(1e-3)

    @jax.jit
    def run(params):
        v = {"params": params}
        logp, grad = jax.value_and_grad(lambda q: jnp.sum(lik.apply({"params": q}, mean, x)))(params)
        per_example = lik.apply(v, mean, x)
        log_sigma = lik.apply(v, x.shape[1:], method=lik.log_sigma)
        draw = lik.apply(v, jax.random.PRNGKey(1), mean, method=lik.sample)
        return per_example, grad["log_sigma"], log_sigma, draw

    variables = jax.jit(lik.init)(jax.random.PRNGKey(0), mean, x)
    assert set(variables["params"]) == {"log_sigma"}
    assert variables["params"]["log_sigma"].shape == shape
    logp, grad, log_sigma, draw = run(variables["params"])
    np.testing.assert_allclose(np.exp(log_sigma), 0.2, rtol=1e-5)  # the initial sigma is exactly `sigma`
    np.testing.assert_allclose(logp, stats.norm(mean.astype(np.float64), 0.2).logpdf(x).reshape(2, -1).sum(-1),
                               rtol=1e-5)
    assert draw.shape == mean.shape and np.isfinite(np.asarray(draw)).all()
    # another (e.g. trained) value: log sigma = floor + softplus(param - floor)
    raw = np.asarray(rng.normal(-1.0, 0.5, shape), np.float32)
    sigma = np.exp(floor + np.logaddexp(0.0, raw.astype(np.float64) - floor))
    logp, grad, _, _ = run({"log_sigma": raw})
    np.testing.assert_allclose(logp, stats.norm(mean.astype(np.float64), sigma).logpdf(x).reshape(2, -1).sum(-1),
                               rtol=1e-5)
    # d/d log sigma of sum log N = sum ((x - m)^2 / sigma^2 - 1), times d log sigma / d param = sigmoid(param - floor)
    resid = ((x - mean).astype(np.float64) / sigma) ** 2 - 1.0
    expected_grad = resid.sum(0) if mode == "pixel" else resid.sum()
    expected_grad = expected_grad * special.expit(raw.astype(np.float64) - floor)
    g = np.asarray(grad)
    assert g.shape == shape and (np.abs(g) > 0).all()
    np.testing.assert_allclose(g, expected_grad, rtol=1e-4)
    # the floor: a collapsed parameter still gives sigma >= 1e-3 and a finite, non-zero gradient
    logp, grad, log_sigma, _ = run({"log_sigma": np.full(shape, -40.0, np.float32)})
    assert float(np.min(np.exp(log_sigma))) >= 1e-3 * (1 - 1e-6)
    assert np.isfinite(np.asarray(logp)).all() and np.isfinite(np.asarray(grad)).all()


def test_gaussian_fixed_sigma_has_no_params_and_validates():
    lik = GaussianLikelihood(sigma=0.5)
    assert lik.init(jax.random.PRNGKey(0), jnp.zeros((1, 2, 2, 1)), jnp.zeros((1, 2, 2, 1))) == {}
    with pytest.raises(ValueError, match="learn_sigma"):
        GaussianLikelihood(learn_sigma="channel").log_prob(jnp.zeros((1, 2, 2, 1)), jnp.zeros((1, 2, 2, 1)))
    with pytest.raises(ValueError, match="floor"):
        GaussianLikelihood(sigma=1e-4, learn_sigma="global").init(
            jax.random.PRNGKey(0), jnp.zeros((1, 2, 2, 1)), jnp.zeros((1, 2, 2, 1)))


def test_vae_init_creates_learned_sigma():
    from vae.models import VAE, MLPDecoder, MLPEncoder, StandardNormalPrior

    lik = GaussianLikelihood(sigma=0.1, learn_sigma="pixel")
    shape = (6, 5, 1)
    model = VAE(encoder=MLPEncoder(3, hidden=(16,)), decoder=MLPDecoder((6, 5, lik.param_channels(1)), hidden=(16,)),
                prior=StandardNormalPrior(), likelihood=lik, latent_dim=3)
    x = jnp.asarray(np.random.default_rng(7).random((4, *shape)), jnp.float32)
    params = jax.jit(model.init)({"params": jax.random.PRNGKey(0), "sample": jax.random.PRNGKey(1)}, x)["params"]
    assert params["likelihood"]["log_sigma"].shape == shape


def test_bernoulli_log_prob_and_gradient_against_float64_at_extreme_logits():
    """log p = sum x log sigmoid(l) + (1 - x) log sigmoid(-l), within float32 rounding of a float64
    reference from |l| = 0 to 1e4, binary and fractional x; gradient x - sigmoid(l) everywhere,
    l = 0 included."""
    l = np.array([-1e4, -80.0, -20.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 20.0, 80.0, 1e4], np.float32)
    for xv in (0.0, 1.0, 0.3):
        x = np.full_like(l, xv)
        ref = xv * l.astype(np.float64) - np.logaddexp(0.0, l.astype(np.float64))
        logp, grad = jax.value_and_grad(lambda q: BernoulliLikelihood().log_prob(q, jnp.asarray(x).reshape(1, 11, 1, 1))[0])(
            jnp.asarray(l).reshape(1, 11, 1, 1))
        assert np.isfinite(float(logp))
        np.testing.assert_allclose(float(logp), ref.sum(), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(grad).ravel(), xv - special.expit(l.astype(np.float64)), atol=1e-6)
        per_pixel = np.asarray(BernoulliLikelihood().log_prob(jnp.asarray(l).reshape(11, 1, 1, 1),
                                                              jnp.asarray(x).reshape(11, 1, 1, 1)))
        np.testing.assert_allclose(per_pixel, ref, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- shared contract


CASES = {
    "bernoulli-1": (BernoulliLikelihood(), 1),
    "gaussian-3": (GaussianLikelihood(sigma=0.3), 3),
    "gaussian_pixel-1": (GaussianLikelihood(sigma=0.3, learn_sigma="pixel"), 1),
    "dlm-1": (DiscretizedLogisticMixture(num_mixtures=3), 1),
    "dlm-3": (DiscretizedLogisticMixture(num_mixtures=3), 3),
    "categorical-3": (Categorical256(), 3),
}


@pytest.mark.parametrize("case", list(CASES))
def test_mean_sample_shapes_ranges_and_sample_axes_broadcast(case):
    lik, channels = CASES[case]
    rng = np.random.default_rng(8)
    b, h, w, k = 2, 3, 4, 5
    p = lik.param_channels(channels)
    params = rng.normal(0, 2, (k, b, h, w, p)).astype(np.float32)
    if isinstance(lik, GaussianLikelihood):
        params = rng.random((k, b, h, w, p)).astype(np.float32) * 1.4 - 0.2  # means partly outside [0, 1]
    x = (rng.integers(0, 256, (b, h, w, channels)) / 255.0).astype(np.float32)
    if isinstance(lik, BernoulliLikelihood):
        x = np.round(x)
    learned = isinstance(lik, GaussianLikelihood) and lik.learn_sigma != "none"
    variables = jax.jit(lik.init)(jax.random.PRNGKey(0), params, x) if learned else {}

    @jax.jit
    def run(params):
        def call(method, *args):
            return lik.apply(variables, *args, method=method)
        logp = call(lik.log_prob, params, x)                                         # [k, batch]
        each = jax.vmap(lambda q: call(lik.log_prob, q, x))(params)                  # one sample at a time
        return logp, each, call(lik.mean, params[0]), call(lik.mean, params), call(lik.sample,
                                                                                    jax.random.PRNGKey(3), params[0])

    logp, each, mean0, mean_all, s = (np.asarray(a) for a in run(params))
    assert logp.shape == (k, b) and np.isfinite(logp).all()
    np.testing.assert_allclose(logp, each, rtol=1e-5)
    assert mean0.shape == (b, h, w, channels) and mean0.min() >= 0.0 and mean0.max() <= 1.0
    assert mean_all.shape == (k, b, h, w, channels)
    np.testing.assert_allclose(mean_all[0], mean0, rtol=1e-6)
    assert s.shape == (b, h, w, channels) and np.isfinite(s).all()
    if not isinstance(lik, GaussianLikelihood):  # a Gaussian draw is unbounded
        assert s.min() >= 0.0 and s.max() <= 1.0
    if lik.discrete and not isinstance(lik, BernoulliLikelihood):  # 8-bit levels k/255
        np.testing.assert_allclose(np.round(s * 255) / 255, s, atol=1e-6)


# ---------------------------------------------------------------- bits per dim


def test_bits_per_dim():
    d = 28 * 28
    np.testing.assert_allclose(bits_per_dim(d * math.log(2.0), d), 1.0, rtol=1e-12)
    np.testing.assert_allclose(bits_per_dim(d * math.log(2.0), d, continuous_8bit=True), 9.0, rtol=1e-12)
    nll = jnp.asarray([100.0, 2000.0])
    np.testing.assert_allclose(bits_per_dim(nll, 3072, continuous_8bit=True) - bits_per_dim(nll, 3072), 8.0,
                               rtol=1e-6)
    # a uniform categorical over 256 levels is exactly 8 bits/dim
    x = jnp.asarray(np.random.default_rng(9).integers(0, 256, (1, 2, 2, 3)) / 255.0, jnp.float32)
    nll = -jax.jit(Categorical256().log_prob)(jnp.zeros((1, 2, 2, 768)), x)
    np.testing.assert_allclose(bits_per_dim(nll, 12), 8.0, rtol=1e-6)
