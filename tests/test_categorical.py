"""Categorical latents: the Gumbel-softmax density and sampler against scipy integration and
closed forms, and the categorical VAE's bounds against exact enumeration of its codes."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vae.config import Config, ModelConfig, ObjectiveConfig
from vae.models.categorical import CategoricalPosterior, concrete_log_prob, gumbel_softmax_log_sample
from vae.objectives import GumbelSoftmaxELBO, gumbel_temperature
from vae.step import create_train_state
from vae.variants import build_model, build_objective

SHAPE = (4, 4, 1)


def _log_density(logits, tau):
    """log q_tau(y) at y = softmax([t, 0]) over a grid of t (K - 1 free logits), compiled once."""
    return jax.jit(lambda t: concrete_log_prob(jax.nn.log_softmax(jnp.concatenate([t, jnp.zeros_like(t[..., :1])],
                                                                                  -1), -1), logits, tau))


def test_concrete_density_integrates_to_one_and_matches_the_binary_closed_form_and_the_sampler():
    """Integrals over the simplex in additive-logistic coordinates y = softmax([t, 0]), whose
    Jacobian is prod_k y_k: no singularity at the simplex's edges."""
    logits, tau = jnp.asarray([0.7, -0.4]), 0.6
    t = np.linspace(-80, 80, 200_001)[:, None]
    log_y = jax.nn.log_softmax(np.concatenate([t, np.zeros_like(t)], 1), -1)
    log_q = np.asarray(_log_density(logits, tau)(jnp.asarray(t)), np.float64)
    np.testing.assert_allclose(np.trapezoid(np.exp(log_q + np.asarray(log_y).sum(1)), t[:, 0]), 1.0, rtol=1e-4)
    # the binary concrete of Maddison et al. (2017): alpha = exp(l1 - l2), written out by hand
    alpha = np.exp(0.7 + 0.4)
    for y in (0.05, 0.3, 0.8):
        binary = tau * alpha * y ** (-tau - 1) * (1 - y) ** (-tau - 1) / (alpha * y ** -tau + (1 - y) ** -tau) ** 2
        got = concrete_log_prob(jnp.log(jnp.asarray([y, 1 - y])), logits, tau)
        np.testing.assert_allclose(np.exp(got), binary, rtol=1e-4)
    # the sampler draws from this density: P(y_1 < 0.3) by sampling and by integration
    draws = np.exp(gumbel_softmax_log_sample(jax.random.PRNGKey(0), logits, tau, num_samples=40_000))[:, 0]
    below = np.asarray(np.exp(log_y[:, 0])) < 0.3
    mass = np.trapezoid(np.where(below, np.exp(log_q + np.asarray(log_y).sum(1)), 0.0), t[:, 0])
    np.testing.assert_allclose(np.mean(draws < 0.3), mass, atol=0.01)
    # three classes: the density over the 2-simplex integrates to 1
    g = np.linspace(-60, 60, 1201)
    t2 = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    log_y3 = jax.nn.log_softmax(np.concatenate([t2, np.zeros_like(t2[:, :1])], 1), -1)
    log_q3 = _log_density(jnp.asarray([0.2, -1.0, 0.5]), 0.9)(jnp.asarray(t2))
    total3 = np.exp(np.asarray(log_q3, np.float64) + np.asarray(log_y3).sum(1)).sum() * (g[1] - g[0]) ** 2
    np.testing.assert_allclose(total3, 1.0, rtol=1e-3)


def test_low_temperature_samples_are_nearly_one_hot_with_the_categorical_frequencies():
    logits = jnp.asarray([1.0, 0.0, -0.5, 0.3])
    draws = [np.exp(gumbel_softmax_log_sample(jax.random.PRNGKey(1), logits, tau, 20_000)) for tau in (1.0, 0.1, 0.01)]
    near_one_hot = [np.mean(d.max(-1) > 0.99) for d in draws]
    assert near_one_hot[0] < near_one_hot[1] < near_one_hot[2] and near_one_hot[2] > 0.95, near_one_hot
    y = draws[2]
    freq = np.bincount(y.argmax(-1), minlength=4) / len(y)
    np.testing.assert_allclose(freq, jax.nn.softmax(logits), atol=0.015)
    hard = CategoricalPosterior(jnp.broadcast_to(logits, (1, 1, 4))).sample_one_hot(jax.random.PRNGKey(2), 20_000)
    np.testing.assert_allclose(np.asarray(hard).mean((0, 1, 2)), jax.nn.softmax(logits), atol=0.015)
    assert set(np.unique(np.asarray(hard))) == {0.0, 1.0}


