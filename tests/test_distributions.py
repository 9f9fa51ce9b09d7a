import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from vae.models.distributions import (
    BernoulliLikelihood,
    DiagonalGaussian,
    GaussianLikelihood,
    StandardNormalPrior,
)


def test_kl_matches_closed_form():
    mean = jnp.array([[0.0, 1.0, -2.0], [0.5, 0.0, 3.0]])
    log_var = jnp.array([[0.0, np.log(4.0), np.log(0.25)], [-1.0, 1.0, 0.0]])
    q = DiagonalGaussian(mean, log_var)
    # KL(N(m, s^2) || N(0, 1)) = log(1/s) + (s^2 + m^2)/2 - 1/2, per dimension
    s2 = np.exp(np.asarray(log_var))
    expected = np.sum(-0.5 * np.log(s2) + 0.5 * (s2 + np.asarray(mean) ** 2) - 0.5, axis=-1)
    np.testing.assert_allclose(q.kl_standard_normal(), expected, rtol=1e-6)
    # spot value: KL(N(1, 4) || N(0, 1)) = -log 2 + (4 + 1)/2 - 1/2
    np.testing.assert_allclose(q.kl_standard_normal_per_dim()[0, 1], -np.log(2.0) + 2.0, rtol=1e-6)
    assert float(q.kl_standard_normal_per_dim()[0, 0]) == 0.0


def test_kl_matches_monte_carlo():
    q = DiagonalGaussian(jnp.array([[0.3, -1.2, 2.0, 0.0]]), jnp.array([[0.5, -0.7, 0.1, -2.0]]))
    prior = StandardNormalPrior()
    z = q.sample(jax.random.PRNGKey(0), num_samples=200_000)  # [S, 1, 4]
    mc = jnp.mean(q.log_prob(z) - prior.log_prob(z))
    exact = q.kl_standard_normal()[0]
    # standard error of the MC mean is ~0.005 here
    assert abs(float(mc) - float(exact)) < 0.03, (float(mc), float(exact))


def test_gaussian_log_prob_and_sampling_moments():
    q = DiagonalGaussian(jnp.array([[1.0, -2.0]]), jnp.array([[np.log(0.5), np.log(3.0)]]))
    z = jnp.array([[0.2, 0.7]])
    expected = stats.norm(1.0, np.sqrt(0.5)).logpdf(0.2) + stats.norm(-2.0, np.sqrt(3.0)).logpdf(0.7)
    np.testing.assert_allclose(q.log_prob(z), [expected], rtol=1e-5)
    draws = np.asarray(q.sample(jax.random.PRNGKey(1), num_samples=100_000))[:, 0]
    np.testing.assert_allclose(draws.mean(0), [1.0, -2.0], atol=0.02)
    np.testing.assert_allclose(draws.var(0), [0.5, 3.0], rtol=0.03)
    np.testing.assert_allclose(StandardNormalPrior().log_prob(z),
                               stats.norm.logpdf(np.asarray(z)).sum(-1), rtol=1e-6)


def test_bernoulli_log_prob_matches_scipy():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(2, 4, 4, 1)).astype(np.float32)
    x = (rng.random((2, 4, 4, 1)) < 0.5).astype(np.float32)
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    expected = stats.bernoulli(p).logpmf(x).reshape(2, -1).sum(-1)
    got = BernoulliLikelihood().log_prob(jnp.asarray(logits), jnp.asarray(x))
    assert got.shape == (2,)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_bernoulli_is_stable_for_extreme_logits():
    logits = jnp.array([-200.0, 200.0, 0.0]).reshape(1, 3, 1, 1)
    x = jnp.array([0.0, 1.0, 1.0]).reshape(1, 3, 1, 1)
    got = BernoulliLikelihood().log_prob(logits, x)
    np.testing.assert_allclose(got, [np.log(0.5)], rtol=1e-6)
    wrong = BernoulliLikelihood().log_prob(logits, 1.0 - x)
    assert np.isfinite(np.asarray(wrong)).all() and float(wrong[0]) < -399.0


@pytest.mark.parametrize("sigma", [1.0, 0.1])
def test_gaussian_likelihood_matches_scipy(sigma):
    rng = np.random.default_rng(1)
    mean = rng.random((3, 5, 5, 3)).astype(np.float32)
    x = rng.random((3, 5, 5, 3)).astype(np.float32)
    expected = stats.norm(mean.astype(np.float64), sigma).logpdf(x).reshape(3, -1).sum(-1)
    got = GaussianLikelihood(sigma=sigma).log_prob(jnp.asarray(mean), jnp.asarray(x))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
