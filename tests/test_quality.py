"""Sample-quality metrics: Fréchet distance against closed forms, precision/recall and the label
report on a Gaussian mixture with dropped modes, the classifier, and the whole pipeline on tiny runs."""

import json
import os

import numpy as np
import pytest

from vae.quality import (
    Classifier,
    classifier_dir,
    fd_classifier,
    format_label_table,
    frechet_distance,
    knn_radii,
    label_distribution,
    load_or_train_classifier,
    precision_recall,
    sample_quality,
    train_classifier,
)



# -- Fréchet distance --------------------------------------------------------------------------

def test_frechet_distance_matches_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = rng.uniform(0.1, 3.0, 6), rng.uniform(0.1, 3.0, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu1, np.diag(s1), mu1, np.diag(s1)) == pytest.approx(0.0, abs=1e-9)
    # a rotation of both covariances leaves the distance unchanged
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    assert frechet_distance(q @ mu1, q @ np.diag(s1) @ q.T, q @ mu2, q @ np.diag(s2) @ q.T) == pytest.approx(
        expected, rel=1e-6)


def test_frechet_distance_handles_singular_covariances():
    cov = np.diag([1.0, 0.0, 0.0])           # rank 1: sqrtm of the product is singular
    value = frechet_distance(np.zeros(3), cov, np.ones(3), np.diag([0.0, 2.0, 0.0]))
    assert np.isfinite(value)
    assert value == pytest.approx(3.0 + 1.0 + 2.0, abs=1e-3)
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(3), cov, np.zeros(2), np.eye(2))


def test_fd_classifier_near_zero_for_samples_of_one_distribution():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(8, 8))
    cov = a @ a.T / 8 + 0.1 * np.eye(8)
    draw = lambda mu, n: rng.multivariate_normal(mu, cov, size=n)  # noqa: E731
    same = fd_classifier(draw(np.zeros(8), 20000), draw(np.zeros(8), 20000))
    different = fd_classifier(draw(np.zeros(8), 20000), draw(np.full(8, 1.0), 20000))
    assert different == pytest.approx(8.0, rel=0.1)
    assert same < 0.01 * different


# -- precision / recall and the label report ------------------------------------------------------

def _mixture(rng, n, classes, dim=4, num_classes=10):
    """A mixture of 10 unit Gaussians in 4-d with well separated means (k-NN balls tighten with dimension)."""
    centers = np.random.default_rng(123).normal(scale=8.0, size=(num_classes, dim))
    labels = rng.choice(np.asarray(classes), size=n)
    return centers[labels] + rng.normal(size=(n, dim)), labels


def test_knn_radii_batched_equals_brute_force():
    x = np.random.default_rng(2).normal(size=(50, 3))
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    expected = np.sort(d, axis=1)[:, 3]
    np.testing.assert_allclose(knn_radii(x, k=3, batch_size=7), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="k="):
        knn_radii(x[:3], k=3)


def test_precision_recall_identical_sets_are_one():
    x, _ = _mixture(np.random.default_rng(3), 500, range(10))
    pr = precision_recall(x, x.copy(), k=3, batch_size=128)
    assert pr["precision"] == 1.0 and pr["recall"] == 1.0


def test_dropped_modes_lower_recall_keep_precision_and_are_named():
    rng = np.random.default_rng(4)
    real, real_labels = _mixture(rng, 2000, range(10))
    full, full_labels = _mixture(rng, 2000, range(10))
    kept = [c for c in range(10) if c not in (3, 7)]
    fake, fake_labels = _mixture(rng, 2000, kept)
    good = precision_recall(real, full, k=3, batch_size=500)
    bad = precision_recall(real, fake, k=3, batch_size=500)
    assert good["precision"] > 0.9 and good["recall"] > 0.9
    assert bad["precision"] > 0.9                       # every generated sample is still realistic
    assert bad["recall"] < 0.85                         # ~20% of the real data is not covered
    assert bad["recall"] < good["recall"] - 0.1

    report = label_distribution(real_labels, fake_labels, 10)
    assert report["under_represented"] == [3, 7]
    assert report["missing"] == [3, 7]
    assert np.isfinite(report["kl_real_to_generated"]) and report["kl_real_to_generated"] > 0.1
    assert report["total_variation"] == pytest.approx(0.2, abs=0.04)
    assert [row["generated_count"] for row in report["per_class"]][3] == 0
    fine = label_distribution(real_labels, full_labels, 10)
    assert fine["under_represented"] == [] and fine["total_variation"] < 0.05
    text = format_label_table(report)
    assert "under-represented" in text and json.dumps(report)


