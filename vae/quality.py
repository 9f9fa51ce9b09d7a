"""Sample quality of a trained run, with no weights from the internet.

Everything is measured in the feature space of a small convnet classifier trained on the run's
own training split (cached in RUN_DIR/classifier/), so the numbers compare runs *of the same
dataset* with each other, not with published numbers:

- `fd_classifier`: the Fréchet distance between Gaussians fitted to classifier features of real
  and generated images (the FID formula, Heusel et al. 2017, but NOT Inception features: do not
  compare it with FID values from papers; it is named `fd_classifier` everywhere for that reason);
- precision and recall for generative models (Kynkäänniemi et al. 2019): k-NN hyperspheres
  around real / generated features;
- the label distribution of generated samples under the classifier against the real one (total
  variation, KL, under-represented classes);
- the Classification Accuracy Score (Ravuri & Vinyals 2019): a fresh classifier trained on
  synthetic data only, tested on real test data, against the same classifier trained on real
  data (and on real + synthetic).

Real images are the dataset's intensities in [0, 1] (not binarized); generated images are
decoder means, as `vae.synthesis` exports them.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
import warnings
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization
from scipy import linalg

# ----------------------------------------------------------------------------------------------
# The classifier
# ----------------------------------------------------------------------------------------------

DEFAULT_CLASSIFIER_STEPS = 1500
DEFAULT_CHANNELS = (32, 64)
DEFAULT_HIDDEN = 128
CLASSIFIER_DIR = "classifier"


class ConvClassifier(nn.Module):
    """Average pooling down to at most 32x32, then one stride-2 3x3 conv + ReLU per entry of
    `channels`, a dense ReLU layer of `hidden` units (the features), and a linear layer to the
    class logits.
    __call__(x [N, H, W, C]) -> (logits [N, num_classes], features [N, hidden])."""

    num_classes: int
    channels: tuple[int, ...] = DEFAULT_CHANNELS
    hidden: int = DEFAULT_HIDDEN

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        while x.shape[1] > 32 and x.shape[2] > 32:  # large images: average down to at most 32x32 first
            x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        for c in self.channels:
            stride = 2 if x.shape[1] >= 8 and x.shape[2] >= 8 else 1
            x = nn.relu(nn.Conv(c, (3, 3), strides=(stride, stride))(x))
        x = x.reshape(x.shape[0], -1)
        features = nn.relu(nn.Dense(self.hidden)(x))
        return nn.Dense(self.num_classes)(features), features


_APPLY_CACHE: dict = {}


def _apply_fn(module: ConvClassifier):
    """One jitted forward pass per architecture, shared by every classifier of that architecture."""
    key = (module.num_classes, module.channels, module.hidden)
    if key not in _APPLY_CACHE:
        _APPLY_CACHE[key] = jax.jit(lambda p, x: module.apply({"params": p}, x))
    return _APPLY_CACHE[key]


class Classifier:
    """A trained `ConvClassifier` with batched, jitted inference (one compiled batch shape).

    predict(images) -> labels [N]; features(images) -> [N, hidden] (the penultimate layer);
    logits(images) -> [N, num_classes]; accuracy(images, labels) -> float.
    info: how it was trained (data, steps, seed, accuracies), recorded with every result.
    """

    def __init__(self, params: Any, num_classes: int, image_shape: tuple[int, ...], *,
                 channels: tuple[int, ...] = DEFAULT_CHANNELS, hidden: int = DEFAULT_HIDDEN,
                 info: dict | None = None, batch_size: int = 256):
        self.params = params
        self.num_classes = int(num_classes)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.channels = tuple(int(c) for c in channels)
        self.hidden = int(hidden)
        self.info = dict(info or {})
        self.batch_size = int(batch_size)
        self.module = ConvClassifier(self.num_classes, self.channels, self.hidden)
        self._apply = _apply_fn(self.module)

    def _outputs(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"the classifier takes images of shape [N, {', '.join(map(str, self.image_shape))}]; "
                             f"got {images.shape}")
        n, bs = images.shape[0], self.batch_size
        logits = np.empty((n, self.num_classes), np.float32)
        feats = np.empty((n, self.hidden), np.float32)
        for start in range(0, n, bs):
            x = images[start:start + bs]
            m = x.shape[0]
            if m < bs:
                x = np.concatenate([x, np.zeros((bs - m, *x.shape[1:]), np.float32)])
            lo, fe = self._apply(self.params, jnp.asarray(x))
            logits[start:start + m] = np.asarray(lo)[:m]
            feats[start:start + m] = np.asarray(fe)[:m]
        return logits, feats

    def logits(self, images: np.ndarray) -> np.ndarray:
        return self._outputs(images)[0]

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self._outputs(images)[0].argmax(axis=1).astype(np.int32)

    def features(self, images: np.ndarray) -> np.ndarray:
        return self._outputs(images)[1]

    def predict_and_features(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, feats = self._outputs(images)
        return logits.argmax(axis=1).astype(np.int32), feats

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        if len(images) == 0:
            raise ValueError("accuracy of an empty set of images")
        return float(np.mean(self.predict(images) == np.asarray(labels)))

    # -- persistence: params as msgpack bytes, settings as JSON --
    def save(self, directory: str) -> str:
        """Writes directory/params.msgpack and directory/classifier.json (atomically, each)."""
        os.makedirs(directory, exist_ok=True)
        meta = {"num_classes": self.num_classes, "image_shape": list(self.image_shape),
                "channels": list(self.channels), "hidden": self.hidden, "info": self.info}
        params_path = os.path.join(directory, "params.msgpack")
        _atomic_write(params_path, serialization.msgpack_serialize(jax.device_get(self.params)))
        _atomic_write(os.path.join(directory, "classifier.json"), json.dumps(meta, indent=2).encode())
        return directory

    @classmethod
    def load(cls, directory: str) -> "Classifier":
        with open(os.path.join(directory, "classifier.json")) as f:
            meta = json.load(f)
        with open(os.path.join(directory, "params.msgpack"), "rb") as f:
            params = serialization.msgpack_restore(f.read())
        params = jax.tree_util.tree_map(jnp.asarray, params)
        return cls(params, meta["num_classes"], tuple(meta["image_shape"]), channels=tuple(meta["channels"]),
                   hidden=meta["hidden"], info=meta.get("info", {}))


def _atomic_write(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _random_shift(key: jax.Array, x: jax.Array, max_shift: int) -> jax.Array:
    """Translates each image by up to `max_shift` pixels in each direction (edge-padded)."""
    n, h, w, _ = x.shape
    padded = jnp.pad(x, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)), mode="edge")
    offsets = jax.random.randint(key, (n, 2), 0, 2 * max_shift + 1)

    def crop(img, off):
        return jax.lax.dynamic_slice(img, (off[0], off[1], 0), (h, w, img.shape[-1]))

    return jax.vmap(crop)(padded, offsets)


def train_classifier(images: np.ndarray, labels: np.ndarray, num_classes: int, *,
                     steps: int = DEFAULT_CLASSIFIER_STEPS, batch_size: int = 128, learning_rate: float = 2e-3,
                     weight_decay: float = 1e-4, augment: bool = True, seed: int = 0,
                     channels: tuple[int, ...] = DEFAULT_CHANNELS, hidden: int = DEFAULT_HIDDEN,
                     info: dict | None = None) -> Classifier:
    """Trains a `ConvClassifier` with AdamW (warm-up + cosine decay) and one jitted step.

    images: [N, H, W, C] float in [0, 1]; labels: [N] ints in [0, num_classes).
    Batches are drawn with replacement on device; `augment` shifts images by up to 2 pixels
    (images of at least 16 pixels a side). ~1-2 minutes for 1,500 steps on mnist5k on 2 CPU cores.
    """
    images = np.asarray(images, np.float32)
    labels = np.asarray(labels)
    if images.ndim != 4:
        raise ValueError(f"images must be [N, H, W, C], got shape {images.shape}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must be [N] = [{images.shape[0]}], got shape {labels.shape}")
    if images.shape[0] == 0:
        raise ValueError("no images to train the classifier on")
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes} must be >= 2")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes}); got [{labels.min()}, {labels.max()}]")
    if steps < 1:
        raise ValueError(f"steps={steps} must be >= 1")
    t0 = time.perf_counter()
    n, shape = images.shape[0], tuple(images.shape[1:])
    module = ConvClassifier(int(num_classes), tuple(channels), int(hidden))
    init_key, data_key = jax.random.split(jax.random.PRNGKey(seed))
    params = module.init(init_key, jnp.zeros((1, *shape), jnp.float32))["params"]
    warmup = min(100, max(steps // 10, 1))
    schedule = optax.warmup_cosine_decay_schedule(0.0, learning_rate, warmup, max(steps, warmup + 1),
                                                  end_value=learning_rate * 0.01)
    optimizer = optax.adamw(schedule, weight_decay=weight_decay)
    opt_state = optimizer.init(params)
    shift = 2 if augment and min(shape[0], shape[1]) >= 16 else 0

    def step_fn(params, opt_state, x_all, y_all, step):
        k_idx, k_aug = jax.random.split(jax.random.fold_in(data_key, step))
        idx = jax.random.randint(k_idx, (batch_size,), 0, n)
        x, y = x_all[idx], y_all[idx]
        if shift:
            x = _random_shift(k_aug, x, shift)

        def loss_fn(p):
            logits, _ = module.apply({"params": p}, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    step_jit = jax.jit(step_fn, donate_argnums=(0, 1))
    x_all, y_all = jnp.asarray(images), jnp.asarray(labels.astype(np.int32))
    loss = None
    for step in range(steps):
        params, opt_state, loss = step_jit(params, opt_state, x_all, y_all, jnp.asarray(step, jnp.int32))
    info = {**(info or {}), "steps": int(steps), "batch_size": int(batch_size), "learning_rate": learning_rate,
            "weight_decay": weight_decay, "augment_shift": shift, "seed": int(seed), "num_train": int(n),
            "final_loss": float(loss), "train_seconds": time.perf_counter() - t0}
    return Classifier(params, num_classes, shape, channels=channels, hidden=hidden, info=info)


def _real_images(dataset) -> tuple[np.ndarray, np.ndarray | None]:
    """A split's intensities in [0, 1] and labels (the classifier never sees binarized images)."""
    return np.asarray(dataset.images, np.float32), dataset.labels


