"""Sample-quality metrics in the feature space of the dataset classifier (`vae.trained.classifier`):

- `fd_classifier`: the Fréchet distance between Gaussians fitted to classifier features of real
  and generated images (the FID formula, Heusel et al. 2017, but NOT Inception features: do not
  compare it with FID values from papers);
- precision and recall for generative models (Kynkäänniemi et al. 2019);
- the label distribution of generated samples against the real one (total variation, KL,
  under-represented classes);
- the Classification Accuracy Score (Ravuri & Vinyals 2019).

These take features, labels and images; `vae.quality.sample_quality` computes them for a run.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
from scipy import linalg

from vae.trained.classifier import DEFAULT_CLASSIFIER_STEPS, train_classifier

# ----------------------------------------------------------------------------------------------
# Fréchet distance in classifier feature space
# ----------------------------------------------------------------------------------------------

def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2)), the Fréchet (2-Wasserstein)
    distance between two Gaussians (Dowson & Landau 1982), as computed for FID.

    As is standard (pytorch-fid / TTUR): if the matrix square root is not finite or has a
    significant imaginary part (near-singular covariances), eps * I is added to both
    covariances; small imaginary parts from numerical error are dropped.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (mu1.shape[0], mu1.shape[0]):
        raise ValueError(f"shapes do not match: mu {mu1.shape} / {mu2.shape}, cov {cov1.shape} / {cov2.shape}")
    diff = mu1 - mu2

    def sqrt_product(a, b):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return linalg.sqrtm(a @ b)

    covmean = sqrt_product(cov1, cov2)
    scale = max(float(np.abs(np.diagonal(covmean)).max(initial=0.0)), 1.0)
    if not np.isfinite(covmean).all() or (
            np.iscomplexobj(covmean) and np.abs(np.diagonal(covmean).imag).max() > 1e-3 * scale):
        offset = np.eye(cov1.shape[0]) * eps
        covmean = sqrt_product(cov1 + offset, cov2 + offset)
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    value = float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(covmean))
    return max(value, 0.0)


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [F] and (unbiased) covariance [F, F] of features [N, F], in float64."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must be [N >= 2, F], got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def fd_classifier(real_features: np.ndarray, fake_features: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to real and generated classifier features.
    Not Inception FID: the features are those of this toolkit's dataset classifier."""
    return frechet_distance(*gaussian_stats(real_features), *gaussian_stats(fake_features))


# ----------------------------------------------------------------------------------------------
# Precision and recall (Kynkäänniemi et al. 2019)
# ----------------------------------------------------------------------------------------------

def _sq_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


def _distance_batches(a: np.ndarray, b: np.ndarray, batch_size: int):
    """Yields (start, stop, squared distances [stop - start, len(b)]) over row batches of a."""
    b_norm = _sq_norms(b)
    for start in range(0, a.shape[0], batch_size):
        x = a[start:start + batch_size]
        d = _sq_norms(x)[:, None] + b_norm[None, :] - 2.0 * (x @ b.T)
        yield start, start + x.shape[0], np.maximum(d, 0.0)


def knn_radii(features: np.ndarray, k: int = 3, batch_size: int = 1000) -> np.ndarray:
    """Distance of each point to its k-th nearest neighbour in the same set (itself excluded): [N]."""
    f = np.asarray(features, np.float64)
    if not 1 <= k < f.shape[0]:
        raise ValueError(f"k={k} must be in [1, {f.shape[0] - 1}] for {f.shape[0]} points")
    radii = np.empty(f.shape[0])
    for start, stop, d in _distance_batches(f, f, batch_size):
        d[np.arange(stop - start), np.arange(start, stop)] = 0.0  # exact zero for the point itself
        radii[start:stop] = np.sqrt(np.partition(d, k, axis=1)[:, k])  # index 0 is the point itself
    return radii


def _coverage(query: np.ndarray, support: np.ndarray, radii: np.ndarray, batch_size: int) -> np.ndarray:
    """For each query point: does it lie within the k-NN hypersphere of some support point? [Nq] bool."""
    inside = np.zeros(query.shape[0], bool)
    r2 = radii**2
    for start, stop, d in _distance_batches(query, support, batch_size):
        inside[start:stop] = (d <= r2[None, :]).any(axis=1)
    return inside