# -- the classifier ------------------------------------------------------------------------------

def _toy_images(rng, n):
    """Class 0: bright top half, class 1: bright bottom half, class 2: bright left half."""
    y = rng.integers(0, 3, n)
    x = rng.uniform(0, 0.3, size=(n, 8, 8, 1)).astype(np.float32)
    x[y == 0, :4] += 0.6
    x[y == 1, 4:] += 0.6
    x[y == 2, :, :4] += 0.6
    return np.clip(x, 0, 1), y


def test_train_classifier_learns_and_round_trips(tmp_path):
    rng = np.random.default_rng(5)
    x, y = _toy_images(rng, 300)
    xt, yt = _toy_images(rng, 200)
    clf = train_classifier(x, y, 3, steps=60, batch_size=32, channels=(8,), hidden=16, seed=0)
    assert clf.accuracy(xt, yt) > 0.95
    assert clf.features(xt).shape == (200, 16)
    assert clf.predict(xt[:5]).shape == (5,)
    clf.save(str(tmp_path / "c"))
    again = Classifier.load(str(tmp_path / "c"))
    np.testing.assert_array_equal(again.predict(xt), clf.predict(xt))
    np.testing.assert_allclose(again.features(xt), clf.features(xt), rtol=1e-6)
    with pytest.raises(ValueError, match="labels must lie"):
        train_classifier(x, y + 1, 3, steps=1)
    with pytest.raises(ValueError, match="shape"):
        clf.predict(np.zeros((2, 9, 9, 1), np.float32))


def test_classifier_is_cached_in_the_run_directory(runs):
    run, _ = runs
    first = load_or_train_classifier(run, steps=15)
    assert first.info["cached"] is False and 0.0 <= first.info["test_accuracy"] <= 1.0
    assert os.path.exists(os.path.join(classifier_dir(run, 15), "params.msgpack"))
    second = load_or_train_classifier(run, steps=15)
    assert second.info["cached"] is True
    x = run.test.images[:16]
    np.testing.assert_array_equal(first.predict(x), second.predict(x))


# -- the whole report on tiny runs ---------------------------------------------------------------

@pytest.mark.parametrize("which", ["unconditional", "conditional"])
def test_sample_quality_end_to_end(runs, which):
    run = runs[0] if which == "unconditional" else runs[1]
    # both tiny runs share a dataset: the classifier trained (and cached) for the first serves both
    classifier = load_or_train_classifier(runs[0], steps=15)
    q = sample_quality(run, num_samples=64, classifier=classifier, cas_samples=128, seed=0)
    json.dumps(q)
    assert q["fd_classifier"] >= 0 and "fid" not in json.dumps(list(q))
    assert 0 <= q["precision"] <= 1 and 0 <= q["recall"] <= 1
    for key in ("cas", "real_accuracy", "real_plus_synthetic_accuracy"):
        assert 0.0 <= q["cas"][key] <= 1.0
    assert q["cas"]["num_synthetic"] == 128 and q["cas"]["steps"] == 15
    assert q["cas"]["real_accuracy_from"] == "the dataset classifier"
    assert "distillation" in q["cas"]["labels_from"] if which == "unconditional" else "conditional" in q["cas"][
        "labels_from"]
    s = q["settings"]
    assert s["num_generated"] == 64 and s["num_real"] == 128 and s["k"] == 3 and s["seed"] == 0
    assert s["classifier"]["steps"] == 15 and 0 <= s["classifier"]["test_accuracy"] <= 1
    assert len(q["label_distribution"]["per_class"]) == 10
    if which == "conditional":
        assert 0.0 <= q["label_consistency"] <= 1.0
