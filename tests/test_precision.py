"""Mixed precision (train.compute_dtype): the networks compute in bfloat16 while params, optimizer
state, likelihoods and KLs stay float32, and training lands near the float32 run."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import vae.config
import vae.run
from vae.config import ModelConfig
from vae.errors import ConfigError
from vae.models.precision import with_compute_dtype
from vae.step import create_train_state
from vae.variants import build_model


def test_bfloat16_networks_keep_float32_params_and_outputs():
    model = build_model(ModelConfig(hidden=(16,), latent_dim=2), (4, 4, 1))
    params = create_train_state(model, optax.adam(1e-3), (4, 4, 1), seed=0).params
    low = with_compute_dtype(model, "bfloat16")
    x = (jax.random.uniform(jax.random.PRNGKey(0), (8, 4, 4, 1)) > 0.5).astype(jnp.float32)
    out32 = model.apply({"params": params}, x, rngs={"sample": jax.random.PRNGKey(1)})
    out16 = low.apply({"params": params}, x, rngs={"sample": jax.random.PRNGKey(1)})
    assert out16.log_px_z.dtype == jnp.float32 and out16.kl.dtype == jnp.float32
    np.testing.assert_allclose(out16.log_px_z, out32.log_px_z, rtol=0.02)      # bfloat16: ~3 significant digits
    assert not np.array_equal(out16.log_px_z, out32.log_px_z)                   # it did compute in bfloat16
    text = jax.jit(lambda p: low.apply({"params": p}, x, rngs={"sample": jax.random.PRNGKey(1)}).kl).lower(
        params).as_text()
    assert "bf16" in text and "dot_general" in text
    grads = jax.grad(lambda p: -jnp.mean(low.apply({"params": p}, x, rngs={"sample": jax.random.PRNGKey(1)})
                                         .log_px_z))(params)
    assert all(g.dtype == jnp.float32 for g in jax.tree_util.tree_leaves(grads))
    assert with_compute_dtype(model, "float32") is model


def test_bfloat16_training_stays_within_two_percent_of_float32(tmp_path):
    base = {"train.steps": 300, "train.eval_every": 300, "model.hidden": (64,), "model.latent_dim": 8,
            "train.progress": False, "train.final_iwae_samples": 0, "train.num_samples": 4,
            "data.train_split": "train[:1024]", "data.test_split": "test[:256]", "train.loggers": ("jsonl",)}
    results = {}
    for dtype in ("float32", "bfloat16"):
        cfg = vae.config.Config().replace(**{**base, "train.compute_dtype": dtype})
        results[dtype] = vae.run.train(cfg, str(tmp_path / dtype))["test_elbo"]
    assert results["bfloat16"] == pytest.approx(results["float32"], rel=0.02), results


def test_a_model_without_encoder_and_decoder_refuses_a_lower_precision(tmp_path):
    cfg = vae.config.Config().replace(**{"model.name": "nvae", "model.architecture": "conv", "train.steps": 1,
                                         "train.compute_dtype": "bfloat16", "data.train_split": "train[:64]",
                                         "model.channels": (4, 4)})
    with pytest.raises(ConfigError, match="train.compute_dtype=bfloat16: .* has no encoder and decoder networks"):
        vae.run.train(cfg, str(tmp_path / "n"))
    assert not (tmp_path / "n" / "config.json").exists()
