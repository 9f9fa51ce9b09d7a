"""The dataset record every loader returns."""

from __future__ import annotations

import dataclasses

import numpy as np


# Datasets that load with no network and nothing prepared (see `vae.data.load`).
OFFLINE_DATASETS = ("mnist5k", "sprites")

# What a dataset's values are (DatasetInfo.values):
#   8bit        levels k/255 in [0, 1]: 8-bit images (uint8 divided by 255, or floats on that grid)
#   binary      every value 0 or 1 (also on the 8-bit grid: levels 0 and 255)
#   continuous  real values off that grid: vectors (any range), float images in [0, 1] that are not 8-bit
VALUE_KINDS = ("8bit", "binary", "continuous")
# How far (in 8-bit levels) a float may sit from k/255 and still count as level k: float32 holds
# k/255 to ~3e-5 levels; float16 to ~0.06 (half its spacing below 1, times 255).
_GRID_TOLERANCE = {np.dtype(np.float16): 0.1}


class DatasetUnavailableError(RuntimeError):
    """A dataset cannot be loaded here (unknown name, not prepared, or no network)."""


def infer_values(x: np.ndarray) -> str:
    """The kind of values of an array of floats (VALUE_KINDS): 'binary' when every value is 0
    or 1, '8bit' when every value is within float precision of a level k/255 in [0, 1] (so
    values stored as float16 count too), else 'continuous'."""
    x = np.asarray(x)
    if x.size == 0:
        return "8bit"
    if np.isin(x, (0, 1)).all():
        return "binary"
    if x.min() < 0 or x.max() > 1:
        return "continuous"
    tol = _GRID_TOLERANCE.get(x.dtype, 1e-3)
    levels = x.astype(np.float64) * 255.0
    return "8bit" if bool(np.all(np.abs(levels - np.round(levels)) <= tol)) else "continuous"


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, independent of the split.

    image_shape: (H, W, C) of one image; (1, 1, D) for vectors.
    num_classes: number of label classes, or None when the dataset has no labels.
    factor_names / factor_sizes: ground-truth generative factors (e.g. sprites), else empty.
    binary: True when every pixel is 0 or 1 already (no binarization needed).
    class_names: the label classes' names where the data names them (your own folders), else empty.
    values: what the values are, one of VALUE_KINDS: '8bit' (levels k/255), 'binary' or
      'continuous'. It decides bits/dim: the 8-bit dequantization offset applies to a density
      on 8-bit (or binary) data only (`vae.models.distributions.bits_per_dim`). None (the
      default): 'binary' when `binary`, else '8bit' (images as the built-in loaders give them).
    vectors: each example is a vector [D] (tabular data, embeddings), held as [1, 1, D] so that
      the MLP networks take it as they take a flattened image; image-only features (conv nets,
      figures, the image classifier, resizing) refuse it.
    """

    name: str
    image_shape: tuple[int, int, int]
    num_classes: int | None = None
    factor_names: tuple[str, ...] = ()
    factor_sizes: tuple[int, ...] = ()
    binary: bool = False
    description: str = ""
    class_names: tuple[str, ...] = ()
    values: str | None = None
    vectors: bool = False

    def __post_init__(self):
        if self.values is None:
            object.__setattr__(self, "values", "binary" if self.binary else "8bit")
        if self.values not in VALUE_KINDS:
            raise ValueError(f"values={self.values!r} is not allowed; choose one of {', '.join(VALUE_KINDS)}")
        if self.binary and self.values != "binary":
            raise ValueError(f"a binary dataset has values 'binary', not {self.values!r}")
        object.__setattr__(self, "binary", self.values == "binary")
        if self.vectors and tuple(self.image_shape[:2]) != (1, 1):
            raise ValueError(f"vectors are held as [1, 1, D], got image_shape {tuple(self.image_shape)}")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One split of a dataset, held in host memory.

    images: [N, H, W, C] float32 in [0, 1]; vectors (info.vectors): [N, 1, 1, D] float32, any values.
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
