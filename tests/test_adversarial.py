"""Adversarial objectives (AAE, VAE-GAN, the PatchGAN term on any variant): the model and the
discriminator are both updated in one jitted step that compiles once, and the PatchGAN term's
start step and adaptive weight do what Esser et al. 2021 (eq. 7) say."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae.config import Config
from vae.errors import ConfigError
from vae.objectives import AdversarialTerm
from vae.objectives.base import forward
from vae.step import create_train_state, make_optimizer, make_train_step
from vae.variants import build_model, build_objective

SHAPE = (8, 8, 1)


def _setup(name, **overrides):
    cfg = Config().replace(**{"model.name": name, "model.hidden": (16,), "model.latent_dim": 4, **overrides})
    model = build_model(cfg.model, SHAPE)
    objective = build_objective(cfg, dataset_size=64, total_steps=10)
    optimizer = make_optimizer(cfg.optim, 10)
    state = create_train_state(model, optimizer, SHAPE, 0, objective)
    batch = {"image": jnp.asarray(np.random.default_rng(0).integers(0, 2, (8, *SHAPE)), jnp.float32),
             "label": jnp.zeros((8,), jnp.int32)}
    return cfg, model, objective, state, batch


def _changed(a, b) -> bool:
    return any(not np.array_equal(np.asarray(x), np.asarray(y))
               for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def _copy(tree):
    return jax.tree_util.tree_map(lambda a: np.array(a), tree)


@pytest.mark.parametrize("name, overrides", [
    ("aae", {}), ("vae_gan", {}), ("vae", {"objective.adversarial": "patchgan"}),
    ("ae", {"objective.adversarial": "patchgan"}),
])
def test_both_parameter_sets_update_in_one_jitted_step_compiled_once(name, overrides):
    _, model, objective, state, batch = _setup(name, **overrides)
    step = make_train_step(model, objective, make_optimizer(Config().optim, 10))
    for _ in range(3):
        before_params, before_disc = _copy(state.params), _copy(state.extra["disc_params"])
        state, metrics = step(state, batch)
        assert _changed(before_params["encoder"], state.params["encoder"])
        assert _changed(before_params["decoder"], state.params["decoder"])
        assert _changed(before_disc, state.extra["disc_params"])
        assert np.isfinite(float(metrics["loss"])) and np.isfinite(float(metrics["disc_loss"]))
    assert step._cache_size() == 1


def test_patchgan_term_waits_for_its_start_step():
    _, model, objective, state, batch = _setup("vae", **{"objective.adversarial": "patchgan",
                                                         "objective.adversarial_start": 1})
    step = make_train_step(model, objective, make_optimizer(Config().optim, 10))
    disc0 = _copy(state.extra["disc_params"])
    state, metrics = step(state, batch)                    # step 0: off
    assert float(metrics["adversarial_weight"]) == 0.0
    assert not _changed(disc0, state.extra["disc_params"])
    state, metrics = step(state, batch)                    # step 1: on
    assert float(metrics["adversarial_weight"]) > 0.0
    assert _changed(disc0, state.extra["disc_params"])


def test_adaptive_weight_is_the_ratio_of_gradient_norms_at_the_decoders_last_layer():
    cfg, model, objective, state, batch = _setup("vae", **{"objective.adversarial": "patchgan",
                                                           "objective.adversarial_weight": 0.5})
    assert isinstance(objective, AdversarialTerm)
    rng, step = jax.random.PRNGKey(7), jnp.asarray(3, jnp.int32)
    _, metrics, _ = objective.compute(model, state.params, batch, rng, step, state.extra)
    disc = objective.discriminator

    def base(p):
        return objective.base.compute(model, p, batch, rng, step, state.extra["base"])[0]

    def gen(p):
        x_hat = model.likelihood.mean(forward(model, p, batch, rng).decoded)
        return -jnp.mean(disc.apply({"params": state.extra["disc_params"]}, x_hat))

    g_base = jax.grad(base)(state.params)["decoder"]["out"]["kernel"]
    g_gen = jax.grad(gen)(state.params)["decoder"]["out"]["kernel"]
    expected = 0.5 * float(jnp.linalg.norm(g_base) / (jnp.linalg.norm(g_gen) + 1e-4))
    assert float(metrics["adversarial_weight"]) == pytest.approx(expected, rel=1e-4)


def test_adversarial_settings_without_the_term_are_refused():
    with pytest.raises(ConfigError, match="objective.adversarial_start is set, but objective.adversarial='none'"):
        Config().replace(**{"objective.adversarial_start": 100})
    with pytest.raises(ConfigError, match="objective.adversarial='gan' is not allowed"):
        Config().replace(**{"objective.adversarial": "gan"})
    Config().replace(**{"objective.adversarial": "patchgan", "objective.disc_learning_rate": 2e-4})