def test_kl_to_the_uniform_prior_and_the_iwae_match_enumeration_of_every_code():
    model = build_model(ModelConfig(name="categorical_vae", latent_dim=2, categories=3, hidden=(8,)), SHAPE)
    params = create_train_state(model, optax.adam(1e-3), SHAPE, seed=0).params
    x = (jax.random.uniform(jax.random.PRNGKey(0), (2, *SHAPE)) > 0.5).astype(jnp.float32)
    q = model.apply({"params": params}, x, method=type(model).encode)
    probs = np.asarray(jax.nn.softmax(q.logits))
    np.testing.assert_allclose(q.kl_uniform(), (probs * np.log(probs * 3)).sum((1, 2)), rtol=1e-5)
    np.testing.assert_allclose(q.mean, probs.reshape(2, 6), rtol=1e-6)
    # exact log p(x) = log sum_z p(z) p(x|z) over the 3^2 codes
    codes = jnp.asarray([np.eye(3)[list(c)].reshape(6) for c in itertools.product(range(3), repeat=2)])
    decoded = model.apply({"params": params}, jnp.repeat(codes[:, None], 2, axis=1), method=type(model).decode)
    log_px_z = model.apply({"params": params}, decoded, x, method=type(model).log_likelihood)   # [9, 2]
    exact = jax.nn.logsumexp(log_px_z - np.log(9), axis=0)
    lw = model.apply({"params": params}, x, 20_000, rngs={"sample": jax.random.PRNGKey(3)},
                     method=type(model).log_importance_weights)
    np.testing.assert_allclose(jax.nn.logsumexp(lw, 0) - np.log(20_000), exact, atol=0.01)
    # the ELBO by enumeration: sum_z q(z) log p(x|z) - KL(q || uniform); the mean log weight estimates it
    q_codes = np.array([[probs[b, 0, c0] * probs[b, 1, c1] for b in range(2)]
                        for c0, c1 in itertools.product(range(3), repeat=2)])              # [9, 2]
    elbo = (q_codes * np.asarray(log_px_z)).sum(0) - np.asarray(q.kl_uniform())
    np.testing.assert_allclose(lw.mean(0), elbo, atol=0.05)
    assert np.all(elbo < np.asarray(exact))
    out = model.apply({"params": params}, x, rngs={"sample": jax.random.PRNGKey(4)})
    assert set(np.unique(np.asarray(out.z))) == {0.0, 1.0} and np.all(np.asarray(out.z).sum(-1) == 2)


def test_objective_follows_the_temperature_schedule_and_reports_the_discrete_elbo():
    np.testing.assert_allclose(gumbel_temperature(0), 1.0)
    np.testing.assert_allclose(gumbel_temperature(10_000), np.exp(-0.1), rtol=1e-6)
    np.testing.assert_allclose(gumbel_temperature(10 ** 6), 0.5)
    cfg = Config(model=ModelConfig(name="categorical_vae", latent_dim=2, categories=3, hidden=(8,)),
                 objective=ObjectiveConfig(categorical_kl="relaxed", anneal_rate=1e-3))
    objective = build_objective(cfg, dataset_size=10, total_steps=10)
    assert objective == GumbelSoftmaxELBO(anneal_rate=1e-3, kl="relaxed")
    model = build_model(cfg.model, SHAPE)
    params = create_train_state(model, optax.adam(1e-3), SHAPE, seed=0).params
    x = (jax.random.uniform(jax.random.PRNGKey(0), (3, *SHAPE)) > 0.5).astype(jnp.float32)
    loss, m = objective(model, params, {"image": x}, jax.random.PRNGKey(1), jnp.asarray(500))
    np.testing.assert_allclose(m["temperature"], np.exp(-0.5), rtol=1e-6)
    q = model.apply({"params": params}, x, method=type(model).encode)
    np.testing.assert_allclose(m["kl"], q.kl_uniform(), rtol=1e-6)       # closed form in the reported ELBO
    assert np.isfinite(float(loss)) and np.all(np.isfinite(m["elbo"]))


def test_joint_vae_kls_capacities_and_loss_against_a_hand_computation():
    cfg = Config(model=ModelConfig(name="joint_vae", latent_dim=2, categories=3, num_discrete=2, hidden=(8,)),
                 objective=ObjectiveConfig(capacity_steps=100))
    objective = build_objective(cfg, dataset_size=10, total_steps=10)
    assert (objective.gamma, objective.cont_capacity, objective.temperature) == (30.0, 5.0, 0.67)
    np.testing.assert_allclose(objective.capacities(20), (1.0, 1.0), rtol=1e-6)
    np.testing.assert_allclose(objective.capacities(10_000), (5.0, 2 * np.log(3)), rtol=1e-6)  # capped at log K
    model = build_model(cfg.model, SHAPE)
    assert model.latent_dim == 2 + 2 * 3
    params = create_train_state(model, optax.adam(1e-3), SHAPE, seed=0).params
    x = (jax.random.uniform(jax.random.PRNGKey(0), (3, *SHAPE)) > 0.5).astype(jnp.float32)
    q = model.apply({"params": params}, x, method=type(model).encode)
    mean, var = np.asarray(q.gaussian.mean), np.exp(np.asarray(q.gaussian.log_var))
    probs = np.asarray(jax.nn.softmax(q.discrete.logits))
    kl = 0.5 * (var + mean**2 - 1 - np.log(var)).sum(1) + (probs * np.log(probs * 3)).sum((1, 2))
    out = model.apply({"params": params}, x, rngs={"sample": jax.random.PRNGKey(1)})
    np.testing.assert_allclose(out.kl, kl, rtol=1e-5)
    assert np.all(np.asarray(out.z)[:, 2:].reshape(3, 2, 3).sum(-1) == 1)          # exact one-hot codes
    rng, step = jax.random.PRNGKey(2), 20
    loss, m = objective(model, params, {"image": x}, rng, jnp.asarray(step))
    log_px, kl_c, kl_d = model.apply({"params": params}, x, 0.67, rngs={"sample": jax.random.split(rng)[0]},
                                     method=type(model).relaxed)
    expect = -np.mean(log_px) + 30 * (abs(np.mean(kl_c) - 1.0) + abs(np.mean(kl_d) - 1.0))
    np.testing.assert_allclose(loss, expect, rtol=1e-5)
    lw = model.apply({"params": params}, x, 4, rngs={"sample": rng}, method=type(model).log_importance_weights)
    assert lw.shape == (4, 3) and np.all(np.isfinite(lw))
