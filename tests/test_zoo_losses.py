"""The losses of the deterministic, distribution-matching and perceptual variants against
independent computations on fixed tiny inputs: numpy double sums, scipy, scikit-image and
finite differences."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import wasserstein_distance
from skimage.metrics import structural_similarity

from vae.config import Config
from vae.objectives.autoencoders import decoder_gradient_penalty
from vae.objectives.divergences import mmd, sliced_wasserstein, wasserstein_1d
from vae.objectives.similarity import MS_SSIM_WEIGHTS, _pool, log_cosh, max_scales, ms_ssim, ssim, ssim_components
from vae.step import init_params
from vae.variants import build_model


def _mmd_numpy(a, b, kernel, c):
    def k(u, v):
        d2 = float(np.sum((u - v) ** 2))
        return c / (c + d2) if kernel == "imq" else math.exp(-d2 / c)

    n, m = len(a), len(b)
    aa = sum(k(a[i], a[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    bb = sum(k(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    ab = sum(k(a[i], b[j]) for i in range(n) for j in range(m)) / (n * m)
    return aa + bb - 2 * ab


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_mmd_equals_a_numpy_double_sum(kernel):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(7, 3)).astype(np.float32) + 0.5
    b = rng.normal(size=(9, 3)).astype(np.float32)
    c = 2.0 * 3  # the default scale 2 d
    got = float(mmd(jnp.asarray(a), jnp.asarray(b), kernel))
    np.testing.assert_allclose(got, _mmd_numpy(a.astype(np.float64), b.astype(np.float64), kernel, c), rtol=1e-4,
                               atol=1e-6)
    # an explicit scale is used as given
    got = float(mmd(jnp.asarray(a), jnp.asarray(b), kernel, scale=0.7))
    np.testing.assert_allclose(got, _mmd_numpy(a.astype(np.float64), b.astype(np.float64), kernel, 0.7), rtol=1e-4,
                               atol=1e-6)


def test_mmd_refuses_unknown_kernels_and_single_samples():
    z = jnp.zeros((4, 2))
    with pytest.raises(ValueError, match="kernel='gauss' is not allowed"):
        mmd(z, z, "gauss")
    with pytest.raises(ValueError, match="at least 2 samples"):
        mmd(z[:1], z)


def test_sliced_wasserstein_in_1d_is_scipys_wasserstein_distance():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(50, 1)).astype(np.float32)
    b = (rng.normal(size=(50, 1)) * 2 + 1).astype(np.float32)
    # p = 1 in one dimension: every direction is +-1, and W_1 is scipy's distance
    got = float(sliced_wasserstein(jnp.asarray(a), jnp.asarray(b), jax.random.PRNGKey(0), num_projections=5, p=1.0))
    np.testing.assert_allclose(got, wasserstein_distance(a[:, 0], b[:, 0]), rtol=1e-5)
    # p = 2: the mean squared difference of the sorted samples
    w2 = float(wasserstein_1d(jnp.asarray(a[:, 0]), jnp.asarray(b[:, 0]), 2.0))
    np.testing.assert_allclose(w2, np.mean((np.sort(a[:, 0]) - np.sort(b[:, 0])) ** 2), rtol=1e-5)


def test_sliced_wasserstein_of_a_rotation_invariant_pair_matches_any_direction():
    # two isotropic clouds differing by scale: every projection has the same W2^2 in expectation
    rng = np.random.default_rng(2)
    a = jnp.asarray(rng.normal(size=(4000, 3)), jnp.float32)
    b = 2.0 * jnp.asarray(rng.normal(size=(4000, 3)), jnp.float32)
    sw = float(sliced_wasserstein(a, b, jax.random.PRNGKey(3), num_projections=20))
    assert sw == pytest.approx(1.0, rel=0.1)  # W2^2(N(0,1), N(0,4)) = (2 - 1)^2 = 1


def test_ssim_equals_scikit_image_on_single_scale_inputs():
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(2, 24, 20, 3)).astype(np.float32)
    y = np.clip(x + 0.2 * rng.normal(size=x.shape), 0, 1).astype(np.float32)
    got = np.asarray(ssim(jnp.asarray(x), jnp.asarray(y)))
    for i in range(2):
        ref = structural_similarity(x[i], y[i], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                    data_range=1.0, channel_axis=-1)
        np.testing.assert_allclose(got[i], ref, rtol=1e-4, atol=1e-5)
    assert float(ssim(jnp.asarray(x), jnp.asarray(x))[0]) == pytest.approx(1.0, abs=1e-5)


def test_ms_ssim_scales_weights_and_errors():
    assert max_scales(28, 28) == 2 and max_scales(64, 64) == 3 and max_scales(256, 256) == 5
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.uniform(size=(2, 28, 28, 1)), jnp.float32)
    y = jnp.clip(x + 0.3 * jnp.asarray(rng.normal(size=x.shape), jnp.float32), 0, 1)
    # one scale is plain SSIM; identical images score 1; a noisier copy scores lower
    np.testing.assert_allclose(np.asarray(ms_ssim(x, y, num_scales=1)), np.asarray(ssim(x, y)), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(ms_ssim(x, x)), 1.0, atol=1e-5)
    noisier = jnp.clip(x + 0.6 * jnp.asarray(rng.normal(size=x.shape), jnp.float32), 0, 1)
    assert np.all(np.asarray(ms_ssim(x, noisier)) < np.asarray(ms_ssim(x, y)))
    # two scales: cs at full size to the weight w1, SSIM of the pooled images to w2 (renormalized)
    _, cs1 = ssim_components(x, y)
    s2, _ = ssim_components(_pool(x), _pool(y))
    w = np.asarray(MS_SSIM_WEIGHTS[:2]) / sum(MS_SSIM_WEIGHTS[:2])
    np.testing.assert_allclose(np.asarray(ms_ssim(x, y)), np.asarray(cs1) ** w[0] * np.asarray(s2) ** w[1], rtol=1e-5)
    with pytest.raises(ValueError, match="num_scales=3 is not allowed for 28x28 images; choose 1..2"):
        ms_ssim(x, y, num_scales=3)
    with pytest.raises(ValueError, match="at least 11x11"):
        ms_ssim(x[:, :8, :8], y[:, :8, :8])


def test_log_cosh_equals_numpy_and_stays_finite():
    t = np.array([-3.0, -0.2, 0.0, 0.05, 1.0, 40.0], np.float32)
    np.testing.assert_allclose(np.asarray(log_cosh(jnp.asarray(t), 10.0)),
                               np.log(np.cosh(10.0 * t.astype(np.float64))) / 10.0, rtol=1e-5, atol=1e-6)
    assert np.isfinite(np.asarray(log_cosh(jnp.asarray([1e4], jnp.float32), 10.0))).all()


def test_rae_gradient_penalty_matches_a_finite_difference():
    cfg = Config().replace(**{"model.name": "rae_gp", "model.hidden": (16,), "model.latent_dim": 3})
    model = build_model(cfg.model, (6, 5, 1))
    params = init_params(model, (6, 5, 1), jax.random.PRNGKey(0))
    z = jnp.asarray(np.random.default_rng(5).normal(size=(2, 3)), jnp.float32)
    got = np.asarray(decoder_gradient_penalty(model, params, z))

    def summed_mean(zz):
        decoded = model.apply({"params": params}, zz, method=model.decode)
        return np.asarray(jnp.sum(model.likelihood.mean(decoded), axis=(1, 2, 3)), np.float64)

    eps = 1e-2
    grads = np.zeros((2, 3))
    for j in range(3):
        step = np.zeros((1, 3), np.float32)
        step[0, j] = eps
        grads[:, j] = (summed_mean(z + step) - summed_mean(z - step)) / (2 * eps)
    np.testing.assert_allclose(got, np.sum(grads**2, axis=1), rtol=2e-3)
