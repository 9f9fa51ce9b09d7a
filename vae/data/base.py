"""The dataset record every loader returns."""

from __future__ import annotations

import dataclasses

import numpy as np


# Datasets that load with no network and nothing prepared (see `vae.data.load`).
OFFLINE_DATASETS = ("mnist5k", "sprites")


class DatasetUnavailableError(RuntimeError):
    """A dataset cannot be loaded here (unknown name, not prepared, or no network)."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, independent of the split.

    image_shape: (H, W, C) of one image.
    num_classes: number of label classes, or None when the dataset has no labels.
    factor_names / factor_sizes: ground-truth generative factors (e.g. sprites), else empty.
    binary: True when every pixel is 0 or 1 already (no binarization needed).
    class_names: the label classes' names where the data names them (your own folders), else empty.
    """

    name: str
    image_shape: tuple[int, int, int]
    num_classes: int | None = None
    factor_names: tuple[str, ...] = ()
    factor_sizes: tuple[int, ...] = ()
    binary: bool = False
    description: str = ""
    class_names: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One split of a dataset, held in host memory.

    images: [N, H, W, C] float32 in [0, 1].
    labels: [N] int32, or None.
    factors: [N, F] int32 indices into each factor's values, or None.
    """

    info: DatasetInfo
    split: str
    images: np.ndarray
    labels: np.ndarray | None = None
    factors: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __post_init__(self):
        if self.images.ndim != 4:
            raise ValueError(f"images must be [N, H, W, C], got shape {self.images.shape}")
        n = self.images.shape[0]
        for field in ("labels", "factors"):
            value = getattr(self, field)
            if value is not None and value.shape[0] != n:
                raise ValueError(f"{field} has {value.shape[0]} rows but there are {n} images")