def _load_train_split(run):
    from vae import data as vdata

    cfg = run.config.data
    return vdata.load(cfg.name, cfg.train_split, data_dir=cfg.data_dir)


def _num_classes(run) -> int:
    n = getattr(run.model, "num_classes", 0) or run.test.info.num_classes
    if not n or run.test.labels is None:
        raise ValueError(f"dataset {run.config.data.name!r} has no labels; the sample-quality classifier and "
                         f"balanced synthesis need a labelled dataset")
    return int(n)


def classifier_dir(run, steps: int = DEFAULT_CLASSIFIER_STEPS, seed: int = 0) -> str:
    """RUN_DIR/classifier/<dataset>__<train split>__steps<S>_seed<K>: one cached classifier per
    dataset, training split and training settings."""
    cfg = run.config.data
    split = re.sub(r"[^A-Za-z0-9]+", "_", cfg.train_split).strip("_")
    name = re.sub(r"[^A-Za-z0-9.]+", "_", cfg.name).strip("_")
    return os.path.join(run.run_dir, CLASSIFIER_DIR, f"{name}__{split}__steps{steps}_seed{seed}")


def load_or_train_classifier(run, *, steps: int = DEFAULT_CLASSIFIER_STEPS, seed: int = 0,
                             verbose: bool = False) -> Classifier:
    """The dataset classifier of a run (`vae.run.LoadedRun`): read from RUN_DIR/classifier/ if it
    was trained before with these settings, else trained on the run's training split (images
    in [0, 1], not binarized), tested on the run's test split, and saved there.
    `info` records dataset, split, steps, seed, train/test accuracy and where it is cached."""
    num_classes = _num_classes(run)
    directory = classifier_dir(run, steps, seed)
    if os.path.exists(os.path.join(directory, "classifier.json")):
        try:
            clf = Classifier.load(directory)
            if clf.num_classes == num_classes and clf.image_shape == tuple(run.test.info.image_shape):
                clf.info["cached"] = True
                return clf
        except Exception as err:  # noqa: BLE001 - a damaged cache is retrained
            warnings.warn(f"could not read the cached classifier in {directory} ({err}); training it again")
    train_ds = _load_train_split(run)
    x_train, y_train = _real_images(train_ds)
    if y_train is None:
        raise ValueError(f"the training split {run.config.data.train_split!r} of {run.config.data.name!r} has no "
                         f"labels")
    if verbose:
        print(f"vae: training the sample-quality classifier on {run.config.data.name} "
              f"{run.config.data.train_split} ({len(x_train)} images, {steps} steps)", file=sys.stderr)
    info = {"dataset": run.config.data.name, "train_split": run.config.data.train_split,
            "test_split": run.test.split, "architecture": "ConvClassifier"}
    clf = train_classifier(x_train, y_train, num_classes, steps=steps, seed=seed, info=info)
    x_test, y_test = _real_images(run.test)
    clf.info["train_accuracy"] = clf.accuracy(x_train, y_train)
    clf.info["test_accuracy"] = clf.accuracy(x_test, y_test)
    import vae

    clf.info["toolkit_version"] = vae.__version__
    clf.info["cache"] = os.path.relpath(directory, run.run_dir)
    clf.save(directory)
    clf.info["cached"] = False
    return clf


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


