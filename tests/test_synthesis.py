"""Synthetic-data export: provenance in the .npz and every PNG, labels of conditional and
unconditional models (balanced through a classifier), batching, and clear refusals."""

import dataclasses
import json
import os

import numpy as np
import pytest
from PIL import Image

import vae
from vae.synthesis import (
    SynthesisError,
    generate_arrays,
    read_synthetic,
    synthesize,
)
from vae.cli import main



class HashClassifier:
    """A stand-in dataset classifier: a deterministic, roughly uniform label from the pixels."""

    def __init__(self, num_classes=3, never=()):
        self.num_classes, self.never = num_classes, never

    def predict(self, images):
        flat = np.asarray(images, np.float64).reshape(len(images), -1)
        labels = (np.floor(flat.sum(axis=1) * 1e4).astype(np.int64) % self.num_classes).astype(np.int32)
        for c in self.never:
            labels[labels == c] = (c + 1) % self.num_classes
        return labels


def test_npz_and_pngs_carry_provenance(runs, tmp_path):
    run, _ = runs
    result = synthesize(run, 70, out=str(tmp_path / "samples"), seed=3, batch_size=32, temperature=0.8,
                        png_dir=str(tmp_path / "png"))
    assert result["path"].endswith("samples.npz") and result["num_png"] == 70
    images, labels, meta = read_synthetic(result["path"])
    assert images.shape == (70, 28, 28, 1) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert labels.dtype == np.int32 and (labels == -1).all()
    assert meta["synthetic"] is True and meta["toolkit_version"] == vae.__version__
    assert meta["run"] == "run" and meta["checkpoint_step"] == run.step
    assert meta["seed"] == 3 and meta["temperature"] == 0.8 and "unknown" in meta["labels_from"]
    # the same samples as in-memory generation with the same seed and batch size
    np.testing.assert_array_equal(images, generate_arrays(run, 70, seed=3, batch_size=32, temperature=0.8))
    pngs = sorted(os.listdir(tmp_path / "png"))
    assert len(pngs) == 70 and not any(p.endswith(".partial") for p in os.listdir(tmp_path))
    with Image.open(tmp_path / "png" / pngs[5]) as img:
        text = dict(img.text)
        pixels = np.asarray(img)
    assert text["synthetic"] == "true" and text["toolkit_version"] == vae.__version__
    assert text["run"] == "run" and text["seed"] == "3" and text["index"] == "5" and text["label"] == "-1"
    np.testing.assert_array_equal(pixels, np.round(images[5, ..., 0] * 255).astype(np.uint8))


def test_conditional_label_and_balanced_counts(runs, tmp_path):
    _, crun = runs
    r = synthesize(crun, 12, out=str(tmp_path / "three.npz"), label=3)
    _, labels, meta = read_synthetic(r["path"])
    assert (labels == 3).all() and meta["label"] == 3 and "requested label 3" in meta["labels_from"]
    r = synthesize(crun, 30, out=str(tmp_path / "bal.npz"), balanced=True, dtype="uint8", batch_size=8)
    images, labels, meta = read_synthetic(r["path"])
    assert images.dtype == np.uint8 and images.shape == (30, 28, 28, 1)
    assert np.bincount(labels, minlength=10).tolist() == [3] * 10
    assert meta["balanced"] is True and meta["label_counts"] == [3] * 10
    r = synthesize(crun, 25, out=str(tmp_path / "bal25.npz"), balanced=True)
    assert sorted(r["label_counts"]) == [2] * 5 + [3] * 5


def test_unconditional_balanced_through_a_classifier(runs, tmp_path):
    run, _ = runs
    clf = HashClassifier(3)
    r = synthesize(run, 30, out=str(tmp_path / "bal.npz"), balanced=True, classifier=clf, batch_size=16)
    images, labels, meta = read_synthetic(r["path"])
    assert np.bincount(labels).tolist() == [10, 10, 10]
    np.testing.assert_array_equal(clf.predict(images), labels)   # each label is the classifier's prediction
    assert r["draws"] >= 30 and "classifier" in meta["labels_from"] and "rejection" in meta["labels_from"]
    # a class the classifier never assigns: a clear error naming it, and no file left behind
    with pytest.raises(SynthesisError, match="class 2: 0 of 10"):
        synthesize(run, 30, out=str(tmp_path / "never.npz"), balanced=True, classifier=HashClassifier(3, never=(2,)),
                   batch_size=16, max_draws=160)
    assert not [p for p in os.listdir(tmp_path) if p.startswith("never")]


def test_unconditional_balanced_trains_the_dataset_classifier(runs, tmp_path):
    run, _ = runs
    # the tiny run's split holds only digits 0 and 1, so the 10-class classifier never predicts 2..9
    with pytest.raises(SynthesisError, match="class 9: 0 of"):
        synthesize(run, 20, out=str(tmp_path / "x.npz"), balanced=True, classifier_steps=10, max_draws=100,
                   batch_size=50)
    assert os.path.isdir(os.path.join(run.run_dir, "classifier"))


def test_bad_requests_are_refused_clearly(runs, tmp_path):
    run, crun = runs
    out = str(tmp_path / "x.npz")
    for num in (0, -5):
        with pytest.raises(SynthesisError, match="must be a positive integer"):
            synthesize(run, num, out=out)
    with pytest.raises(SynthesisError, match="out of range.*0..9"):
        synthesize(crun, 4, out=out, label=10)
    with pytest.raises(SynthesisError, match="unconditional"):
        synthesize(run, 4, out=out, label=1)
    with pytest.raises(SynthesisError, match="not both"):
        synthesize(crun, 4, out=out, label=1, balanced=True)
    with pytest.raises(SynthesisError, match="temperature"):
        synthesize(run, 4, out=out, temperature=-1.0)
    with pytest.raises(SynthesisError, match="dtype"):
        synthesize(run, 4, out=out, dtype="float16")
    unlabelled = dataclasses.replace(run, test=dataclasses.replace(
        run.test, labels=None, info=dataclasses.replace(run.test.info, num_classes=None)))
    with pytest.raises(SynthesisError, match="has none"):
        synthesize(unlabelled, 4, out=out, balanced=True)
    assert not os.path.exists(out)


def test_command_line_entry(runs, tmp_path, capsys):
    run, crun = runs
    out = str(tmp_path / "cli.npz")
    assert main(["synthesize", crun.run_dir, "-n", "20", "--balanced", "--out", out, "--uint8"]) == 0
    _, labels, meta = read_synthetic(out)
    assert np.bincount(labels).tolist() == [2] * 10 and meta["image_dtype"] == "uint8"
    assert "wrote" in capsys.readouterr().out
    assert main(["synthesize", run.run_dir, "-n", "4", "--label", "2", "--out", out]) == 2
    assert "unconditional" in capsys.readouterr().err
    assert json.loads(str(np.load(out)["metadata"]))["synthetic"] is True
