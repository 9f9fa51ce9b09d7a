"""The latent-space explorer: tiny random-initialised models and fake data (no training),
plus one 10-step run for Explorer.from_run and make_figure."""

import os

import jax
import numpy as np
import pytest

from vae.config import Config, ModelConfig
from vae.explore import FIGURE_KINDS, Explorer, lerp, make_figure, nearest_neighbours, slerp, write_run_figures
from vae.variants import build_model
from vae.plots import save_figure
from vae.step import init_params

SHAPE = (8, 8, 1)
LATENT = 4
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _explorer(shape=SHAPE, latent=LATENT, n=40, seed=0, **kwargs):
    model = build_model(ModelConfig(latent_dim=latent, hidden=(32,)), shape)
    params = init_params(model, shape, jax.random.PRNGKey(seed))
    rng = np.random.default_rng(seed)
    images = (rng.random((n, *shape)) < 0.5).astype(np.float32)
    labels = (np.arange(n) % 3).astype(np.int32)
    return Explorer(model, params, data=(images, labels), **kwargs)


@pytest.fixture(scope="module")
def ex():
    return _explorer()


def _assert_png(path):
    with open(path, "rb") as f:
        head = f.read(8)
    assert head == PNG_MAGIC
    assert os.path.getsize(path) > 2000


def test_encode_decode_reconstruct_sample_shapes(ex):
    mean, var = ex.encode(ex.images[:5])
    assert mean.shape == var.shape == (5, LATENT) and (var > 0).all()
    assert ex.decode(mean).shape == (5, *SHAPE)
    np.testing.assert_allclose(ex.reconstruct(ex.images[:5]), ex.decode(mean), atol=1e-5)
    samples = ex.sample(7, seed=1)
    assert samples.shape == (7, *SHAPE) and samples.min() >= 0 and samples.max() <= 1
    np.testing.assert_array_equal(samples, ex.sample(7, seed=1))


def test_batches_of_any_size_match_and_compile_a_few_times():
    ex = _explorer(n=45, batch_size=16)
    full = ex.encode(ex.images)[0]
    one_by_one = np.concatenate([ex.encode(ex.images[i:i + 1])[0] for i in range(45)])
    np.testing.assert_allclose(full, one_by_one, atol=1e-5)
    assert ex.trained.jitted("encode")._cache_size() <= 2  # buckets of 8 and 16 rows


def test_slerp_stays_on_the_unit_sphere_and_hits_both_ends():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(6), rng.standard_normal(6)
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    t = np.linspace(0, 1, 11)
    path = slerp(a, b, t)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(path[0], a)
    np.testing.assert_array_equal(path[-1], b)
    np.testing.assert_array_equal(slerp(a, b, 0.0), a)
    # nearly parallel vectors fall back to lerp
    np.testing.assert_allclose(slerp(a, a * (1 + 1e-9), t), lerp(a, a * (1 + 1e-9), t))


def test_lerp_endpoints_decode_to_the_endpoint_reconstructions(ex):
    xa, xb = ex.images[0], ex.images[1]
    for method in ("linear", "slerp"):
        codes, images = ex.interpolate(xa, xb, steps=6, method=method)
        assert codes.shape == (6, LATENT) and images.shape == (6, *SHAPE)
        np.testing.assert_allclose(images[0], ex.reconstruct(xa[None])[0], atol=1e-5)
        np.testing.assert_allclose(images[-1], ex.reconstruct(xb[None])[0], atol=1e-5)
    codes, images = ex.interpolate(ex.images[:3], ex.images[3:6], steps=4)
    assert codes.shape == (3, 4, LATENT) and images.shape == (3, 4, *SHAPE)
    with pytest.raises(ValueError, match="method"):
        ex.interpolate(xa, xb, method="cubic")


