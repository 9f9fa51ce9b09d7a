import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import vae.data as vdata
from vae.checkpoint import Checkpointer
from vae.config import ModelConfig, OptimConfig
from vae.data.pipeline import Batcher, eval_batches, prepare
from vae.variants import build_model
from vae.objectives import ELBO, Objective
from vae.step import (create_train_state, evaluate, make_eval_step, make_fused_train_step, make_optimizer,
                       make_train_step)

SHAPE = (28, 28, 1)


def _setup(steps=300, lr=1e-3):
    model = build_model(ModelConfig(latent_dim=8, hidden=(128,)), SHAPE)
    optimizer = make_optimizer(OptimConfig(learning_rate=lr), steps)
    state = create_train_state(model, optimizer, SHAPE, seed=0)
    step = make_train_step(model, ELBO(), optimizer)
    return model, optimizer, state, step


def _trees_equal(a, b):
    leaves_a, leaves_b = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_a_few_hundred_steps_lower_the_test_loss_markedly():
    train, test = vdata.load("mnist5k", "train"), vdata.load("mnist5k", "test")
    model, optimizer, state, step = _setup()
    batcher = Batcher(train.images, train.labels, 128, seed=0, dynamic_binarization=True)
    test_x = prepare(test, "dynamic", train=False, seed=0)
    eval_step = make_eval_step(model, ELBO())
    before = evaluate(eval_step, state.params, eval_batches(test_x, None, 500), jax.random.PRNGKey(0))
    for s in range(300):
        state, metrics = step(state, batcher.batch(s))
    after = evaluate(eval_step, state.params, eval_batches(test_x, None, 500), jax.random.PRNGKey(0))
    # an untrained decoder gives ~784 log 2 = 543 nats; 300 steps reach well under 200
    assert before["loss"] > 500
    assert after["loss"] < 200 and after["loss"] < 0.4 * before["loss"]
    np.testing.assert_allclose(after["elbo"], -(after["recon"] + after["kl"]), rtol=1e-5)
    assert int(state.step) == 300
    assert all(np.isfinite(v) for v in after.values())


def test_train_step_compiles_once():
    model, optimizer, state, step = _setup(steps=5)
    batch = {"image": jnp.zeros((4, *SHAPE)), "label": jnp.zeros(4, jnp.int32)}
    for _ in range(3):
        state, _ = step(state, batch)
    assert step._cache_size() == 1


def test_checkpoint_round_trip_restores_identical_state(tmp_path):
    model, optimizer, state, step = _setup(steps=5)
    batch = {"image": jnp.full((4, *SHAPE), 0.5), "label": jnp.zeros(4, jnp.int32)}
    for _ in range(3):
        state, _ = step(state, batch)
    ckpt = Checkpointer(tmp_path / "ckpt", keep=2)
    ckpt.save(3, state, {"note": "hello"}, metrics={"loss": 1.0})
    template = create_train_state(model, optimizer, SHAPE, seed=123)
    restored, record = ckpt.restore(template)
    ckpt.close()
    assert record == {"note": "hello"}
    assert int(restored.step) == 3
    _trees_equal(restored.params, state.params)
    _trees_equal(restored.opt_state, state.opt_state)
    _trees_equal(restored.rng, state.rng)


def test_checkpointer_keeps_latest_and_best(tmp_path):
    model, optimizer, state, _ = _setup(steps=5)
    ckpt = Checkpointer(tmp_path / "ckpt", keep=2)
    for s, loss in [(1, 5.0), (2, 1.0), (3, 4.0), (4, 3.0), (5, 6.0)]:
        ckpt.save(s, state, metrics={"loss": loss})
    assert ckpt.all_steps() == [2, 4, 5]  # the best (step 2) and the latest two
    assert ckpt.best_step() == 2 and ckpt.latest_step() == 5
    ckpt.close()


