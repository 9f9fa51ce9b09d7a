"""Sample quality of a trained run, with no weights from the internet.

Everything is measured in the feature space of the dataset classifier (a small convnet trained
on the run's own training split, cached in RUN_DIR/classifier/; `vae.trained.classifier`), so
the numbers compare runs *of the same dataset* with each other, not with published numbers:
`fd_classifier` (NOT Inception FID), precision/recall (Kynkäänniemi et al. 2019), the label
distribution of generated samples, and the Classification Accuracy Score (Ravuri & Vinyals
2019); the metrics themselves are in `vae.metrics.sample_quality`.

Real images are the dataset's intensities in [0, 1] (not binarized); generated images are
decoder means, as `vae.synthesis` exports them.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from vae.metrics.sample_quality import (
    classification_accuracy_score,
    fd_classifier,
    format_label_table,
    frechet_distance,
    gaussian_stats,
    knn_radii,
    label_distribution,
    precision_recall,
)
from vae.trained.classifier import (
    DEFAULT_CLASSIFIER_STEPS,
    Classifier,
    ConvClassifier,
    classifier_dir,
    labelled_classes,
    load_or_train_classifier,
    load_train_split,
    real_images,
    train_classifier,
)
from vae.samplers import latent_source
from vae.trained.sampling import generate_arrays


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def sample_quality(run, *, num_samples: int | None = None, seed: int = 0, k: int = 3,
                   classifier_steps: int = DEFAULT_CLASSIFIER_STEPS, classifier: Classifier | None = None,
                   cas: bool = True, cas_steps: int | None = None, cas_samples: int | None = None,
                   temperature: float = 1.0, batch_size: int = 500, sampler: str | None = None,
                   verbose: bool = False) -> dict[str, Any]:
    """Sample-quality metrics of a loaded run (`vae.trained.load_run`), as a JSON-able dict.

    Real reference: the run's evaluation split (`run.test`, intensities in [0, 1]).
    num_samples: generated samples for fd_classifier, precision/recall and the label
      distribution (default: as many as real reference images). A conditional model is given
      labels drawn from the training split's class frequencies.
    classifier: the dataset classifier (default: `load_or_train_classifier(run, steps=classifier_steps)`).
    cas: also the Classification Accuracy Score, with `cas_samples` synthetic images (default:
      as many as the training split has) and a classifier trained for `cas_steps` steps
      (default: the dataset classifier's steps, so that classifier is the real-data baseline).
      Synthetic labels: a conditional model's own labels (balanced classes); for an
      unconditional model, the dataset classifier's predictions on the samples, which makes
      its CAS a distillation of the dataset classifier through the generator, not the CAS of
      Ravuri & Vinyals: it tracks that classifier's accuracy (it can even match or exceed the
      real-data baseline) and mostly drops when classes are missing from the samples.
    sampler: generate from the sampler saved in RUN_DIR/samplers/<sampler>/ instead of the prior
      (None or 'normal': the prior); recorded in settings.
    A baseline row compares real training images with the real reference the same way, so the
    numbers can be read against real-vs-real (the classifier has seen the training images, so
    the baseline is slightly optimistic).
    """
    t_start = time.perf_counter()
    latents, sampler_info = latent_source(run, sampler)
    num_classes = labelled_classes(run)
    if classifier is None:
        classifier = load_or_train_classifier(run, steps=classifier_steps, seed=0, verbose=verbose)
    x_real, y_real = real_images(run.test)
    n_real = x_real.shape[0]
    num_samples = int(num_samples or n_real)
    if num_samples <= k or n_real <= k:
        raise ValueError(f"need more than k={k} real and generated samples (got {n_real} real, {num_samples} "
                         f"generated)")
    train_ds = load_train_split(run)
    x_train, y_train = real_images(train_ds)
    conditional = bool(getattr(run.model, "num_classes", 0))
    rng = np.random.default_rng(seed)
    gen_labels = None
    if conditional:
        freq = np.bincount(y_train, minlength=num_classes)[:num_classes] / len(y_train)
        gen_labels = rng.choice(num_classes, size=num_samples, p=freq).astype(np.int32)
    fake = generate_arrays(run, num_samples, labels=gen_labels, temperature=temperature, seed=seed,
                           batch_size=batch_size, latents=latents)
    real_feat = classifier.features(x_real)
    fake_pred, fake_feat = classifier.predict_and_features(fake)
    n_base = min(n_real, x_train.shape[0])
    base_idx = rng.choice(x_train.shape[0], size=n_base, replace=False)
    base_feat = classifier.features(x_train[base_idx])

    result: dict[str, Any] = {
        "fd_classifier": fd_classifier(real_feat, fake_feat),
        **{k_: v for k_, v in precision_recall(real_feat, fake_feat, k=k).items() if k_ in ("precision", "recall")},
    }
    pr_base = precision_recall(real_feat, base_feat, k=k)
    result["real_baseline"] = {"fd_classifier": fd_classifier(real_feat, base_feat),
                               "precision": pr_base["precision"], "recall": pr_base["recall"],
                               "what": f"{n_base} real training images against the real reference"}
    dist = label_distribution(y_train, fake_pred, num_classes)
    dist["classifier_on_real_reference"] = np.bincount(classifier.predict(x_real), minlength=num_classes)[
        :num_classes].tolist()
    dist["real_is"] = f"true labels of the training split {run.config.data.train_split!r}"
    dist["generated_is"] = "dataset classifier's predictions on the generated samples"
    result["label_distribution"] = dist
    if conditional:
        result["label_consistency"] = float(np.mean(fake_pred == gen_labels))
    if cas:
        cas_steps = int(cas_steps or classifier.info.get("steps") or classifier_steps)
        cas_n = int(cas_samples or x_train.shape[0])
        if conditional:
            syn_labels = (np.arange(cas_n) % num_classes).astype(np.int32)
            syn = generate_arrays(run, cas_n, labels=syn_labels, temperature=temperature, seed=seed + 1,
                                  batch_size=batch_size, latents=latents)
            labels_from = "the conditional model's labels (balanced classes)"
        else:
            syn = generate_arrays(run, cas_n, temperature=temperature, seed=seed + 1, batch_size=batch_size,
                                  latents=latents)
            syn_labels = classifier.predict(syn)
            labels_from = ("the dataset classifier's predictions (unconditional model): a distillation of that "
                           "classifier through the generator, bounded by its accuracy")
        reuse = cas_steps == classifier.info.get("steps") \
            and "test_accuracy" in classifier.info
        result["cas"] = classification_accuracy_score(
            syn, syn_labels, x_train, y_train, x_real, y_real, num_classes, steps=cas_steps, seed=seed,
            real_accuracy=classifier.info["test_accuracy"] if reuse else None)
        result["cas"]["labels_from"] = labels_from
        result["cas"]["real_accuracy_from"] = "the dataset classifier" if reuse else "a classifier trained here"
    result["settings"] = {
        "num_generated": num_samples, "num_real": int(n_real), "real_split": run.test.split, "k": int(k),
        "seed": int(seed), "temperature": float(temperature), "checkpoint_step": int(run.step),
        "sampler": sampler_info,
        "generated_labels": "drawn from the training class frequencies" if conditional else "none (prior samples)",
        "images": "generated: decoder means; real: dataset intensities in [0, 1] (not binarized)",
        "classifier": {kk: v for kk, v in classifier.info.items()
                       if kk in ("dataset", "train_split", "steps", "seed", "train_accuracy", "test_accuracy",
                                 "cache", "cached", "num_train", "train_seconds")},
        "features": f"penultimate layer of the dataset classifier ({classifier.hidden} ReLU units)",
        "fd_classifier_is": "Fréchet distance in this classifier's feature space, not Inception FID",
    }
    result["seconds"] = time.perf_counter() - t_start
    return _jsonable(result)


def brief(quality: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of `sample_quality` (for the command line)."""
    out = {"fd_classifier": quality["fd_classifier"], "precision": quality["precision"], "recall": quality["recall"],
           "label_tv": quality["label_distribution"]["total_variation"],
           "under_represented": quality["label_distribution"]["under_represented"]}
    if "cas" in quality:
        out["cas"] = quality["cas"]["cas"]
        out["cas_real_accuracy"] = quality["cas"]["real_accuracy"]
    return out




__all__ = [
    "ConvClassifier", "Classifier", "train_classifier", "load_or_train_classifier", "classifier_dir",
    "frechet_distance", "gaussian_stats", "fd_classifier", "knn_radii", "precision_recall", "label_distribution",
    "format_label_table", "classification_accuracy_score", "sample_quality", "brief",
]
