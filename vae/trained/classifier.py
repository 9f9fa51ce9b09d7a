"""The dataset classifier: a small convnet trained on a run's own training split, cached in
RUN_DIR/classifier/. Its penultimate features are the feature space of the sample-quality
metrics (`vae.metrics.sample_quality`), and its predictions label an unconditional model's
samples (`vae.synthesis`). No weights come from the internet.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

from vae import data as vdata
from vae.models.classifier_net import DEFAULT_CHANNELS, DEFAULT_HIDDEN, ConvClassifier
from vae.trained.inference import batched_map, cached_jit
from vae.version import __version__

DEFAULT_CLASSIFIER_STEPS = 1500
CLASSIFIER_DIR = "classifier"


def _apply_fn(module: ConvClassifier):
    """One jitted forward pass per architecture, shared by every classifier of that architecture."""
    return cached_jit(ConvClassifier, (module.num_classes, module.channels, module.hidden),
                      lambda: (lambda p, x: module.apply({"params": p}, x)))


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
        return batched_map(self._apply, (images,), batch_size=self.batch_size, pad="batch", args=(self.params,))

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
    (images of at least 16 pixels a side). (Training time on 2 CPU cores: benchmarks/NOTES.md.)
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


def real_images(dataset) -> tuple[np.ndarray, np.ndarray | None]:
    """A split's intensities in [0, 1] and labels (the classifier never sees binarized images)."""
    return np.asarray(dataset.images, np.float32), dataset.labels


def load_train_split(run):
    cfg = run.config.data
    return vdata.load_split(cfg, cfg.train_split)


def labelled_classes(run) -> int:
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
    """The dataset classifier of a run (a `vae.trained.LoadedRun`, or anything with its `run_dir`,
    `config`, `model` and `test` split, as `vae.run` passes for DFC-VAE's feature network): read
    from RUN_DIR/classifier/ if it was trained before with these settings, else trained on the
    run's training split (images in [0, 1], not binarized), tested on the run's test split, and
    saved there.
    `info` records dataset, split, steps, seed, train/test accuracy and where it is cached.
    ValueError on vector data (`DatasetInfo.vectors`): the classifier is a conv net on images."""
    if getattr(run.test.info, "vectors", False):
        raise ValueError(f"the dataset classifier (fd_classifier, precision/recall, CAS, balanced synthesis, "
                         f"dfc_vae's features) is a conv net on images, and data.name={run.config.data.name!r} holds "
                         f"vectors, for which there is no built-in classifier")
    num_classes = labelled_classes(run)
    directory = classifier_dir(run, steps, seed)
    if os.path.exists(os.path.join(directory, "classifier.json")):
        try:
            clf = Classifier.load(directory)
            if clf.num_classes == num_classes and clf.image_shape == tuple(run.test.info.image_shape):
                clf.info["cached"] = True
                return clf
        except Exception as err:  # noqa: BLE001 - a damaged cache is retrained
            warnings.warn(f"could not read the cached classifier in {directory} ({err}); training it again")
    train_ds = load_train_split(run)
    x_train, y_train = real_images(train_ds)
    if y_train is None:
        raise ValueError(f"the training split {run.config.data.train_split!r} of {run.config.data.name!r} has no "
                         f"labels")
    if verbose:
        print(f"vae: training the sample-quality classifier on {run.config.data.name} "
              f"{run.config.data.train_split} ({len(x_train)} images, {steps} steps)", file=sys.stderr)
    info = {"dataset": run.config.data.name, "train_split": run.config.data.train_split,
            "test_split": run.test.split, "architecture": "ConvClassifier"}
    clf = train_classifier(x_train, y_train, num_classes, steps=steps, seed=seed, info=info)
    x_test, y_test = real_images(run.test)
    clf.info["train_accuracy"] = clf.accuracy(x_train, y_train)
    clf.info["test_accuracy"] = clf.accuracy(x_test, y_test)
    clf.info["toolkit_version"] = __version__
    clf.info["cache"] = os.path.relpath(directory, run.run_dir)
    clf.save(directory)
    clf.info["cached"] = False
    return clf
