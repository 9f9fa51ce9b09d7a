"""The VQ-VAE with each quantizer (model.quantizer=vq|rvq|fsq|lfq): codes round-trip, the
objective's terms, codebook upkeep through the train step, and the config's errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vae.config import Config, ConfigError, ModelConfig, apply_overrides
from vae.models import VQVAE
from vae.models.quantizers import nearest_code
from vae.objectives import VQObjective
from vae.step import create_train_state, make_train_step
from vae.variants import build_model

SHAPE = (4, 4, 1)
QUANTIZERS = {
    "vq": dict(num_codes=8, code_dim=2),
    "vq_cosine_rotation_projected": dict(num_codes=8, code_dim=4, codebook_cosine=True, vq_gradient="rotation",
                                         codebook_dim=2),
    "rvq": dict(quantizer="rvq", num_codes=8, code_dim=2, rvq_depth=3),
    "fsq": dict(quantizer="fsq", fsq_levels=(3, 4)),
    "lfq": dict(quantizer="lfq", code_dim=2),
}


def _setup(**kw):
    model = build_model(ModelConfig(name="vqvae", latent_dim=4, hidden=(16,), **kw), SHAPE)
    x = (jax.random.uniform(jax.random.PRNGKey(0), (32, *SHAPE)) > 0.5).astype(jnp.float32)
    params = create_train_state(model, optax.adam(1e-3), SHAPE, seed=0).params
    return model, params, {"image": x}


@pytest.mark.parametrize("case", sorted(QUANTIZERS))
def test_codes_round_trip_and_the_bound_counts_every_code(case):
    model, params, batch = _setup(**QUANTIZERS[case])
    x = batch["image"]

    @jax.jit
    def run(p):
        out, terms = model.apply({"params": p}, x, method=VQVAE.train_pass)
        codes = model.apply({"params": p}, x, method=VQVAE.encode_codes)
        return out, terms, codes, model.apply({"params": p}, codes, method=VQVAE.decode_codes)

    out, terms, codes, decoded_codes = run(params)
    assert codes.shape == (32, model.num_tokens) and codes.dtype == jnp.int32
    assert int(codes.min()) >= 0 and int(codes.max()) < model.codebook_size
    np.testing.assert_allclose(decoded_codes, out.z, atol=1e-5)       # decode_codes(encode_codes(x)) = z_q
    np.testing.assert_allclose(out.kl, model.num_tokens * math.log(model.codebook_size), rtol=1e-6)
    if model.quantizer == "fsq":
        assert model.codebook_size == 12 and "codebook" not in params
    if model.quantizer == "lfq":
        np.testing.assert_array_equal(np.abs(out.z), 1.0)
    if model.quantizer == "rvq":
        assert params["codebook"].shape == (3, 8, 2) and model.num_tokens == 6
        np.testing.assert_allclose(terms["quantized"], terms["entries"].sum(0), atol=1e-6)


@pytest.mark.parametrize("case", sorted(QUANTIZERS))
def test_objective_is_finite_and_trains_the_encoder_through_the_quantizer(case):
    model, params, batch = _setup(**QUANTIZERS[case])
    obj = VQObjective(decay=0.0)

    @jax.jit
    def run(p):
        (loss, (metrics, aux)), grads = jax.value_and_grad(
            lambda q: (lambda r: (r[0], r[1:]))(obj.compute(model, q, batch, jax.random.PRNGKey(0), 0, {})),
            has_aux=True)(p)
        return loss, metrics, grads

    loss, metrics, grads = run(params)
    assert np.isfinite(float(loss))
    assert float(jnp.abs(grads["encoder"]["head"]["kernel"] if "head" in grads["encoder"]
                         else jax.tree_util.tree_leaves(grads["encoder"])[-1]).sum()) > 0
    np.testing.assert_allclose(metrics["codes_used"] + metrics["dead_codes"],
                               model.num_codes * model.tokens_per_latent if model.quantizer in ("vq", "rvq")
                               else model.codebook_size)
    if model.quantizer == "fsq":
        np.testing.assert_array_equal(metrics["commitment"], 0.0)
    if model.quantizer == "lfq":
        assert {"sample_entropy", "codebook_entropy"} <= set(metrics)
    if model.quantizer in ("vq", "rvq"):
        assert float(jnp.abs(grads["codebook"]).sum()) > 0   # decay 0: the codebook loss trains it


def test_rotation_trick_keeps_the_forward_value_and_changes_the_encoder_gradient():
    st, params, batch = _setup(num_codes=8, code_dim=2)
    rot = build_model(ModelConfig(name="vqvae", latent_dim=4, hidden=(16,), num_codes=8, code_dim=2,
                                  vq_gradient="rotation"), SHAPE)
    grads, outs = [], []
    for model in (st, rot):
        fn = jax.jit(jax.value_and_grad(lambda p, m=model: -jnp.sum(m.apply({"params": p}, batch["image"]).log_px_z)))
        value, g = fn(params)
        outs.append(value)
        grads.append(jax.tree_util.tree_leaves(g["encoder"]))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-6)
    assert any(not np.allclose(a, b) for a, b in zip(*grads))


def test_kmeans_init_gives_every_code_a_vector_of_the_first_batch():
    model, params, batch = _setup(num_codes=8, code_dim=2)
    obj = VQObjective(kmeans_init=True)
    extra = obj.init_extra(model, params, None, SHAPE)
    _, _, aux = jax.jit(lambda p: obj.compute(model, p, batch, jax.random.PRNGKey(0), 0, extra))(params)
    new, new_extra, _ = jax.jit(lambda p, e, a, s: obj.update_extra(model, p, e, a, batch, jax.random.PRNGKey(1), s))(
        params, extra, aux, jnp.asarray(0))
    codes, _ = nearest_code(aux["z_e"], new["codebook"])
    assert np.bincount(np.asarray(codes), minlength=8).min() >= 1
    np.testing.assert_allclose(new_extra["embed_sum"], new["codebook"])         # EMA restarts at the k-means codes
    np.testing.assert_array_equal(new_extra["cluster_size"], 1.0)
    later, _, _ = jax.jit(lambda p, e, a, s: obj.update_extra(model, p, e, a, batch, jax.random.PRNGKey(1), s))(
        params, extra, aux, jnp.asarray(5))
    assert not np.allclose(later["codebook"], new["codebook"])                 # only the first step re-seeds


def test_dead_codes_are_replaced_by_encoder_outputs_in_the_train_step():
    model, params, batch = _setup(quantizer="rvq", num_codes=8, code_dim=2, rvq_depth=2)
    obj = VQObjective(dead_code_steps=2)
    extra = obj.init_extra(model, params, None, SHAPE)
    assert extra["idle_steps"].shape == (2, 8)
    _, _, aux = jax.jit(lambda p: obj.compute(model, p, batch, jax.random.PRNGKey(0), 0, extra))(params)
    used = np.zeros((2, 8), bool)
    for q in range(2):
        used[q, np.asarray(aux["codes"][:, q])] = True
    extra = {**extra, "idle_steps": jnp.ones((2, 8), jnp.int32)}                # every code idle for one step
    new, new_extra, metrics = jax.jit(lambda p, e: obj.update_extra(model, p, e, aux, batch, jax.random.PRNGKey(1),
                                                                     jnp.asarray(3)))(params, extra)
    assert int(metrics["codes_replaced"]) == int((~used).sum())
    np.testing.assert_array_equal(new_extra["idle_steps"], 0)
    for q in range(2):
        seen = np.asarray(aux["residuals"][q])
        for k in np.flatnonzero(~used[q]):                                       # a revived code is a residual row
            assert np.min(np.abs(seen - np.asarray(new["codebook"][q, k])).sum(-1)) < 1e-6


def test_rvq_and_lfq_train_three_steps_through_the_jitted_step():
    for case in ("rvq", "lfq"):
        model, _, batch = _setup(**QUANTIZERS[case])
        obj = VQObjective(kmeans_init=case == "rvq", dead_code_steps=1 if case == "rvq" else 0)
        state = create_train_state(model, optax.adam(1e-2), SHAPE, seed=0, objective=obj)
        step = make_train_step(model, obj, optax.adam(1e-2))
        losses = []
        for _ in range(3):
            state, metrics = step(state, batch)
            losses.append(float(metrics["loss"]))
        assert all(np.isfinite(losses)) and losses[-1] < losses[0], (case, losses)


def test_config_names_what_each_quantizer_option_needs():
    with pytest.raises(ConfigError, match=r"latent_dim=6 must be a multiple of len\(model.fsq_levels\)=4"):
        apply_overrides(Config(), ["model.name=vqvae", "model.quantizer=fsq", "model.latent_dim=6"])
    with pytest.raises(ConfigError, match="model.vq_gradient=rotation applies to model.quantizer=vq, not 'rvq'"):
        apply_overrides(Config(), ["model.name=vqvae", "model.quantizer=rvq", "model.vq_gradient=rotation"])
    with pytest.raises(ConfigError, match="apply to a learned codebook .* not 'fsq'"):
        apply_overrides(Config(), ["model.name=vqvae", "model.quantizer=fsq", "objective.vq_kmeans_init=true"])
    with pytest.raises(ConfigError, match=r"batch_size \* codes per image = 8 must be >= model.num_codes=512"):
        apply_overrides(Config(), ["model.name=vqvae", "objective.vq_dead_code_steps=10", "train.batch_size=4"])
    with pytest.raises(ConfigError, match="model.quantizer='pq' is not allowed"):
        apply_overrides(Config(), ["model.name=vqvae", "model.quantizer=pq"])
    with pytest.raises(ConfigError, match="model.quantizer is set, but model.name='vae' does not read it"):
        apply_overrides(Config(), ["model.quantizer=fsq"])