def test_traversal_changes_only_the_chosen_dimension(ex):
    base = ex.encode(ex.images[2:3])[0][0]
    for mode in ("std", "quantile"):
        t = ex.traverse(ex.images[2], dims=[1, 3], num=5, range_mode=mode)
        assert t.codes.shape == (2, 5, LATENT) and t.images.shape == (2, 5, *SHAPE)
        for r, k in enumerate(t.dims):
            diff = np.abs(t.codes[r] - base[None]) > 1e-6
            assert not diff[:, np.arange(LATENT) != k].any()
            np.testing.assert_allclose(t.codes[r, :, k], t.values[r], atol=1e-6)
        assert len(t.row_labels()) == 2 and len(t.column_labels) == 5
    t = ex.traverse(base, dims=[0], values=[-1.0, 0.0, 1.0])
    np.testing.assert_allclose(t.codes[0, :, 0], [-1, 0, 1])
    # 'std' with data spans the aggregate posterior's mean +- 3 std
    mean, std = ex.aggregate_posterior_stats()
    t = ex.traverse(base, dims=[2], num=3)
    np.testing.assert_allclose(t.values[0], mean[2] + np.array([-3, 0, 3]) * std[2], rtol=1e-5)


def test_default_traversal_dims_are_ranked_by_kl(ex):
    dims, kl = ex.rank_dims_by_kl()
    assert sorted(dims.tolist()) == list(range(LATENT)) and (np.diff(kl) <= 0).all()
    t = ex.traverse(0, num=3)
    np.testing.assert_array_equal(t.dims, dims)
    np.testing.assert_allclose(t.kl, kl)
    assert t.row_labels()[0] == f"z{dims[0]} (KL {kl[0]:.2f})"


def test_traversal_without_data_uses_the_prior():
    ex = _explorer()
    bare = Explorer(ex.model, ex.params)
    t = bare.traverse(None, num=3)
    assert t.kl is None and t.dims.tolist() == list(range(LATENT))
    np.testing.assert_allclose(t.values, np.tile([-3.0, 0.0, 3.0], (LATENT, 1)))
    with pytest.raises(ValueError, match="needs data"):
        bare.traverse(None, range_mode="quantile")


def test_manifold_grid_shape_and_values(ex):
    m = ex.manifold(dims=(0, 2), grid=5)
    assert m.images.shape == (5, 5, *SHAPE) and m.codes.shape == (5, 5, LATENT)
    from scipy.stats import norm

    np.testing.assert_allclose(m.values_x, norm.ppf(np.linspace(0.05, 0.95, 5)), atol=1e-9)
    np.testing.assert_allclose(m.codes[1, 3], [m.values_x[3], 0, m.values_y[1], 0], atol=1e-6)
    with pytest.raises(ValueError, match="two different"):
        ex.manifold(dims=(1, 1))


def test_attribute_vector_arithmetic_moves_group_a_mean_to_group_b_mean(ex):
    xa, xb = ex.images[ex.labels == 0], ex.images[ex.labels == 2]
    vec = ex.attribute_vector(xa, xb)
    mean_a, mean_b = ex.encode(xa)[0].mean(0), ex.encode(xb)[0].mean(0)
    codes, images = ex.apply_attribute(mean_a, vec, scales=[0.0, 1.0])
    np.testing.assert_allclose(codes[1], mean_b, atol=1e-5)
    np.testing.assert_allclose(codes[0], mean_a, atol=1e-6)
    assert images.shape == (2, *SHAPE)
    np.testing.assert_allclose(ex.attribute_vector_from_labels(0, 2), vec, atol=1e-5)
    with pytest.raises(ValueError, match="no example"):
        ex.attribute_vector_from_labels(0, 7)


def test_attribute_vector_from_factors():
    ex0 = _explorer()
    factors = np.stack([np.arange(40) % 2, np.arange(40) % 5], axis=1)
    ex = Explorer(ex0.model, ex0.params, data=ex0.images, factors=factors)
    means = ex.encode(ex.images)[0]
    expected = means[factors[:, 1] == 4].mean(0) - means[factors[:, 1] == 1].mean(0)
    np.testing.assert_allclose(ex.attribute_vector_from_labels(1, 4, factor=1), expected, atol=1e-5)


