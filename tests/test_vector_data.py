"""Data that are not images, and what a dataset's values are: vectors [N, D] (npz `vectors`, a 2-D
array, or arrays in memory) train with the MLP networks and a Gaussian likelihood; every dataset
says whether its values are 8-bit levels, binary or continuous, and bits/dim take the 8-bit
dequantization offset for 8-bit (or binary) data only."""

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vae.config
import vae.run
from vae.config import ModelConfig
from vae.data import DataFileError, FileOptions, load, load_split
from vae.data.base import infer_values
from vae.data.pipeline import prepared_values
from vae.errors import ConfigError
from vae.models import for_data, takes_8bit_offset
from vae.trained import load_run
from vae.variants import build_model, build_objective

D = 5


def _vectors(n=60, seed=0):
    """n real-valued vectors [n, D] well outside [0, 1] (a table's columns), and labels."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    x = (z @ rng.normal(size=(2, D)) * 3.0 + 10.0 + 0.1 * rng.normal(size=(n, D))).astype(np.float32)
    return x, (z[:, 0] > 0).astype(np.int64)


def _cfg(**over):
    base = {"train.steps": 4, "train.eval_every": 4, "model.hidden": (8,), "model.latent_dim": 2,
            "train.batch_size": 10, "train.progress": False, "train.final_iwae_samples": 4, "train.num_samples": 4,
            "train.loggers": ("jsonl",), "data.test_fraction": 0.2, "model.likelihood": "gaussian",
            "model.learn_sigma": "global", "data.binarize": "none"}
    return vae.config.Config().replace(**{**base, **over})


def test_a_vector_npz_loads_as_vectors_with_their_values_as_given(tmp_path):
    x, labels = _vectors()
    path = str(tmp_path / "table.npz")
    np.savez(path, vectors=x, labels=labels)
    opts = FileOptions(test_fraction=0.25)
    train, test = load(path, "train", files=opts), load(path, "test", files=opts)
    assert train.images.shape == (45, 1, 1, D) and test.images.shape == (15, 1, 1, D)
    assert train.info.vectors and train.info.values == "continuous" and not train.info.binary
    assert train.info.image_shape == (1, 1, D) and "vectors [N, 5] as given" in train.info.description
    rows = np.concatenate([train.images, test.images])[:, 0, 0, :]
    # every row given, unscaled (the values run to ~20, nothing is divided or clipped)
    assert sorted(map(tuple, rows)) == sorted(map(tuple, x)) and rows.max() > 1
    # a 2-D array under `images`, or in an .npy, is vectors too; 0/1 vectors are binary
    np.savez(tmp_path / "as_images.npz", images=x)
    np.save(tmp_path / "flags.npy", (x > 10).astype(np.uint8))
    assert load(str(tmp_path / "as_images.npz"), "train").info.vectors
    flags = load(str(tmp_path / "flags.npy"), "train")
    assert flags.info.vectors and flags.info.values == "binary" and flags.info.binary


def test_images_say_what_their_values_are_and_data_values_overrides(tmp_path):
    rng = np.random.default_rng(0)
    levels = rng.integers(0, 256, (20, 4, 4), dtype=np.uint8)
    cases = {"uint8": (levels, "8bit"), "grid32": (levels / np.float32(255), "8bit"),
             "grid16": ((levels / 255.0).astype(np.float16), "8bit"),
             "random": (rng.random((20, 4, 4)).astype(np.float32), "continuous"),
             "ones": ((levels > 127).astype(np.float32), "binary")}
    for name, (images, kind) in cases.items():
        np.save(tmp_path / f"{name}.npy", images)
        ds = load(str(tmp_path / f"{name}.npy"), "train")
        assert (name, ds.info.values, ds.info.vectors) == (name, kind, False)
    # 8-bit floats are put exactly on the levels (float16 ones too)
    np.testing.assert_array_equal(load(str(tmp_path / "grid16.npy"), "train", files=FileOptions(test_path=str(
        tmp_path / "grid16.npy"))).images[..., 0], levels.astype(np.float32) / np.float32(255))
    random = str(tmp_path / "random.npy")
    rounded = load(random, "train", files=FileOptions(values="8bit", test_path=random))
    assert rounded.info.values == "8bit" and "rounded to the 8-bit levels" in rounded.info.description
    np.testing.assert_allclose(rounded.images[..., 0], np.load(random), atol=0.5 / 255 + 1e-7)
    assert load(str(tmp_path / "uint8.npy"), "train", files=FileOptions(values="continuous")).info.values == \
        "continuous"
    with pytest.raises(DataFileError, match=r"data.values=binary needs every value 0 or 1, but \d+ are not"):
        load(random, "train", files=FileOptions(values="binary"))
    # resizing 8-bit images keeps them on the levels
    resized = load(str(tmp_path / "uint8.npy"), "train", files=FileOptions(image_size=(3, 5)))
    assert resized.info.values == "8bit" and infer_values(resized.images) == "8bit"
    assert infer_values(np.array([0.5, 0.25])) == "continuous" and infer_values(np.array([2.0])) == "continuous"


def test_the_built_in_datasets_say_what_their_values_are():
    mnist = load("mnist5k", "test[:10]")
    assert mnist.info.values == "8bit" and not mnist.info.vectors
    from vae.data.sprites import load_sprites
    assert load_sprites("test", num_test=4).info.values == "binary"
    with pytest.raises(DataFileError, match=r"data.values='continuous' applies to your own data.*'mnist5k'"):
        load_split(vae.config.DataConfig(values="continuous"), "train")
    with pytest.raises(ConfigError, match=r"data.values='16bit' is not allowed; choose one of 'auto', '8bit'"):
        vae.config.DataConfig(values="16bit")


def test_bad_vector_inputs_are_refused_naming_the_value_and_what_is_allowed(tmp_path, capsys):
    x, labels = _vectors()
    nan = x.copy()
    nan[[3, 7], 1] = np.nan
    np.savez(tmp_path / "nan.npz", vectors=nan)
    with pytest.raises(DataFileError, match=r"nan.npz: 2 values of the vectors are NaN or infinite \(rows 3, 7\)"):
        load(str(tmp_path / "nan.npz"), "train")
    np.savez(tmp_path / "cube.npz", vectors=x.reshape(60, 5, 1))
    with pytest.raises(DataFileError, match=r"give vectors \[N, D\] with N > 0, got shape \(60, 5, 1\)"):
        load(str(tmp_path / "cube.npz"), "train")
    np.savez(tmp_path / "both.npz", vectors=x, images=x)
    with pytest.raises(DataFileError, match="holds both 'images' and 'vectors'"):
        load(str(tmp_path / "both.npz"), "train")
    np.savez(tmp_path / "ok.npz", vectors=x)
    with pytest.raises(DataFileError, match=r"data.image_size=\(4, 4\) applies to images; these are vectors"):
        load(str(tmp_path / "ok.npz"), "train", files=FileOptions(image_size=(4, 4)))
    with pytest.raises(DataFileError, match=r"data.values=8bit needs values in \[0, 1\].*allowed here: auto, "
                                            r"continuous"):
        load(str(tmp_path / "ok.npz"), "train", files=FileOptions(values="8bit"))
    refusals = {
        r"model.architecture='conv' is not allowed with vector data \(the data passed in memory\): it convolves "
        r"images; use 'mlp'": {"model.architecture": "conv"},
        "model.likelihood='bernoulli' is not allowed with vector data.*of real values.*use model.likelihood=gaussian"
        ".*and data.binarize=none \\(not 'dynamic'\\)": {"model.likelihood": "bernoulli", "data.binarize": "dynamic"},
        "data.binarize='static' is not allowed with vector data.*use data.binarize=none": {"data.binarize": "static"},
        "model.name='msssim_vae' is not allowed with vector data": {"model.name": "msssim_vae"},
        "objective.adversarial='patchgan' is not allowed with vector data.*use 'none'":
            {"objective.adversarial": "patchgan"},
    }
    for message, over in refusals.items():
        with pytest.raises(ConfigError, match=message):
            vae.run.train(_cfg(**over), str(tmp_path / "refused"), data=x)
        assert not os.path.exists(tmp_path / "refused")     # refused before any work, no copy left behind
    # the command line says the same of a file, and exits with 2 before any work
    from vae.cli import main

    out = tmp_path / "cli_run"
    capsys.readouterr()
    assert main(["train", "--set", f"data.name={tmp_path / 'ok.npz'}", "--set", "model.likelihood=bernoulli",
                 "--no-progress", "--out", str(out)]) == 2
    assert (f"model.likelihood='bernoulli' is not allowed with vector data (data.name='{tmp_path / 'ok.npz'}') of "
            f"real values") in capsys.readouterr().err and not out.exists()
    # likelihoods of 8-bit levels refuse continuous data (images too), naming the way out
    np.save(tmp_path / "float_images.npy", np.random.default_rng(0).random((30, 4, 4)).astype(np.float32))
    with pytest.raises(ConfigError, match=r"model.likelihood='categorical' models 8-bit levels.*continuous.*use "
                                          r"'gaussian', or data.values=8bit"):
        vae.run.train(_cfg(**{"model.likelihood": "categorical", "model.learn_sigma": "none",
                              "data.name": str(tmp_path / "float_images.npy")}), str(tmp_path / "refused"))


def test_training_on_vectors_in_memory_writes_the_run_and_bits_per_dim_have_no_8bit_offset(tmp_path):
    x, labels = _vectors()
    out = str(tmp_path / "table")
    summary = vae.run.train(_cfg(), out, data=(x, labels))
    for key in ("test_elbo", "test_recon", "test_kl", "test_bits_per_dim"):
        assert np.isfinite(summary[key]), key
    # the plain nll / (D ln 2) of the test ELBO: no 8-bit dequantization offset on continuous data
    assert summary["test_bits_per_dim"] == pytest.approx(-summary["test_elbo"] / (D * math.log(2)), rel=1e-5)
    assert "no 8-bit offset" in summary["bits_per_dim_convention"] and summary["figures"] == {}
    assert {"config.json", "metrics.jsonl", "checkpoints", "summary.json", "MODEL_CARD.md", "data"} <= set(
        os.listdir(out)) and not os.path.exists(os.path.join(out, "figures"))
    with open(os.path.join(out, "config.json")) as f:
        record = json.load(f)["dataset"]
    assert (record["kind"], record["values"], record["image_shape"]) == ("vectors", "continuous", [1, 1, D])
    assert (record["train_examples"], record["test_examples"]) == (48, 12) and record["source"] == "memory"
    with np.load(os.path.join(out, "data", "train.npz"), allow_pickle=False) as f:
        assert set(f.files) == {"vectors", "labels"} and f["vectors"].shape == (48, D)
        assert all(any((row == given).all() for given in x) for row in f["vectors"][:5])     # rows as given
    card = open(os.path.join(out, "MODEL_CARD.md")).read()
    for text in ("48 training and 12 test vectors of dimension 5", "Values: continuous", "no 8-bit offset",
                 "Trained on 48 vectors"):
        assert text in card, text

    run = load_run(out)
    assert not run.model.likelihood.levels_8bit and not run.model.likelihood.unit_range
    from vae.evaluate import evaluate_run
    from vae.synthesis import SynthesisError, synthesize

    result = evaluate_run(out, iwae_samples=8)
    iwae = result["iwae"]
    assert iwae["bits_per_dim"] == pytest.approx(iwae["nll"] / (D * math.log(2)), rel=1e-6)
    assert "no 8-bit offset" in result["elbo"]["bits_per_dim_convention"]
    recon = np.asarray(run.model.apply({"params": run.params}, jnp.asarray(run.test_images[:4]), None,
                                       rngs={"sample": jax.random.PRNGKey(0)}, method="reconstruct"))
    assert recon.max() > 1.0      # decoded vectors are not clipped to [0, 1] as images are
    synthetic = synthesize(out, 6, out=os.path.join(out, "synthetic", "s.npz"))
    with np.load(synthetic["path"], allow_pickle=False) as f:
        assert f["vectors"].shape == (6, D) and np.isfinite(f["vectors"]).all()
    with pytest.raises(SynthesisError, match="data are vectors.*png_dir and dtype='uint8' are for images"):
        synthesize(out, 6, out=str(tmp_path / "u8.npz"), dtype="uint8")
    from vae.explore import Explorer, make_figure
    with pytest.raises(ValueError, match="kind='samples' draws images.*allowed for vectors: embedding, curves"):
        make_figure(Explorer.from_run(out), "samples")


def _bits(values: str, vectors: bool = False, shape=(4, 4, 1)):
    """(bits/dim, -elbo) of a Gaussian-likelihood VAE's ELBO on a batch of 8-bit-level data, with
    its likelihood told that the data are `values`."""
    config = _cfg()
    model = for_data(build_model(config.model, shape), values, vectors)
    x = jnp.asarray(np.random.default_rng(0).integers(0, 256, (6, *shape)) / 255.0, jnp.float32)
    keys = {"params": jax.random.PRNGKey(0), "sample": jax.random.PRNGKey(1)}
    params = model.init(keys, x, None)["params"]
    _, metrics = build_objective(config)(model, params, {"image": x}, jax.random.PRNGKey(2), jnp.asarray(0))
    return np.asarray(metrics["bits_per_dim"]), -np.asarray(metrics["elbo"])


def test_bits_per_dim_take_the_8bit_offset_on_8bit_data_only():
    num_dims = 16
    bits_8bit, nll = _bits("8bit")
    bits_continuous, nll_again = _bits("continuous")
    np.testing.assert_allclose(nll, nll_again, rtol=1e-6)                   # the same model and numbers
    np.testing.assert_allclose(bits_continuous, nll / (num_dims * math.log(2)), rtol=1e-5)
    np.testing.assert_allclose(bits_8bit, nll / (num_dims * math.log(2)) + 8.0, rtol=1e-5)
    np.testing.assert_allclose(_bits("binary")[0], bits_8bit, rtol=1e-6)   # binary data lie on the 8-bit grid
    # what the model sees: binarized data are binary, whatever the dataset's own values
    from vae.data.base import DatasetInfo
    continuous = DatasetInfo(name="x", image_shape=(4, 4, 1), values="continuous")
    assert prepared_values(continuous, "dynamic") == "binary" and prepared_values(continuous, "none") == "continuous"
    # a likelihood that does not say (a discrete one, or none) keeps its old convention
    model = build_model(ModelConfig(likelihood="bernoulli", hidden=(8,), latent_dim=2), (4, 4, 1))
    assert for_data(model, "continuous") is model and not takes_8bit_offset(model.likelihood)
    assert not takes_8bit_offset(None)