def precision_recall(real_features: np.ndarray, fake_features: np.ndarray, k: int = 3,
                     batch_size: int = 1000) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): the real (generated) manifold is
    the union of hyperspheres around each real (generated) feature with radius the distance to
    its k-th nearest neighbour. precision: the share of generated samples inside the real
    manifold (fidelity); recall: the share of real samples inside the generated manifold
    (coverage). Distances are computed in row batches of `batch_size` (memory batch * N)."""
    real = np.asarray(real_features, np.float64)
    fake = np.asarray(fake_features, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be [N, F] with the same F; got {real.shape} and {fake.shape}")
    real_radii = knn_radii(real, k, batch_size)
    fake_radii = knn_radii(fake, k, batch_size)
    precision = float(_coverage(fake, real, real_radii, batch_size).mean())
    recall = float(_coverage(real, fake, fake_radii, batch_size).mean())
    return {"precision": precision, "recall": recall, "k": int(k), "num_real": int(real.shape[0]),
            "num_generated": int(fake.shape[0])}


# ----------------------------------------------------------------------------------------------
# Label distribution of generated samples
# ----------------------------------------------------------------------------------------------

def label_distribution(real_labels: np.ndarray, generated_labels: np.ndarray, num_classes: int, *,
                       under_ratio: float = 0.5, smoothing: float = 0.5,
                       class_names: list[str] | None = None) -> dict[str, Any]:
    """Compares the class shares of generated samples (as the classifier labels them) with the
    real ones.

    Returns a per-class table (real and generated counts and shares, their ratio), the total
    variation distance 0.5 * sum |p - q|, KL(real || generated) and KL(generated || real) in
    nats on shares smoothed with `smoothing` pseudo-counts per class (so a class never generated
    gives a large but finite KL), and `under_represented`: classes whose generated share is
    below `under_ratio` times their real share (`missing`: never generated).
    """
    real = np.bincount(np.asarray(real_labels, np.int64), minlength=num_classes)[:num_classes]
    gen = np.bincount(np.asarray(generated_labels, np.int64), minlength=num_classes)[:num_classes]
    if real.sum() == 0 or gen.sum() == 0:
        raise ValueError("label_distribution needs at least one real and one generated label")
    p, q = real / real.sum(), gen / gen.sum()
    ps = (real + smoothing) / (real.sum() + smoothing * num_classes)
    qs = (gen + smoothing) / (gen.sum() + smoothing * num_classes)
    names = class_names or [str(c) for c in range(num_classes)]
    table = []
    for c in range(num_classes):
        table.append({"class": c, "name": names[c], "real_count": int(real[c]), "real_share": float(p[c]),
                      "generated_count": int(gen[c]), "generated_share": float(q[c]),
                      "ratio": float(q[c] / p[c]) if p[c] > 0 else None})
    under = [c for c in range(num_classes) if p[c] > 0 and q[c] < under_ratio * p[c]]
    return {
        "per_class": table,
        "total_variation": float(0.5 * np.abs(p - q).sum()),
        "kl_real_to_generated": float(np.sum(ps * np.log(ps / qs))),
        "kl_generated_to_real": float(np.sum(qs * np.log(qs / ps))),
        "under_represented": under,
        "missing": [c for c in range(num_classes) if p[c] > 0 and gen[c] == 0],
        "under_ratio": under_ratio,
        "smoothing": smoothing,
        "num_real": int(real.sum()),
        "num_generated": int(gen.sum()),
    }


def format_label_table(dist: dict[str, Any]) -> str:
    """The per-class table of `label_distribution` as aligned text."""
    lines = [f"{'class':>5} {'real':>7} {'generated':>9} {'ratio':>6}"]
    for row in dist["per_class"]:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        flag = "  under-represented" if row["class"] in dist["under_represented"] else ""
        lines.append(f"{row['name']:>5} {row['real_share']:7.3f} {row['generated_share']:9.3f} {ratio:>6}{flag}")
    lines.append(f"TV {dist['total_variation']:.3f}  KL(real||gen) {dist['kl_real_to_generated']:.3f} nats")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Classification Accuracy Score (Ravuri & Vinyals 2019)
# ----------------------------------------------------------------------------------------------

def classification_accuracy_score(synthetic_images: np.ndarray, synthetic_labels: np.ndarray,
                                  real_train_images: np.ndarray, real_train_labels: np.ndarray,
                                  real_test_images: np.ndarray, real_test_labels: np.ndarray,
                                  num_classes: int, *, steps: int = DEFAULT_CLASSIFIER_STEPS, seed: int = 0,
                                  real_accuracy: float | None = None) -> dict[str, Any]:
    """Trains the same classifier (architecture, steps, seed) on synthetic data only, on real
    training data, and on both, and tests each on real test data.

    cas: accuracy of the synthetic-only classifier on real test data; real_accuracy: that of
    the real-data one (pass `real_accuracy` to reuse a classifier trained with the same
    settings); real_plus_synthetic: trained on the union. cas / real_accuracy near 1 means the
    synthetic data carries the class information of the real data.
    """
    synthetic_labels = np.asarray(synthetic_labels)
    if synthetic_labels.min() < 0:
        raise ValueError("synthetic labels must all be known (>= 0) for the Classification Accuracy Score")
    t0 = time.perf_counter()
    syn = train_classifier(synthetic_images, synthetic_labels, num_classes, steps=steps, seed=seed)
    out: dict[str, Any] = {"cas": syn.accuracy(real_test_images, real_test_labels)}
    if real_accuracy is None:
        real = train_classifier(real_train_images, real_train_labels, num_classes, steps=steps, seed=seed)
        real_accuracy = real.accuracy(real_test_images, real_test_labels)
    out["real_accuracy"] = float(real_accuracy)
    both = train_classifier(np.concatenate([np.asarray(real_train_images, np.float32),
                                            np.asarray(synthetic_images, np.float32)]),
                            np.concatenate([real_train_labels, synthetic_labels]).astype(np.int32), num_classes,
                            steps=steps, seed=seed)
    out["real_plus_synthetic_accuracy"] = both.accuracy(real_test_images, real_test_labels)
    out["cas_over_real"] = out["cas"] / out["real_accuracy"] if out["real_accuracy"] > 0 else None
    out.update({"num_synthetic": int(len(synthetic_labels)), "num_real_train": int(len(real_train_labels)),
                "num_real_test": int(len(real_test_labels)), "steps": int(steps), "seed": int(seed),
                "seconds": time.perf_counter() - t0})
    return out
