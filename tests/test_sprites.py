"""The procedural dSprites-style renderer: exact geometry, factor grid, sampling and loading."""

import numpy as np
import pytest

import vae.data as vdata
from vae.data import sprites as sp
from vae.data.sprites import Sprites, draw, load_sprites

S = Sprites()
SHAPES = range(3)


def _grid(shape, scale, orientation, pos_x, pos_y):
    """All combinations of the given index lists as factors [N, 5]."""
    mesh = np.meshgrid(*(np.atleast_1d(v) for v in (shape, scale, orientation, pos_x, pos_y)), indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def _crop(image, cx=32, cy=32, r=15):
    """Odd-sized window centred on pixel (row cy, column cx) of a [64, 64, 1] image."""
    return image[cy - r:cy + r + 1, cx - r:cx + r + 1, 0]


def test_grid_constants():
    assert S.factor_names == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert S.factor_sizes == (3, 6, 40, 32, 32)
    assert S.image_shape == (64, 64, 1) and S.num_factors == 5
    values = S.factor_values()
    np.testing.assert_allclose(values["scale"], np.linspace(0.5, 1.0, 6))
    np.testing.assert_allclose(values["orientation"], np.linspace(0, 2 * np.pi, 40))
    np.testing.assert_array_equal(values["pos_x"], 16 + np.arange(32))
    np.testing.assert_array_equal(values["pos_y"], 16 + np.arange(32))
    np.testing.assert_array_equal(values["shape"], [0, 1, 2])


@pytest.mark.parametrize("i,j", [(0, 0), (31, 31), (0, 31), (7, 20), (16, 16)])
def test_square_at_orientation_zero_is_exact_box(i, j):
    image = S.render(np.array([[0, 5, 0, i, j]]))
    rows, cols = np.meshgrid(np.arange(64), np.arange(64), indexing="ij")
    expected = (np.abs(cols - (16 + i)) <= 8) & (np.abs(rows - (16 + j)) <= 8)
    assert image.shape == (1, 64, 64, 1) and image.dtype == np.float32
    np.testing.assert_array_equal(image[0, :, :, 0], expected.astype(np.float32))
    assert image.sum() == 17 * 17


def test_one_position_step_is_an_exact_one_pixel_roll():
    rng = np.random.default_rng(0)
    f = S.sample_factors(300, rng)
    f[:, 3] = rng.integers(0, 31, size=300)
    f[:, 4] = rng.integers(0, 31, size=300)
    base = S.render(f)
    fx, fy = f.copy(), f.copy()
    fx[:, 3] += 1
    fy[:, 4] += 1
    np.testing.assert_array_equal(S.render(fx), np.roll(base, 1, axis=2))
    np.testing.assert_array_equal(S.render(fy), np.roll(base, 1, axis=1))


def test_larger_scale_more_pixels_ellipse_smaller_than_square_and_full_turn():
    f = _grid(SHAPES, range(6), range(40), 16, 16)
    counts = S.render(f).sum(axis=(1, 2, 3)).reshape(3, 6, 40)
    steps = np.diff(counts, axis=1)
    # Strictly more pixels per scale step for every shape and angle, with one exception forced by
    # the pixel grid: the axis-aligned square at h = 4 and h = 4.8 covers the same 9 x 9 offsets.
    exception = np.zeros_like(steps, dtype=bool)
    exception[0, 0, [0, 39]] = True
    assert np.all(steps[~exception] > 0)
    np.testing.assert_array_equal(counts[0, :, 0], [81, 81, 121, 169, 225, 289])
    assert np.all(counts[:, 2:] > counts[:, :2].max(axis=1, keepdims=True))
    assert np.all(counts[1] < counts[0])  # ellipse < square at every scale and orientation
    assert np.all(counts > 0)
    first = S.render(_grid(SHAPES, range(6), 0, 16, 16))
    last = S.render(_grid(SHAPES, range(6), 39, 16, 16))
    np.testing.assert_array_equal(first, last)  # orientation 0 and 2*pi coincide, like dSprites


def test_exact_symmetries_and_counter_clockwise_rotation():
    for scale in (0.5, 0.8, 1.0):
        ellipse0, ellipse90 = draw([1, 1], scale, [0.0, np.pi / 2], 32, 32)
        np.testing.assert_array_equal(ellipse90[..., 0], ellipse0[..., 0].T)
        assert ellipse0.sum() > 0
        square = _crop(draw(0, scale, 0.0, 32, 32)[0])
        np.testing.assert_array_equal(square, square.T)
        np.testing.assert_array_equal(square, np.rot90(square))
        heart0, heart90 = (_crop(im) for im in draw([2, 2], scale, [0.0, np.pi / 2], 32, 32))
        np.testing.assert_array_equal(heart90, np.rot90(heart0))  # np.rot90 turns counter-clockwise
        np.testing.assert_array_equal(heart0, heart0[:, ::-1])  # mirror-symmetric at orientation 0
    # Square and ellipse are point-symmetric about the centre pixel at every grid orientation.
    images = S.render(_grid([0, 1], [0, 5], range(40), 16, 16))
    for image in images:
        crop = _crop(image)
        np.testing.assert_array_equal(crop, crop[::-1, ::-1])


def test_heart_points_down_at_orientation_zero_and_right_after_quarter_turn():
    heart0, heart90 = draw([2, 2], 1.0, [0.0, np.pi / 2], 32, 32)[..., 0]
    rows = np.flatnonzero(heart0.any(axis=1))
    assert heart0[rows[-1], 32] == 1 and heart0[rows[-1]].sum() < heart0[rows[0]].sum()  # tip at the bottom
    r, c = np.nonzero(heart0)
    assert r.mean() < 32  # lobes (the mass) above the centre
    cols = np.flatnonzero(heart90.any(axis=0))
    assert heart90[32, cols[-1]] == 1 and heart90[:, cols[-1]].sum() < heart90[:, cols[0]].sum()  # tip right
    # Orientation index 10 (~92 deg, counter-clockwise): mass to the left, tip to the right.
    r, c = np.nonzero(S.render(np.array([[2, 5, 10, 16, 16]]))[0, :, :, 0])
    assert c.mean() < 32 - 0.5


def test_render_matches_draw_with_actual_values():
    f = S.sample_factors(500, 3)
    v = S.factor_values()
    direct = draw(f[:, 0], v["scale"][f[:, 1]], v["orientation"][f[:, 2]], v["pos_x"][f[:, 3]], v["pos_y"][f[:, 4]])
    np.testing.assert_array_equal(S.render(f), direct)


def test_objects_stay_inside_frame_and_are_never_empty():
    f = _grid(SHAPES, [0, 5], range(40), [0, 31], [0, 31])
    images = S.render(f)[..., 0]
    border = np.zeros((64, 64), bool)
    border[[0, -1], :] = True
    border[:, [0, -1]] = True
    assert not images[:, border].any()
    assert np.all(images.sum(axis=(1, 2)) > 0)
    assert set(np.unique(images)) == {0.0, 1.0}


def test_render_in_chunks_matches_small_batches(monkeypatch):
    f = S.sample_factors(50, 5)
    whole = S.render(f)
    monkeypatch.setattr(sp, "RENDER_CHUNK", 7)
    np.testing.assert_array_equal(S.render(f), whole)
    assert S.render(np.zeros((0, 5), np.int32)).shape == (0, 64, 64, 1)


def test_sample_factors_ranges_and_determinism():
    f = S.sample_factors(20000, 0)
    assert f.shape == (20000, 5) and f.dtype == np.int32
    np.testing.assert_array_equal(f.min(axis=0), 0)
    np.testing.assert_array_equal(f.max(axis=0), np.array(S.factor_sizes) - 1)
    np.testing.assert_array_equal(S.sample_factors(20000, 0), f)
    np.testing.assert_array_equal(S.sample_factors(100, np.random.default_rng(0)), S.sample_factors(100, 0))
    assert not np.array_equal(S.sample_factors(100, 1), f[:100])
    images, factors = S.sample(10, 4)
    np.testing.assert_array_equal(images, S.render(factors))


def test_sample_with_fixed_factor():
    for k in range(5):
        f = S.sample_with_fixed_factor(200, k, k)
        assert f.shape == (200, 5) and f.dtype == np.int32
        assert np.unique(f[:, k]).size == 1 and 0 <= f[0, k] < S.factor_sizes[k]
        others = [j for j in range(5) if j != k]
        assert all(np.unique(f[:, j]).size > 1 for j in others)
    np.testing.assert_array_equal(S.sample_with_fixed_factor(50, "scale", 9), S.sample_with_fixed_factor(50, 1, 9))
    with pytest.raises(ValueError, match="factor_index"):
        S.sample_with_fixed_factor(5, 5, 0)


def test_flat_index_round_trip():
    assert S.num_combinations == sp.NUM_COMBINATIONS == 737_280
    index = np.arange(737_280)
    factors = S.index_to_factors(index)
    assert factors.shape == (737_280, 5) and factors.dtype == np.int32
    np.testing.assert_array_equal(S.factors_to_index(factors), index)
    np.testing.assert_array_equal(S.index_to_factors(1), [0, 0, 0, 0, 1])  # pos_y varies fastest
    np.testing.assert_array_equal(S.index_to_factors(32), [0, 0, 0, 1, 0])
    np.testing.assert_array_equal(S.index_to_factors(737_279), [2, 5, 39, 31, 31])
    assert int(S.factors_to_index([1, 2, 3, 4, 5])) == (((1 * 6 + 2) * 40 + 3) * 32 + 4) * 32 + 5
    with pytest.raises(ValueError):
        S.index_to_factors(737_280)


@pytest.mark.parametrize("column,value,name", [(0, 3, "shape"), (1, 6, "scale"), (2, 40, "orientation"),
                                               (3, 32, "pos_x"), (4, -1, "pos_y")])
def test_render_rejects_out_of_range(column, value, name):
    f = np.zeros((4, 5), np.int32)
    f[2, column] = value
    with pytest.raises(ValueError, match=f"'{name}'.*0\\.\\.{S.factor_sizes[column] - 1}"):
        S.render(f)
    with pytest.raises(ValueError, match=f"'{name}'"):
        S.factors_to_index(f)


def test_render_rejects_wrong_shapes_and_dtypes():
    with pytest.raises(ValueError, match="shape"):
        S.render(np.zeros((3, 4), np.int32))
    with pytest.raises(ValueError, match="shape"):
        S.render(np.zeros(5, np.int32))
    with pytest.raises(ValueError, match="integer"):
        S.render(np.zeros((3, 5), np.float32))


def test_load_sprites():
    train = load_sprites("train", num_train=3000)
    test = load_sprites("test")
    assert len(train) == 3000 and len(test) == 2000
    for ds, split in ((train, "train"), (test, "test")):
        assert ds.split == split
        assert ds.images.shape == (len(ds), 64, 64, 1) and ds.images.dtype == np.float32
        assert ds.factors.shape == (len(ds), 5) and ds.factors.dtype == np.int32
        assert ds.labels.dtype == np.int32
        np.testing.assert_array_equal(ds.labels, ds.factors[:, 0])
        assert set(np.unique(ds.images)) == {0.0, 1.0}
        np.testing.assert_array_equal(ds.images, S.render(ds.factors))
    info = train.info
    assert info.name == "sprites" and info.image_shape == (64, 64, 1) and info.num_classes == 3
    assert info.factor_names == S.factor_names and info.factor_sizes == S.factor_sizes and info.binary
    assert not np.array_equal(train.factors[:2000], test.factors)
    again = load_sprites("test")
    np.testing.assert_array_equal(again.images, test.images)
    np.testing.assert_array_equal(again.factors, test.factors)
    assert not np.array_equal(load_sprites("test", seed=5).factors, test.factors)
    with pytest.raises(ValueError, match="'train' and 'test'"):
        load_sprites("validation")


def test_default_train_split_size():
    assert len(load_sprites("train")) == 20000


def test_longer_training_split_begins_with_the_default_one():
    default = load_sprites("train")
    longer = vdata.load("sprites", "train[:20050]")   # beyond 20,000 the split renders more draws
    assert len(longer) == 20050 and longer.split == "train[:20050]"
    np.testing.assert_array_equal(longer.factors[:20000], default.factors)
    np.testing.assert_array_equal(longer.images[20000:], S.render(longer.factors[20000:]))
    # the extra block is new draws, neither a repeat of the default split nor the test split
    assert not np.array_equal(longer.factors[20000:], default.factors[:50])
    assert not np.array_equal(longer.factors[20000:], load_sprites("test").factors[:50])
    np.testing.assert_array_equal(vdata.load("sprites", "train[20000:20050]").factors, longer.factors[20000:])
    for bad in (0, 737_281):
        with pytest.raises(ValueError, match=f"1 to 737,280 images .*not {bad}"):
            load_sprites("train", num_train=bad)
