"""Prepared datasets on disk: array_record files read by row, for data larger than memory.

A prepared dataset is a folder (written by `vae prepare SRC DEST`, see `vae.data.prepare`):

    DEST/dataset.json         format, image shape, stored dtype, value kind, classes, split sizes
    DEST/train.array_record   one record per example: the image's bytes, then its int32 label
    DEST/test.array_record

Each record has a fixed layout: H * W * C values of the stored dtype (uint8 for 8-bit and binary
data, read back as value / 255 exactly as the in-memory path converts them; float32 otherwise),
then 4 bytes of little-endian int32 label when the data have labels. Records are plain bytes
(never pickles). array_record gives random access by row (group_size 1), which is what lets a
batch be any rows in any order and so be the same batch as the in-memory path's.
"""

from __future__ import annotations

import dataclasses
import json
import os

import grain
import numpy as np
from array_record.python.array_record_module import ArrayRecordWriter

from vae.data.base import Dataset, DatasetInfo

FORMAT = "vae-array-record-1"
SPLITS = ("train", "test")


class PreparedDataError(ValueError):
    """A prepared dataset folder that is missing, incomplete or of another format."""


def is_prepared(path: str) -> bool:
    """True when `path` is a folder written by `vae prepare` (it has a dataset.json of this format)."""
    meta = os.path.join(path, "dataset.json")
    if not os.path.isfile(meta):
        return False
    try:
        with open(meta) as f:
            return json.load(f).get("format") == FORMAT
    except (OSError, ValueError):
        return False


def record_path(root: str, split: str) -> str:
    return os.path.join(root, f"{split}.array_record")


class SplitWriter:
    """Appends examples of one split to DEST/<split>.array_record (written under a temporary name,
    renamed on `close`, so an interrupted preparation leaves no half file under the real name)."""

    def __init__(self, root: str, split: str, dtype: np.dtype):
        self.path = record_path(root, split)
        self._tmp = self.path + ".partial"
        self._writer = ArrayRecordWriter(self._tmp, "group_size:1")
        self.dtype = np.dtype(dtype)
        self.count = 0
        self.label_counts: dict[int, int] = {}

    def write(self, images: np.ndarray, labels: np.ndarray | None) -> None:
        """images [n, H, W, C] of this writer's dtype; labels [n] int or None."""
        images = np.ascontiguousarray(images, self.dtype)
        for i in range(images.shape[0]):
            payload = images[i].tobytes()
            if labels is not None:
                label = int(labels[i])
                payload += np.int32(label).astype("<i4").tobytes()
                self.label_counts[label] = self.label_counts.get(label, 0) + 1
            self._writer.write(payload)
        self.count += images.shape[0]

    def close(self) -> None:
        self._writer.close()
        os.replace(self._tmp, self.path)


def write_metadata(root: str, meta: dict) -> None:
    with open(os.path.join(root, "dataset.json"), "w") as f:
        json.dump({"format": FORMAT, **meta}, f, indent=2)


def read_metadata(root: str) -> dict:
    if not is_prepared(root):
        raise PreparedDataError(f"{root} is not a prepared dataset (no dataset.json of format {FORMAT}); "
                                f"write one with: vae prepare SRC {root}")
    with open(os.path.join(root, "dataset.json")) as f:
        return json.load(f)


def dataset_info(meta: dict) -> DatasetInfo:
    """The DatasetInfo of a prepared dataset's metadata."""
    names = tuple(meta.get("class_names") or ())
    return DatasetInfo(name=meta["name"], image_shape=tuple(meta["image_shape"]), num_classes=meta.get("num_classes"),
                       binary=meta["values"] == "binary", values=meta["values"], vectors=bool(meta.get("vectors")),
                       class_names=names, description=meta.get("description", ""))