def test_embedding_methods(ex):
    emb = ex.embedding(num=30, seed=0)
    assert emb.method == "pca" and emb.coords.shape == (30, 2) and emb.labels.shape == (30,)
    np.testing.assert_array_equal(emb.labels, ex.labels[emb.indices])
    assert ex.embedding("tsne", num=20).coords.shape == (20, 2)
    ex2 = _explorer(latent=2)
    emb2 = ex2.embedding(num=10)
    assert emb2.method == "latent"
    np.testing.assert_allclose(emb2.coords, ex2.encode(ex2.images[emb2.indices])[0], atol=1e-6)
    with pytest.raises(ValueError, match="allowed"):
        ex.embedding("umap")


def test_nearest_neighbour_of_a_training_image_is_itself():
    rng = np.random.default_rng(0)
    train = rng.random((70, *SHAPE)).astype(np.float32)
    idx, dist = nearest_neighbours(train[[5, 0, 69]], train, k=3, chunk_size=32)
    np.testing.assert_array_equal(idx[:, 0], [5, 0, 69])
    np.testing.assert_array_equal(dist[:, 0], 0.0)
    # the other neighbours agree with brute force
    flat = train.reshape(70, -1)
    for row, i in enumerate([5, 0, 69]):
        d = np.linalg.norm(flat - flat[i], axis=1)
        np.testing.assert_array_equal(idx[row], np.argsort(d)[:3])
        np.testing.assert_allclose(dist[row], np.sort(d)[:3], rtol=1e-4)


def test_run_figures_and_make_figure_on_colour_data(tmp_path):
    ex = _explorer(shape=(6, 6, 3), n=24)
    paths = write_run_figures(ex, tmp_path)
    assert set(paths) == {"traversals", "interpolations"}
    for path in paths.values():
        assert path.startswith(os.path.join(str(tmp_path), "figures"))
        _assert_png(path)
    for kind in FIGURE_KINDS:
        if kind in ("curves", "analogies"):   # analogies: tested on a conditional model and on factors below
            continue
        _assert_png(save_figure(make_figure(ex, kind, steps=4 if kind != "samples" else 9), tmp_path / f"{kind}.png"))
    with pytest.raises(ValueError, match="allowed: samples"):
        make_figure(ex, "histogram")
    with pytest.raises(ValueError, match="run_dir"):
        make_figure(ex, "curves")


# ----------------------------------------------------------------------------- a real (10-step) run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    import vae.run

    cfg = Config().replace(**{"train.steps": 10, "train.eval_every": 10, "model.hidden": (32,), "train.progress": False,
                              "train.final_iwae_samples": 0})
    out = str(tmp_path_factory.mktemp("explore") / "run")
    vae.run.train(cfg, out)
    return out


def test_from_run_restores_the_model_and_test_split(run_dir):
    ex = Explorer.from_run(run_dir)
    assert ex.step == 10 and ex.run_dir == run_dir
    assert ex.images.shape == (1000, 28, 28, 1) and set(np.unique(ex.images)) <= {0.0, 1.0}
    assert ex.labels.shape == (1000,) and ex.latent_dim == 16
    assert ex.reconstruct(ex.images[:2]).shape == (2, 28, 28, 1)


