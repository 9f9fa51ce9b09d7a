"""Every figure function on grayscale and colour images: a Figure that saves a real PNG."""

import json
import os

import numpy as np
import pytest
from matplotlib.figure import Figure

from vae import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png(path):
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    assert os.path.getsize(path) > 2000


@pytest.fixture(params=[1, 3], ids=["gray", "colour"])
def channels(request):
    return request.param


def _images(shape, channels, seed=0):
    return np.random.default_rng(seed).random((*shape, 10, 10, channels)).astype(np.float32)


def test_image_grid_and_save_figure_keep_working(tmp_path, channels):
    fig = plots.image_grid(_images((12,), channels), ncols=4, title="grid", row_labels=["a", "b", "c"])
    assert isinstance(fig, Figure)
    path = plots.save_figure(fig, tmp_path / "sub" / "grid.png")
    assert path == os.fspath(tmp_path / "sub" / "grid.png")
    _assert_png(path)


def test_traversal_grid(tmp_path, channels):
    images = _images((3, 7), channels)
    labels = [f"z{i} (KL {i + 0.5:.2f})" for i in range(3)]
    fig = plots.traversal_grid(images, labels, np.linspace(-3, 3, 7), title="Traversals")
    assert isinstance(fig, Figure) and fig.get_layout_engine() is not None
    _assert_png(plots.save_figure(fig, tmp_path / "t.png"))
    per_row = np.tile(np.linspace(-2, 2, 7), (3, 1))
    _assert_png(plots.save_figure(plots.traversal_grid(images, labels, per_row), tmp_path / "t2.png"))
    _assert_png(plots.save_figure(plots.traversal_grid(images[:1]), tmp_path / "t3.png"))
    with pytest.raises(ValueError, match="row labels"):
        plots.traversal_grid(images, ["z0"])


def test_interpolation_strip(tmp_path, channels):
    one = _images((6,), channels)
    _assert_png(plots.save_figure(plots.interpolation_strip(one, title="one path"), tmp_path / "a.png"))
    many = _images((3, 6), channels)
    ends = (_images((3,), channels, 1), _images((3,), channels, 2))
    fig = plots.interpolation_strip(many, title="pairs", originals=ends, ts=np.linspace(0, 1, 6))
    _assert_png(plots.save_figure(fig, tmp_path / "b.png"))


def test_manifold_plot(tmp_path, channels):
    values = np.linspace(-1.6, 1.6, 5)
    fig = plots.manifold_plot(_images((5, 5), channels), values, values, dims=(2, 4), title="grid")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "z2" and ax.get_ylabel() == "z4"
    assert [t.get_text() for t in ax.get_xticklabels()][0] == "-1.60"
    _assert_png(plots.save_figure(fig, tmp_path / "m.png"))


def test_embedding_scatter_categorical_and_continuous(tmp_path):
    rng = np.random.default_rng(0)
    coords = rng.standard_normal((200, 2))
    fig = plots.embedding_scatter(coords, rng.integers(0, 3, 200), label_names=["square", "ellipse", "heart"],
                                  title="by shape")
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["square", "ellipse", "heart"]
    _assert_png(plots.save_figure(fig, tmp_path / "cat.png"))
    fig = plots.embedding_scatter(coords, rng.random(200), categorical=False, title="continuous",
                                  colour_label="scale")
    assert len(fig.axes) == 2  # the plot and its colour bar
    _assert_png(plots.save_figure(fig, tmp_path / "cont.png"))
    _assert_png(plots.save_figure(plots.embedding_scatter(coords), tmp_path / "plain.png"))


def test_training_curves_from_records_and_file(tmp_path):
    records = []
    for step in range(10, 210, 10):
        m = {"loss": 500 / step ** 0.5, "elbo": -500 / step ** 0.5, "recon": 400 / step ** 0.5, "kl": 5 + step / 100}
        records.append({"step": step, "split": "train", **m, "elapsed": step / 10})
        if step % 50 == 0:
            records.append({"step": step, "split": "test", **{k: v * 1.1 for k, v in m.items()}, "elapsed": 0})
    records[3]["loss"] = None  # a skipped step
    fig = plots.training_curves(records)
    assert len(fig.axes) == 4
    _assert_png(plots.save_figure(fig, tmp_path / "c.png"))
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    _assert_png(plots.save_figure(plots.training_curves(str(path)), tmp_path / "c2.png"))


def test_traversal_animation_writes_a_gif_with_frames(tmp_path, channels):
    from PIL import Image

    images = _images((2, 5), channels)
    path = plots.traversal_animation(images, tmp_path / "anim" / "t.gif", fps=4, row_labels=["z0", "z1"],
                                     col_values=np.linspace(-2, 2, 5), title="sweep")
    assert path == os.fspath(tmp_path / "anim" / "t.gif")
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames >= 5  # 5 forward + 3 back = 8 distinct frames