class RecordSource:
    """Random access to the rows of one split of a prepared dataset.

    `len(source)`; `source[i]` -> (image [H, W, C] float32 as the model sees it, label int);
    `read(indices)` -> (images [n, H, W, C] float32, labels [n] int32). Uses grain's
    ArrayRecordDataSource (thread-safe random access to array_record files)."""

    def __init__(self, root: str, split: str):
        self.meta = read_metadata(root)
        if split not in self.meta["splits"]:
            raise PreparedDataError(f"{root} has no split {split!r}; it has {', '.join(self.meta['splits'])}")
        path = record_path(root, split)
        if not os.path.isfile(path):
            raise PreparedDataError(f"{path} is missing: the preparation did not finish; run vae prepare again")
        self.root, self.split = root, split
        self.shape = tuple(self.meta["image_shape"])
        self.dtype = np.dtype(self.meta["dtype"])
        self.has_labels = bool(self.meta.get("num_classes"))
        self._pixels = int(np.prod(self.shape)) * self.dtype.itemsize
        self._source = grain.sources.ArrayRecordDataSource([path])
        if len(self._source) != self.meta["splits"][split]:
            raise PreparedDataError(f"{path} holds {len(self._source)} records, dataset.json says "
                                    f"{self.meta['splits'][split]}: prepare it again")

    def __len__(self) -> int:
        return len(self._source)

    def _decode(self, record: bytes) -> tuple[np.ndarray, int]:
        x = np.frombuffer(record, self.dtype, count=self._pixels // self.dtype.itemsize).reshape(self.shape)
        label = int(np.frombuffer(record, "<i4", offset=self._pixels)[0]) if self.has_labels else 0
        return x, label

    def read(self, indices) -> tuple[np.ndarray, np.ndarray]:
        """(images [n, H, W, C] float32, labels [n] int32) of the rows `indices`, in that order."""
        indices = [int(i) for i in indices]
        if not indices:
            return np.zeros((0, *self.shape), np.float32), np.zeros((0,), np.int32)
        records = self._source.__getitems__(indices)   # one batched read
        # every record has the same length: decode them all as one [n, bytes] array
        rows = np.frombuffer(b"".join(records), np.uint8).reshape(len(records), -1)
        images = rows[:, :self._pixels].copy().view(self.dtype).reshape(len(records), *self.shape)
        labels = (rows[:, self._pixels:self._pixels + 4].copy().view("<i4")[:, 0].astype(np.int32)
                  if self.has_labels else np.zeros(len(records), np.int32))
        return to_float(images), labels

    def __getitem__(self, i: int):
        x, y = self._decode(self._source[int(i)])
        return to_float(x[None])[0], y


def to_float(x: np.ndarray) -> np.ndarray:
    """Stored values as the model sees them: uint8 / 255 (as the in-memory loaders convert), float32 as is."""
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


def load_prepared(root: str, split: str) -> Dataset:
    """A whole split of a prepared dataset in memory (the test split for evaluation, or a
    dataset small enough to hold)."""
    source = RecordSource(root, split)
    images, labels = source.read(range(len(source)))
    return Dataset(info=dataset_info(source.meta), split=split, images=images,
                   labels=labels if source.has_labels else None)


@dataclasses.dataclass(frozen=True)
class StreamedSplit:
    """One split of a prepared dataset that training streams (not held in memory): `info`,
    `len()`, the rows' `source`, and what preparing found about them (`class_counts`,
    `value_range`). `images` and `labels` are None: read rows with `source.read`."""

    info: DatasetInfo
    split: str
    source: RecordSource
    images: None = None
    labels: None = None

    def __len__(self) -> int:
        return len(self.source)

    @property
    def class_counts(self) -> list[int] | None:
        counts = self.source.meta["label_counts"][self.split]
        if not self.info.num_classes:
            return None
        return [int(counts.get(str(k), 0)) for k in range(self.info.num_classes)]

    @property
    def value_range(self) -> tuple[float, float]:
        return tuple(self.source.meta["value_range"])


def streamed_split(root: str, split: str) -> StreamedSplit:
    source = RecordSource(root, split)
    return StreamedSplit(dataset_info(source.meta), split, source)