def test_resume_gives_the_same_params_as_uninterrupted_training(tmp_path):
    train = vdata.load("mnist5k", "train[:512]")
    model, optimizer, state0, step = _setup(steps=30)
    batcher = Batcher(train.images, None, 64, seed=0, dynamic_binarization=True)
    state = state0
    for s in range(30):
        state, _ = step(state, batcher.batch(s))
    uninterrupted = state

    model, optimizer, state, step = _setup(steps=30)
    for s in range(12):
        state, _ = step(state, batcher.batch(s))
    ckpt = Checkpointer(tmp_path / "ckpt")
    ckpt.save(12, state)
    ckpt.close()
    # a new process would rebuild everything from scratch: new template, new batcher, new step
    model, optimizer, template, step = _setup(steps=30)
    state, _ = Checkpointer(tmp_path / "ckpt").restore(template)
    batcher = Batcher(train.images, None, 64, seed=0, dynamic_binarization=True)
    for s in range(int(state.step), 30):
        state, _ = step(state, batcher.batch(s))
    _trees_equal(state.params, uninterrupted.params)
    _trees_equal(state.opt_state, uninterrupted.opt_state)


def test_optimizer_schedule_and_clipping():
    from vae.step import learning_rate_schedule

    sched = learning_rate_schedule(OptimConfig(learning_rate=1e-3, warmup_steps=10, schedule="cosine",
                                               end_learning_rate_factor=0.1), total_steps=110)
    np.testing.assert_allclose([sched(0), sched(5), sched(10), sched(110)], [0.0, 5e-4, 1e-3, 1e-4], rtol=1e-5)
    const = learning_rate_schedule(OptimConfig(learning_rate=2e-3, warmup_steps=4), total_steps=100)
    np.testing.assert_allclose([const(2), const(4), const(90)], [1e-3, 2e-3, 2e-3], rtol=1e-6)
    opt = make_optimizer(OptimConfig(optimizer="adamw", clip_norm=1.0, learning_rate=0.1), 10)
    params = {"w": jnp.ones(3)}
    updates, _ = opt.update({"w": jnp.full(3, 100.0)}, opt.init(params), params)
    assert np.isfinite(np.asarray(updates["w"])).all()
    assert float(optax.tree.norm(updates)) < 1.0


def test_fused_step_equals_batcher_then_step_across_epochs():
    """make_fused_train_step gathers (and binarizes) the batch inside the step's program; it
    must give exactly the states and metrics of Batcher.batch(step) followed by the step."""
    rng = np.random.default_rng(0)
    images = rng.random((50, *SHAPE)).astype(np.float32)
    labels = np.arange(50, dtype=np.int32) % 10
    model, optimizer, state_a, step = _setup(steps=12)
    state_b = create_train_state(model, optimizer, SHAPE, seed=0)
    batcher = Batcher(images, labels, 16, seed=3, dynamic_binarization=True)   # 3 steps per epoch
    fused = make_fused_train_step(model, ELBO(), optimizer, batcher)
    for s in range(7):  # crosses two epoch boundaries (new permutations)
        state_a, metrics_a = step(state_a, batcher.batch(s))
        state_b, metrics_b = fused(state_b, batcher.data(s))
        for key in metrics_a:
            np.testing.assert_allclose(np.asarray(metrics_b[key]), np.asarray(metrics_a[key]), rtol=1e-6, atol=1e-6)
    for x, y in zip(jax.tree_util.tree_leaves(state_a.params), jax.tree_util.tree_leaves(state_b.params)):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-6, atol=1e-7)
    assert int(state_b.step) == 7
    assert fused._cache_size() == 1


class _MeanSquaredCode(Objective):
    """A deterministic per-example objective: the squared norm of each example's posterior mean."""

    per_example = True

    def compute(self, model, params, batch, rng, step, extra):
        mean = model.apply({"params": params}, batch["image"], method=type(model).encode).mean
        loss_ex = jnp.sum(mean**2, axis=-1)
        return jnp.mean(loss_ex), {"loss": loss_ex, "first": loss_ex[0] * 0 + 1.0}, None