def test_from_run_errors_name_what_is_missing(tmp_path, run_dir):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match="nope.*does not exist"):
        Explorer.from_run(missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        Explorer.from_run(empty)
    (empty / "config.json").write_text(Config().to_json())
    with pytest.raises(FileNotFoundError, match="no checkpoint.*checkpoints"):
        Explorer.from_run(empty)
    with pytest.raises(FileNotFoundError, match="step 7"):
        Explorer.from_run(run_dir, step=7)


def test_make_figure_every_kind_from_a_run(run_dir, tmp_path):
    ex = Explorer.from_run(run_dir)
    for kind in FIGURE_KINDS:
        if kind == "analogies":   # an unconditional model on data without factors has none to draw
            with pytest.raises(ValueError, match="conditional model, or data with ground-truth factors"):
                make_figure(ex, kind)
            continue
        fig = make_figure(ex, kind, steps=None if kind not in ("embedding", "manifold") else 9)
        _assert_png(save_figure(fig, tmp_path / f"{kind}.png"))
    _assert_png(save_figure(make_figure(None, "curves", run_dir=run_dir), tmp_path / "curves2.png"))
    paths = write_run_figures(ex, run_dir)
    assert all(os.path.exists(p) for p in paths.values())


def test_factor_dims_finds_the_dimension_that_copies_each_factor():
    n = 600
    rng = np.random.default_rng(0)
    factors = np.stack([rng.integers(0, 3, n), rng.integers(0, 6, n)], axis=1)
    ex = _explorer(n=n, factors=factors)
    mean = rng.standard_normal((n, LATENT)).astype(np.float32)   # dims 1 and 3: noise
    mean[:, 2] = factors[:, 0]                                   # a copy of factor 0
    mean[:, 0] = factors[:, 1] + 0.01 * rng.standard_normal(n)   # factor 1, slightly blurred
    ex._posterior = (mean, np.ones_like(mean))
    info = ex.factor_dims()
    np.testing.assert_array_equal(info["dims"], [2, 0])
    assert info["normalized_mi"].shape == (LATENT, 2)
    # 20 bins separate 3 (and 6) distinct values, so the copies carry the whole factor entropy
    np.testing.assert_allclose(info["normalized_mi"][2, 0], 1.0, atol=1e-9)
    np.testing.assert_allclose(info["normalized_mi"][0, 1], 1.0, atol=1e-9)
    assert info["normalized_mi"][[1, 3]].max() < 0.2
    assert info["factor_names"] == ["factor 0", "factor 1"]
    with pytest.raises(ValueError, match="ground-truth factors"):
        _explorer().factor_dims()


def test_disentanglement_lib_traversal_ranges_against_their_closed_forms(ex):
    from scipy.stats import norm

    mean, var = ex.posterior()
    loc, scale = mean.mean(0), np.sqrt(mean.var(0) + var.mean(0))     # the aggregate posterior's
    probs = np.linspace(0.025, 0.975, 5)
    expected = {
        "std_gaussian": np.tile(norm.ppf(probs), (2, 1)),
        "fitted_gaussian": norm.ppf(probs[None, :], loc=loc[[1, 3], None], scale=scale[[1, 3], None]),
        "fixed_interval": np.tile(np.linspace(-2, 2, 5), (2, 1)),
        "conf_interval": loc[[1, 3], None] + np.linspace(-2, 2, 5)[None, :] * scale[[1, 3], None],
        "minmax": np.linspace(mean[:, [1, 3]].min(0), mean[:, [1, 3]].max(0), 5, axis=1),
    }
    for mode, values in expected.items():
        t = ex.traverse(ex.images[2], dims=[1, 3], num=5, range_mode=mode)
        np.testing.assert_allclose(t.values, values, rtol=1e-5, atol=1e-6, err_msg=mode)
        np.testing.assert_allclose(t.codes[:, :, [1, 3]][[0, 1], :, [0, 1]], values, rtol=1e-5, atol=1e-6)
        assert t.range_mode == mode and len(t.column_labels) == 5
    bare = Explorer(ex.model, ex.params)
    np.testing.assert_allclose(bare.traverse(None, dims=[0], num=5, range_mode="fixed_interval").values[0],
                               np.linspace(-2, 2, 5))
    with pytest.raises(ValueError, match="needs data"):
        bare.traverse(None, range_mode="minmax")
    with pytest.raises(ValueError, match="quantiles must satisfy 0 < low < high < 1"):
        ex.traverse(0, range_mode="std_gaussian", quantiles=(0.0, 1.0))


def _factor_explorer(n=600):
    """An explorer whose factor_dims are known: dim 2 copies factor 'shape', dim 0 factor 'size'."""
    rng = np.random.default_rng(0)
    factors = np.stack([rng.integers(0, 3, n), rng.integers(0, 6, n)], axis=1)
    ex = _explorer(n=n, factors=factors)
    mean = rng.standard_normal((n, LATENT)).astype(np.float32)
    mean[:, 2], mean[:, 0] = factors[:, 0], factors[:, 1]
    ex._posterior = (mean, np.ones_like(mean))
    ex.info = type("Info", (), {"factor_names": ("shape", "size")})()
    return ex


def test_traversal_rows_name_the_factor_each_dim_carries():
    ex = _factor_explorer()
    t = ex.traverse(0, dims=[2, 0, 1], num=3)
    assert [name for name, _ in t.factors] == ["shape", "size", ex.factor_dims()["factor_names"][
        int(np.argmax(ex.factor_dims()["normalized_mi"][1]))]]
    np.testing.assert_allclose([mi for _, mi in t.factors[:2]], 1.0, atol=1e-9)
    labels = t.row_labels()
    assert labels[0].startswith("z2 (KL ") and labels[0].endswith("\nshape 1.00")
    assert labels[1].endswith("\nsize 1.00")
    # without factors the rows keep their plain labels
    assert _explorer().traverse(0, dims=[1], num=3).row_labels()[0].count("\n") == 0


def test_analogies_decode_each_style_code_with_every_label(tmp_path):
    model = build_model(ModelConfig(name="cvae", latent_dim=LATENT, hidden=(32,)), SHAPE, num_classes=3)
    params = init_params(model, SHAPE, jax.random.PRNGKey(0))
    rng = np.random.default_rng(1)
    images = (rng.random((12, *SHAPE)) < 0.5).astype(np.float32)
    labels = (np.arange(12) % 3).astype(np.int32)
    ex = Explorer(model, params, data=(images, labels))
    a = ex.analogies(rows=[4, 7])
    assert a.images.shape == (2, 4, *SHAPE) and a.rows.tolist() == [4, 7] and a.labels.tolist() == [1, 1]
    np.testing.assert_array_equal(a.images[:, 0], images[[4, 7]])
    z = ex.encode(images[[4, 7]], labels[[4, 7]])[0]
    for c in range(3):
        np.testing.assert_allclose(a.images[:, 1 + c], ex.decode(z, np.full(2, c, np.int32)), atol=1e-6)
    # decoded with its own label, the style code gives back the reconstruction
    np.testing.assert_allclose(a.images[:, 2], ex.reconstruct(images[[4, 7]], labels[[4, 7]]), atol=1e-6)
    assert ex.analogies(num=5, seed=3).rows.size == 5
    _assert_png(save_figure(make_figure(ex, "analogies", steps=3), tmp_path / "analogies.png"))
    with pytest.raises(ValueError, match="rows must be indices in 0..11"):
        ex.analogies(rows=[12])
    with pytest.raises(ValueError, match="conditional model.*swap_factors"):
        _explorer().analogies()


def test_swap_factors_takes_the_factors_dims_from_the_second_image(tmp_path):
    ex = _factor_explorer()
    s = ex.swap_factors(pairs=[[0, 1], [5, 9]], min_mi=0.5)
    assert s.factors == ["shape", "size"] and s.dims == {"shape": [2], "size": [0]}
    assert s.images.shape == (2, 4, *SHAPE)
    np.testing.assert_array_equal(s.images[:, 0], ex.images[[0, 5]])
    np.testing.assert_array_equal(s.images[:, 1], ex.images[[1, 9]])
    za, zb = ex.encode(ex.images[[0, 5]])[0], ex.encode(ex.images[[1, 9]])[0]
    for j, d in enumerate((2, 0)):
        code = za.copy()
        code[:, d] = zb[:, d]
        np.testing.assert_allclose(s.images[:, 2 + j], ex.decode(code), atol=1e-6)
    assert ex.swap_factors(["size"], num=3).images.shape == (3, 3, *SHAPE)
    _assert_png(save_figure(make_figure(ex, "analogies", steps=2), tmp_path / "swaps.png"))
    with pytest.raises(ValueError, match=r"unknown factors \['colour'\]; this data's factors: shape, size"):
        ex.swap_factors(["colour"])
    with pytest.raises(ValueError, match="pairs must be"):
        ex.swap_factors(pairs=[[0, 600]])
