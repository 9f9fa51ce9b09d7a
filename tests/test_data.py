import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vae.data as vdata
from vae.data.mnist5k import split_indices
from vae.data.pipeline import Batcher, binarize, eval_batches, prepare


def test_mnist5k_split_is_stratified_and_fixed():
    train, test = vdata.load("mnist5k", "train"), vdata.load("mnist5k", "test")
    assert train.images.shape == (4000, 28, 28, 1) and test.images.shape == (1000, 28, 28, 1)
    assert train.images.dtype == np.float32 and 0.0 <= train.images.min() and train.images.max() == 1.0
    assert np.bincount(train.labels).tolist() == [400] * 10
    assert np.bincount(test.labels).tolist() == [100] * 10
    idx = split_indices()
    assert not set(idx["train"]) & set(idx["test"])
    assert len(set(idx["train"]) | set(idx["test"])) == 5000
    # the same split every time (the documented seed), and real digits: mean intensity of MNIST is ~0.13
    np.testing.assert_array_equal(split_indices()["test"], idx["test"])
    assert 0.1 < train.images.mean() < 0.16
    assert train.info.num_classes == 10 and train.info.image_shape == (28, 28, 1)


def test_offline_split_slicing_and_bad_split():
    part = vdata.load("mnist5k", "test[10:20]")
    np.testing.assert_array_equal(part.images, vdata.load("mnist5k", "test").images[10:20])
    assert len(part) == 10
    with pytest.raises(ValueError, match="mnist5k has splits 'train' and 'test', not 'validation'"):
        vdata.load("mnist5k", "validation")


def test_unavailable_tfds_dataset_fails_fast_and_names_offline_sets(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(vdata.DatasetUnavailableError) as err:
        vdata.load("fashion_mnist", "train", data_dir=str(tmp_path))
    assert time.monotonic() - t0 < 20
    message = str(err.value)
    for word in ("fashion_mnist", str(tmp_path), "mnist5k", "sprites"):
        assert word in message


def test_batcher_covers_each_epoch_without_replacement_and_is_deterministic():
    images = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    labels = np.arange(10, dtype=np.int32)
    b = Batcher(images, labels, batch_size=3, seed=0)
    assert b.steps_per_epoch == 3
    epoch0 = np.concatenate([np.asarray(b.batch(s)["label"]) for s in range(3)])
    assert len(set(epoch0.tolist())) == 9  # 9 distinct of 10, one dropped
    epoch1 = np.concatenate([np.asarray(b.batch(s)["label"]) for s in range(3, 6)])
    assert not np.array_equal(epoch0, epoch1)
    again = Batcher(images, labels, batch_size=3, seed=0)
    # random access by step gives the same batch as sequential iteration (what resume relies on)
    np.testing.assert_array_equal(again.batch(4)["label"], b.batch(4)["label"])
    np.testing.assert_array_equal(b.batch(2)["image"][:, 0, 0, 0], b.batch(2)["label"].astype(np.float32))
    other = Batcher(images, labels, batch_size=3, seed=1)
    assert not np.array_equal(np.asarray(other.batch(0)["label"]), np.asarray(b.batch(0)["label"]))
    with pytest.raises(ValueError, match="train.batch_size=11 is larger than the training split"):
        Batcher(images, labels, batch_size=11, seed=0)


def test_dynamic_binarization_resamples_each_batch():
    images = np.full((8, 4, 4, 1), 0.5, np.float32)
    b = Batcher(images, None, batch_size=8, seed=0, dynamic_binarization=True)
    x0, x1 = np.asarray(b.batch(0)["image"]), np.asarray(b.batch(1)["image"])
    assert set(np.unique(x0).tolist()) == {0.0, 1.0}
    assert not np.array_equal(np.sort(x0.ravel()), np.sort(x1.ravel())) or not np.array_equal(x0, x1)
    np.testing.assert_array_equal(x0, np.asarray(Batcher(images, None, 8, seed=0, dynamic_binarization=True).batch(0)["image"]))
    assert 0.4 < float(jnp.mean(jnp.stack([b.batch(s)["image"] for s in range(20)]))) < 0.6


def test_static_binarization_is_fixed_by_seed():
    ds = vdata.load("mnist5k", "test[:50]")
    a, b = prepare(ds, "static", train=True, seed=3), prepare(ds, "static", train=True, seed=3)
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a).tolist()) <= {0.0, 1.0}
    assert not np.array_equal(a, prepare(ds, "static", train=True, seed=4))
    # pixel means follow the intensities
    np.testing.assert_allclose(binarize(np.full((200, 10, 10, 1), 0.3, np.float32), 0).mean(), 0.3, atol=0.01)
    np.testing.assert_array_equal(prepare(ds, "none", train=True, seed=0), ds.images)
    np.testing.assert_array_equal(prepare(ds, "dynamic", train=True, seed=0), ds.images)