def _conv_setup():
    model = build_model(ModelConfig(architecture="conv", latent_dim=4, channels=(4, 8), hidden=(16,)), SHAPE)
    optimizer = make_optimizer(OptimConfig(learning_rate=1e-2), 10)
    batch = {"image": jnp.asarray((np.random.default_rng(1).random((8, *SHAPE)) < 0.4).astype(np.float32)),
             "label": jnp.zeros(8, jnp.int32)}
    return model, optimizer, batch


def test_batch_splits_give_the_one_pass_step_for_a_deterministic_objective():
    """With no sampling in the objective, a step over 2 or 4 parts of the batch is the one-pass
    step up to float32 rounding: same loss, metrics and updated parameters."""
    model, optimizer, batch = _conv_setup()
    ref_state, ref = make_train_step(model, _MeanSquaredCode(), optimizer)(
        create_train_state(model, optimizer, SHAPE, seed=0), batch)
    for splits in (2, 4):
        state, metrics = make_train_step(model, _MeanSquaredCode(), optimizer, splits=splits)(
            create_train_state(model, optimizer, SHAPE, seed=0), batch)
        for key in ("loss", "grad_norm", "first"):
            np.testing.assert_allclose(float(metrics[key]), float(ref[key]), rtol=1e-5)
        for x, y in zip(jax.tree_util.tree_leaves(ref_state.params), jax.tree_util.tree_leaves(state.params)):
            np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-5, atol=1e-6)


def test_batch_splits_elbo_is_the_mean_over_parts_with_their_own_keys():
    """splits=2: part i is rows i, i+2, ... with key fold_in(loss key, i); the step's loss and
    metrics are the parts' means, and its gradient is the gradient of that mean."""
    model, optimizer, batch = _conv_setup()
    state = create_train_state(model, optimizer, SHAPE, seed=0)
    loss_rng, _ = jax.random.split(jax.random.fold_in(state.rng, state.step))

    def loss_of(params):
        parts = [ELBO().compute(model, params, {k: v[i::2] for k, v in batch.items()},
                                jax.random.fold_in(loss_rng, i), state.step, {}) for i in range(2)]
        return jnp.mean(jnp.stack([p[0] for p in parts])), parts

    (loss, parts), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
    new_state, metrics = make_train_step(model, ELBO(), optimizer, splits=2)(
        create_train_state(model, optimizer, SHAPE, seed=0), batch)  # the input state is donated
    np.testing.assert_allclose(float(metrics["loss"]), float(loss), rtol=1e-6)
    for key in ("elbo", "recon", "kl"):
        expected = np.mean([float(jnp.mean(p[1][key])) for p in parts])
        np.testing.assert_allclose(float(metrics[key]), expected, rtol=1e-6)
    np.testing.assert_allclose(float(metrics["grad_norm"]), float(optax.tree.norm(grads)), rtol=1e-5)
    # the one-pass step draws other samples: a different loss, the same estimator
    _, one_pass = make_train_step(model, ELBO(), optimizer)(create_train_state(model, optimizer, SHAPE, seed=0), batch)
    assert float(one_pass["loss"]) != float(metrics["loss"])
    assert int(new_state.step) == 1


def test_batch_splits_refuse_objectives_with_batch_statistics():
    from vae.objectives import FactorVAE

    model, optimizer, _ = _conv_setup()
    with pytest.raises(ValueError, match="splits=2 needs a per-example objective.*ELBO"):
        make_train_step(model, ELBO(free_bits=0.5), optimizer, splits=2)
    with pytest.raises(ValueError, match="splits=2 needs a per-example objective.*FactorVAE"):
        make_train_step(model, FactorVAE(), optimizer, splits=2)
    with pytest.raises(ValueError, match="splits=0 is not allowed"):
        make_train_step(model, ELBO(), optimizer, splits=0)


def test_the_train_step_takes_only_an_objective():
    model = build_model(ModelConfig(latent_dim=2, hidden=(8,)), SHAPE)
    optimizer = make_optimizer(OptimConfig(), 10)
    with pytest.raises(TypeError, match="takes a vae.objectives.Objective .* got function"):
        make_train_step(model, lambda model, params, batch, rng, step: (0.0, {}), optimizer)