# ----------------------------------------------------------------------------------------------
# Everything for a run
# ----------------------------------------------------------------------------------------------

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
                   temperature: float = 1.0, batch_size: int = 500, verbose: bool = False) -> dict[str, Any]:
    """Sample-quality metrics of a loaded run (`vae.run.load_run`), as a JSON-able dict.

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
    A baseline row compares real training images with the real reference the same way, so the
    numbers can be read against real-vs-real (the classifier has seen the training images, so
    the baseline is slightly optimistic).
    """
    from vae.synthesis import generate_arrays

    t_start = time.perf_counter()
    num_classes = _num_classes(run)
    if classifier is None:
        classifier = load_or_train_classifier(run, steps=classifier_steps, seed=0, verbose=verbose)
    x_real, y_real = _real_images(run.test)
    n_real = x_real.shape[0]
    num_samples = int(num_samples or n_real)
    if num_samples <= k or n_real <= k:
        raise ValueError(f"need more than k={k} real and generated samples (got {n_real} real, {num_samples} "
                         f"generated)")
    train_ds = _load_train_split(run)
    x_train, y_train = _real_images(train_ds)
    conditional = bool(getattr(run.model, "num_classes", 0))
    rng = np.random.default_rng(seed)
    gen_labels = None
    if conditional:
        freq = np.bincount(y_train, minlength=num_classes)[:num_classes] / len(y_train)
        gen_labels = rng.choice(num_classes, size=num_samples, p=freq).astype(np.int32)
    fake = generate_arrays(run, num_samples, labels=gen_labels, temperature=temperature, seed=seed,
                           batch_size=batch_size)
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
                                  batch_size=batch_size)
            labels_from = "the conditional model's labels (balanced classes)"
        else:
            syn = generate_arrays(run, cas_n, temperature=temperature, seed=seed + 1, batch_size=batch_size)
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




def add_sample_quality_args(parser) -> None:
    """Adds --sample-quality and --sample-quality-samples to `vae evaluate`'s parser."""
    parser.add_argument("--sample-quality", action="store_true",
                        help="fd_classifier (Fréchet distance in the features of a small classifier trained on the "
                             "run's data, not Inception FID), precision/recall, label bias and the Classification "
                             "Accuracy Score of generated samples; the classifier is trained once and cached in "
                             "RUN_DIR/classifier/")
    parser.add_argument("--sample-quality-samples", type=int, default=None, metavar="N",
                        help="generated samples for --sample-quality (default: as many as the split's images)")


__all__ = [
    "ConvClassifier", "Classifier", "train_classifier", "load_or_train_classifier", "classifier_dir",
    "frechet_distance", "gaussian_stats", "fd_classifier", "knn_radii", "precision_recall", "label_distribution",
    "format_label_table", "classification_accuracy_score", "sample_quality", "brief", "add_sample_quality_args",
]