def test_eval_batches_pad_and_mask():
    images = np.ones((7, 2, 2, 1), np.float32)
    batches = list(eval_batches(images, None, batch_size=3))
    assert [b["image"].shape[0] for b in batches] == [3, 3, 3]
    assert batches[-1]["mask"].tolist() == [1.0, 0.0, 0.0]
    assert sum(b["mask"].sum() for b in batches) == 7


def test_bernoulli16_frequencies_match_p_and_draws_are_uncorrelated():
    from vae.data.pipeline import bernoulli16

    p = jnp.asarray(np.tile(np.array([0.0, 1.0, 0.3, 0.5, 1 / 255, 254 / 255], np.float32), (40_000, 1)))
    a = np.asarray(bernoulli16(jax.random.PRNGKey(0), p))
    b = np.asarray(bernoulli16(jax.random.PRNGKey(1), p))
    assert a.dtype == np.float32 and a.shape == p.shape and set(np.unique(a)) <= {0.0, 1.0}
    assert a[:, 0].max() == 0.0 and a[:, 1].min() == 1.0  # exact at p = 0 and p = 1
    freq = a.mean(0)
    sigma = np.sqrt(np.asarray(p[0]) * (1 - np.asarray(p[0])) / a.shape[0])
    assert np.all(np.abs(freq - np.asarray(p[0])) <= 5 * sigma + 2e-5), freq
    # draws from the two halves of one word (columns 2, 3), from the two words of one Threefry
    # block (a 4-pixel row is one block), of neighbouring rows and of different keys are
    # independent: correlation ~ 0
    assert abs(np.corrcoef(a[:, 2], a[:, 3])[0, 1]) < 0.02
    half = jnp.full((40_000, 4), 0.5, jnp.float32)  # 2 words per row: one block per row
    c = np.asarray(bernoulli16(jax.random.PRNGKey(2), half))
    assert abs(np.corrcoef(c[:, 0], c[:, 2])[0, 1]) < 0.02 and abs(np.corrcoef(c[:, 1], c[:, 3])[0, 1]) < 0.02
    assert abs(np.corrcoef(c[:-1, 0], c[1:, 0])[0, 1]) < 0.02
    assert abs(np.corrcoef(a[:, 3], b[:, 3])[0, 1]) < 0.02


def test_bernoulli16_keys_and_shapes():
    from vae.data.pipeline import bernoulli16

    p = jnp.full((64, 5, 3, 1), 0.5, jnp.float32)  # an odd number of pixels per row
    raw = np.asarray(bernoulli16(jax.random.PRNGKey(3), p))
    assert raw.shape == p.shape and 0.35 < raw.mean() < 0.65
    # a typed threefry key draws the same bits as its raw key data
    np.testing.assert_array_equal(np.asarray(bernoulli16(jax.random.wrap_key_data(jax.random.PRNGKey(3)), p)), raw)
    assert not np.array_equal(np.asarray(bernoulli16(jax.random.PRNGKey(4), p)), raw)
    # other key types go through jax.random.bits
    rbg = np.asarray(bernoulli16(jax.random.key(0, impl="rbg"), p))
    assert rbg.shape == p.shape and set(np.unique(rbg)) <= {0.0, 1.0}
    flat = np.asarray(bernoulli16(jax.random.PRNGKey(3), jnp.full((1001,), 0.25, jnp.float32)))
    assert flat.shape == (1001,) and 0.2 < flat.mean() < 0.3
    # each row's draws depend only on the key and the row's index, not on the other rows
    np.testing.assert_array_equal(np.asarray(bernoulli16(jax.random.PRNGKey(3), p[:10])), raw[:10])


