"""Your own data (vae.data.files): folders of images and .npz / .npy files, their splits, and every
bad input refused before any work with a message naming the file."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from vae.data import DataFileError, FileOptions, load
from vae.data.files import is_file_source


def _npz(path, n=40, labels=True, **extra):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 6, 5), dtype=np.uint8)
    images[:, 0, 0] = np.arange(n)                    # every image distinct
    arrays = {"images": images, **({"labels": np.arange(n) % 4} if labels else {}), **extra}
    np.savez(path, **arrays)
    return images


def _png_folder(root, sizes=((6, 5),) * 6, classes=("cat", "dog"), mode="L"):
    rng = np.random.default_rng(1)
    for i, (h, w) in enumerate(sizes):
        folder = os.path.join(root, classes[i % len(classes)]) if classes else root
        os.makedirs(folder, exist_ok=True)
        shape = (h, w) if mode == "L" else (h, w, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(os.path.join(folder, f"{i:03d}.png"))
    return root


def test_npz_splits_are_stratified_disjoint_and_fixed_by_the_split_seed(tmp_path):
    path = str(tmp_path / "d.npz")
    images = _npz(path)
    opts = FileOptions(test_fraction=0.25)
    train, test = load(path, "train", files=opts), load(path, "test", files=opts)
    assert (len(train), len(test)) == (30, 10) and train.images.shape[1:] == (6, 5, 1)
    assert np.bincount(test.labels).tolist() == [3, 3, 2, 2]       # 2.5 each: the remainders go in class order
    assert train.info.num_classes == 4 and "uint8 0..255" in train.info.description
    seen = {int(round(v * 255)) for v in np.concatenate([train.images, test.images])[:, 0, 0, 0]}
    assert seen == set(range(40))                                     # disjoint, and together all of it
    np.testing.assert_array_equal(test.images, load(path, "test", files=opts).images)
    other = load(path, "test", files=FileOptions(test_fraction=0.25, split_seed=1))
    assert not np.array_equal(test.images, other.images)
    np.testing.assert_allclose(np.sort(test.images.ravel()),
                               np.sort(images[np.isin(images[:, 0, 0], np.round(test.images[:, 0, 0, 0] * 255))]
                                       .ravel() / 255.0), atol=1e-6)
    assert len(load(path, "train[:7]", files=opts)) == 7


def test_float_npz_npy_and_an_explicit_test_file(tmp_path):
    x = np.random.default_rng(0).random((12, 4, 4, 3)).astype(np.float32)
    np.save(tmp_path / "train.npy", x)
    np.savez(tmp_path / "test.npz", images=x[:5])
    opts = FileOptions(test_path=str(tmp_path / "test.npz"))
    train, test = load(str(tmp_path / "train.npy"), "train", files=opts), load(str(tmp_path / "train.npy"), "test",
                                                                                files=opts)
    np.testing.assert_array_equal(train.images, x)
    np.testing.assert_array_equal(test.images, x[:5])
    assert train.labels is None and "float [0, 1]" in train.info.description
    grey = load(str(tmp_path / "train.npy"), "train", files=FileOptions(test_path=str(tmp_path / "test.npz"),
                                                                       channels=1, image_size=(8, 6)))
    assert grey.images.shape == (12, 8, 6, 1)


def test_a_folder_of_class_folders_gives_labels_and_their_names(tmp_path):
    root = _png_folder(str(tmp_path / "pets"), sizes=((6, 5),) * 10)
    assert is_file_source(root)
    ds_train = load(root, "train", files=FileOptions(test_fraction=0.2))
    ds_test = load(root, "test", files=FileOptions(test_fraction=0.2))
    assert (len(ds_train), len(ds_test)) == (8, 2) and sorted(ds_test.labels.tolist()) == [0, 1]
    assert ds_train.info.class_names == ("cat", "dog") and ds_train.images.shape[1:] == (6, 5, 1)
    everything = load(root, "train", files=FileOptions(test_path=root))       # all files, in sorted order
    first = np.asarray(Image.open(os.path.join(root, "cat", "000.png")), np.float32) / 255.0
    np.testing.assert_allclose(everything.images[0, :, :, 0], first, atol=1e-7)
    assert everything.labels.tolist() == [0] * 5 + [1] * 5
    flat = _png_folder(str(tmp_path / "flat"), classes=(), mode="RGB")
    ds = load(flat, "train", files=FileOptions(test_fraction=0.5))
    assert ds.labels is None and ds.images.shape == (3, 6, 5, 3)


def test_bad_inputs_are_refused_naming_the_file(tmp_path):
    mixed = _png_folder(str(tmp_path / "mixed"), sizes=((6, 5), (6, 5), (7, 5), (6, 5)), classes=())
    with pytest.raises(DataFileError, match=r"images differ in size .*002.png is \(7, 5, 1\); set data.image_size"):
        load(mixed, "train")
    assert load(mixed, "train", files=FileOptions(image_size=(6, 5), test_fraction=0.5)).images.shape[1:] == (6, 5, 1)
    with open(os.path.join(mixed, "004.png"), "wb") as f:
        f.write(b"not an image")
    with pytest.raises(DataFileError, match="004.png cannot be read as an image"):
        load(mixed, "train", files=FileOptions(image_size=(6, 5)))
    os.makedirs(tmp_path / "empty")
    with pytest.raises(DataFileError, match="empty holds no image files"):
        load(str(tmp_path / "empty"), "train")
    both = _png_folder(str(tmp_path / "both"), classes=("a",))
    Image.fromarray(np.zeros((6, 5), np.uint8)).save(os.path.join(both, "loose.png"))
    with pytest.raises(DataFileError, match="holds both image files .* and sub-folders"):
        load(both, "train")
    cases = {
        "nan.npz": (dict(images=np.full((4, 3, 3), np.nan, np.float32)), "36 pixel values are NaN"),
        "range.npz": (dict(images=np.full((4, 3, 3), 255.0, np.float32)), r"range over \[255, 255\]; give uint8"),
        "labels.npz": (dict(images=np.zeros((4, 3, 3), np.uint8), labels=np.arange(3)),
                       r"labels have shape \(3,\) but there are 4 images"),
        "negative.npz": (dict(images=np.zeros((4, 3, 3), np.uint8), labels=-np.ones(4, int)), "integers >= 0"),
        "pickled.npz": (dict(images=np.array([{"a": 1}] * 4, dtype=object)), "pickled objects, which are never loaded"),
        "keys.npz": (dict(x=np.zeros((4, 3, 3), np.uint8)), "has no array named 'images' .*it has: x"),
    }
    for name, (arrays, message) in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(DataFileError, match=message):
            load(str(tmp_path / name), "train")
    with pytest.raises(DataFileError, match="no such file or folder"):
        load(str(tmp_path / "missing.npz"), "train")


def test_training_on_an_npz_records_the_data_and_a_bad_file_stops_before_any_work(tmp_path, capsys):
    from vae.cli import main
    from vae.trained import load_run

    path = str(tmp_path / "digits.npz")
    _npz(path, n=64)
    out = str(tmp_path / "run")
    args = ["train", "--set", f"data.name={path}", "--set", "train.steps=4", "--set", "train.eval_every=4",
            "--set", "model.hidden=8", "--set", "model.latent_dim=2", "--set", "train.batch_size=16",
            "--set", "train.final_iwae_samples=0", "--set", "train.num_samples=4", "--no-progress", "--out", out]
    assert main(args) == 0
    with open(os.path.join(out, "config.json")) as f:
        record = json.load(f)["dataset"]
    assert record["train_examples"] == 58 and record["test_examples"] == 6 and record["num_classes"] == 4
    assert "uint8 0..255, divided by 255" in record["description"] and record["image_shape"] == [6, 5, 1]
    run = load_run(out)
    assert run.test_images.shape == (6, 6, 5, 1) and run.config.data.name == path
    # the model card says what the run's files say, and follows evaluation and synthesis
    from vae.evaluate import evaluate_run
    from vae.synthesis import synthesize

    card = open(os.path.join(out, "MODEL_CARD.md")).read()
    for text in ("## Model", "## Data", "## Training", "## Evaluation", "## Intended use and limitations",
                 "Variant: `vae`", "Kingma", f"Dataset: `{path}`; your data from", "58 training and 6 test images",
                 "Class balance (training split): 0: ", "Budget: 4 steps of batch 16"):
        assert text in card, text
    assert "sampler" not in card.split("## Evaluation")[1] and "Synthetic data generated" not in card
    evaluate_run(out, iwae_samples=10)
    synthesize(out, 5, out=os.path.join(out, "synthetic", "s.npz"), seed=3)
    card = open(os.path.join(out, "MODEL_CARD.md")).read()
    assert "`vae evaluate` (step 4): IWAE log p(x)" in card and "with k = 10" in card
    assert "`synthetic/s.npz`: 5 images, seed 3" in card
    np.savez(tmp_path / "bad.npz", images=np.full((8, 6, 5), 2.0, np.float32))
    capsys.readouterr()
    assert main(args[:2] + [f"data.name={tmp_path / 'bad.npz'}"] + args[3:-1] + [str(tmp_path / "run2")]) == 2
    assert "bad.npz: pixel values range over [2, 2]" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "run2")


def test_training_on_arrays_in_memory_copies_them_into_the_run(tmp_path):
    import vae.config
    import vae.run
    from vae.errors import ConfigError
    from vae.trained import load_run

    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (50, 6, 5), dtype=np.uint8), np.arange(50) % 5
    cfg = vae.config.Config().replace(**{"train.steps": 3, "train.eval_every": 3, "model.hidden": (8,),
                                         "model.latent_dim": 2, "train.batch_size": 10, "train.progress": False,
                                         "train.final_iwae_samples": 0, "train.num_samples": 4,
                                         "data.test_fraction": 0.2})
    out = str(tmp_path / "mem")
    vae.run.train(cfg, out, data=(images, labels))
    with open(os.path.join(out, "config.json")) as f:
        saved = json.load(f)
    assert saved["dataset"]["source"] == "memory" and "passed in memory" in saved["dataset"]["description"]
    assert (saved["dataset"]["train_examples"], saved["dataset"]["test_examples"]) == (40, 10)
    assert saved["data"]["name"] == os.path.join(os.path.abspath(out), "data", "train.npz")
    run = load_run(out)
    assert run.test_images.shape == (10, 6, 5, 1) and sorted(run.test.labels.tolist()) == sorted(list(range(5)) * 2)
    with np.load(os.path.join(out, "data", "train.npz"), allow_pickle=False) as f:
        kept = np.round(f["images"][..., 0] * 255).astype(np.uint8)
    assert all(any((k == x).all() for x in images) for k in kept[:5])          # the rows given, unchanged
    vae.run.train(cfg.replace(**{"train.steps": 6}), out, resume=True)       # resumes from the saved copy
    with pytest.raises(ConfigError, match=r"data: labels have shape \(3,\) but there are 50 images"):
        vae.run.train(cfg, str(tmp_path / "bad"), data={"images": images, "labels": labels[:3]})
