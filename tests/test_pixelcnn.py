"""The VQ-VAE's 2-D code map (model.code_map) and the gated PixelCNN prior over it: causality
and normalization against brute force, learning a spatial dependency, and the run round trip."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vae.config import Config, ConfigError, ModelConfig
from vae.models import VQVAE
from vae.samplers import SamplerError, fit_sampler, load_sampler, make_sampler
from vae.samplers.pixelcnn import GatedPixelCNN
from vae.step import create_train_state
from vae.variants import build_model

MAP_MODEL = dict(name="vqvae", architecture="conv", code_map=True, channels=(8, 8), code_dim=2, num_codes=16,
                 latent_dim=7 * 7 * 2)


def test_each_logit_depends_on_exactly_the_codes_before_it():
    height, width, vocab = 4, 5, 7
    net = GatedPixelCNN(vocab, height, width, features=32, depth=4)
    codes = jax.random.randint(jax.random.PRNGKey(0), (1, height * width), 0, vocab)
    params = net.init(jax.random.PRNGKey(1), codes)["params"]
    logits = jax.jit(lambda c: net.apply({"params": params}, c))
    base = logits(codes)[0]
    for q in range(height * width):            # change one code; see which positions' logits move
        changed = codes.at[0, q].set((codes[0, q] + 1) % vocab)
        moved = np.abs(np.asarray(logits(changed)[0] - base)).max(axis=-1) > 1e-6
        # raster order: position p sees q iff q < p (no blind spot at this depth, nothing after p)
        np.testing.assert_array_equal(moved, np.arange(height * width) > q, err_msg=f"changed position {q}")


def test_pixelcnn_probabilities_of_every_map_sum_to_one():
    vocab = 3
    sampler = make_sampler("pixelcnn", {"features": 8, "depth": 2, "map_height": 2, "map_width": 2,
                                        "num_codes": vocab})
    net = sampler.network(vocab)
    every = jnp.asarray(list(itertools.product(range(vocab), repeat=4)), jnp.int32)   # all 81 maps
    state = {"vocab": np.zeros((vocab,), np.int8), "length": np.zeros((4,), np.int8),
             "network": net.init(jax.random.PRNGKey(0), every[:2])["params"]}
    log_p = sampler.log_prob(state, every)
    np.testing.assert_allclose(float(jax.scipy.special.logsumexp(log_p)), 0.0, atol=1e-5)


def test_pixelcnn_learns_a_vertical_dependency_and_samples_it():
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 6, (600, 1, 4))
    codes = np.repeat(rows, 3, axis=1).reshape(600, 12).astype(np.int32)   # each column repeats its first row
    sampler = make_sampler("pixelcnn", {"features": 16, "depth": 2, "steps": 150, "batch_size": 32,
                                        "learning_rate": 1e-2,
                                        "map_height": 3, "map_width": 4, "num_codes": 6, "check_every": 0})
    state, report = sampler.fit(codes, jax.random.PRNGKey(0))
    uniform = -12 * math.log(6)
    assert report["uniform_log_prob"] == pytest.approx(uniform)
    # the first row is uniform (4 log 6 nats); the rest is determined: the bound is -4 log 6
    assert report["held_out_log_prob"] > -4 * math.log(6) - 1.0 > uniform + 10
    drawn = np.asarray(sampler.sample(state, jax.random.PRNGKey(1), 200)).reshape(200, 3, 4)
    assert np.mean(drawn[:, 1:] == drawn[:, :1]) > 0.95


def test_pixelcnn_options_are_checked():
    with pytest.raises(SamplerError, match="kernel=4 must be odd"):
        make_sampler("pixelcnn", {"kernel": 4})
    with pytest.raises(SamplerError, match="needs the code map's size"):
        make_sampler("pixelcnn", {"steps": 1}).fit(np.zeros((10, 4), np.int32), jax.random.PRNGKey(0))
    with pytest.raises(SamplerError, match="6 positions, not map_height \\* map_width = 2 \\* 2"):
        make_sampler("pixelcnn", {"map_height": 2, "map_width": 2}).fit(np.zeros((10, 6), np.int32),
                                                                        jax.random.PRNGKey(0))


def test_code_map_config_errors_name_the_values():
    with pytest.raises(ConfigError, match="model.code_map needs model.architecture=conv .*, not 'mlp'"):
        Config().replace(**{"model.name": "vqvae", "model.code_map": True})
    with pytest.raises(ConfigError, match=r"model.latent_dim=16 must equal .* 7 \* 7 \* 2 = 98"):
        build_model(ModelConfig(**{**MAP_MODEL, "latent_dim": 16}), (28, 28, 1))


def test_code_map_is_position_major_and_local():
    model = build_model(ModelConfig(**MAP_MODEL), (28, 28, 1))
    assert model.code_map == (7, 7) and model.num_tokens == 49
    params = create_train_state(model, optax.adam(1e-3), (28, 28, 1), seed=0).params
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 28, 28, 1))
    x2 = x.at[:, 20:, 20:, :].set(1.0 - x[:, 20:, 20:, :])       # change the bottom-right corner only
    encode = jax.jit(lambda v: model.apply({"params": params}, v, method=VQVAE.encode).mean.reshape(2, 7, 7, 2))
    z, z2 = encode(x), encode(x2)
    np.testing.assert_array_equal(z[:, :2, :2], z2[:, :2, :2])     # the top-left codes do not see it
    assert float(jnp.abs(z[:, -1, -1] - z2[:, -1, -1]).max()) > 0  # the bottom-right ones do
    out = jax.jit(lambda v: model.apply({"params": params}, v))(x)
    assert out.decoded.shape == (2, 28, 28, 1) and out.codes.shape == (2, 49)


@pytest.fixture(scope="module")
def map_run(tmp_path_factory):
    import vae.config
    import vae.run
    from conftest import TINY_RUN

    cfg = vae.config.Config().replace(**{**TINY_RUN, **{f"model.{k}": v for k, v in MAP_MODEL.items()}})
    out = str(tmp_path_factory.mktemp("vqmap") / "run")
    vae.run.train(cfg, out)
    return vae.run.load_run(out)


def test_pixelcnn_on_a_code_map_run_round_trips(map_run, tmp_path):
    from vae.synthesis import synthesize

    with pytest.raises(SamplerError, match="'pixelcnn' models one code per map position; this model has 4"):
        make_sampler("pixelcnn").bind(build_model(ModelConfig(**{**MAP_MODEL, "quantizer": "rvq"}), (28, 28, 1)))
    record = fit_sampler(map_run, "pixelcnn", {"features": 8, "depth": 2, "steps": 20})
    assert record["options"]["map_height"] == 7 and record["options"]["num_codes"] == 16
    fitted = load_sampler(map_run, "pixelcnn")
    codes = fitted.draw(jax.random.PRNGKey(0), 3)
    assert codes.shape == (3, 49) and codes.min() >= 0 and codes.max() < 16
    np.testing.assert_array_equal(codes, load_sampler(map_run, "pixelcnn").draw(jax.random.PRNGKey(0), 3))
    out = synthesize(map_run, 4, out=str(tmp_path / "map.npz"), sampler="pixelcnn")
    assert out["shape"] == [4, 28, 28, 1]


def test_pixelcnn_refuses_a_sequence_of_codes(tmp_path):
    sequence_model = build_model(ModelConfig(name="vqvae", latent_dim=8, code_dim=4, hidden=(16,)), (28, 28, 1))
    with pytest.raises(SamplerError, match="needs a 2-D map of codes .* use code_prior"):
        make_sampler("pixelcnn").bind(sequence_model)
