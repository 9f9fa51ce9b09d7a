"""`vae prepare SRC DEST`: your data (a folder of images, an .npz or .npy) converted to a prepared
dataset of array_record files (`vae.data.records`) that training streams from.

The conversion reads the source a chunk of rows at a time (image files one chunk at a time, an
.npy memory-mapped; an .npz, whose arrays numpy cannot map, is read whole), checks and converts
each chunk as `vae.data.files` does for data in memory (the same errors, the same values), and
splits train / test exactly as training on the source would (data.test_fraction stratified by
label and data.split_seed, or data.test_path), so a run on DEST sees the same images in the same
order as a run on SRC. It writes into DEST.partial and renames it to DEST at the end: an
interrupted preparation leaves nothing under DEST, and an existing DEST is never overwritten
unless asked (and then only when it is itself a prepared dataset).
"""

from __future__ import annotations

import dataclasses
import os
import shutil

import numpy as np

from vae.data.files import (DataFileError, FileOptions, _checked_arrays, _held_out, _image_files, _read_arrays,
                            read_image_files)
from vae.data.records import SPLITS, SplitWriter, is_prepared, write_metadata
from vae.version import __version__

CHUNK = 2048


def _chunks(path: str, opts: FileOptions, chunk: int):
    """(number of rows, labels [N] or None, class names or None, what the rows are, a function
    rows -> (raw array, labels) reading `rows` of the source)."""
    if not os.path.exists(path):
        raise DataFileError(f"{path}: no such file or folder")
    if os.path.isdir(path):
        files, labels, names = _image_files(path)
        labels = None if labels is None else np.asarray(labels, np.int32)
        shape = read_image_files(files[:1], opts).shape[1:]

        def read(rows):
            return read_image_files([files[i] for i in rows], opts, shape=shape, first=files[0]), \
                None if labels is None else labels[rows]
        return len(files), labels, names, None, read
    if not path.endswith((".npz", ".npy")):
        raise DataFileError(f"{path}: give a folder of images, an .npz or an .npy file")
    if path.endswith(".npy"):
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as err:
            raise DataFileError(f"{path} cannot be read as a numpy array (pickles are never loaded): {err}") from None
        key, labels = None, None
    else:
        array, labels, key = _read_arrays(path)
    if array.ndim == 0 or array.shape[0] == 0:
        raise DataFileError(f"{path}: give images [N, H, W(, C)] or vectors [N, D] with N > 0, got shape "
                            f"{array.shape}")
    if labels is not None and np.shape(labels) != (array.shape[0],):
        raise DataFileError(f"{path}: labels have shape {np.shape(labels)} but there are {array.shape[0]} rows "
                            f"(labels must be [N])")

    def read(rows):
        return np.asarray(array[rows]), None if labels is None else np.asarray(labels)[rows]
    return array.shape[0], None if labels is None else np.asarray(labels), None, key, read


def _combined_values(kinds: set[str], forced: str) -> str:
    if forced != "auto":
        return forced
    if len(kinds) == 1:
        return next(iter(kinds))
    return "8bit" if kinds <= {"8bit", "binary"} else "continuous"


def prepare_dataset(src: str, dest: str, opts: FileOptions = FileOptions(), *, overwrite: bool = False,
                    chunk: int = CHUNK) -> dict:
    """Converts `src` (and opts.test_path) into the prepared dataset `dest`; returns its metadata."""
    dest = os.path.abspath(dest)
    if os.path.exists(dest) and (not os.path.isdir(dest) or os.listdir(dest)):
        if not overwrite:
            raise DataFileError(f"{dest} already exists; choose another DEST, or pass --overwrite to replace a "
                                f"prepared dataset")
        if not is_prepared(dest):
            raise DataFileError(f"{dest} exists and is not a prepared dataset: it is not replaced (remove it "
                                f"yourself if it should go)")
    partial = dest + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    # folder images are read at their final size and channels; don't convert them twice
    inner = {"folder": dataclasses.replace(opts, image_size=None, channels=None), "arrays": opts}
    sources = [("train", src), ("test", opts.test_path)] if opts.test_path else [(None, src)]
    writers, kinds, meta = {}, set(), {"shape": None, "vectors": None, "how": None}
    lo, hi = np.inf, -np.inf
    names = None
    try:
        for split, path in sources:
            n, labels, found_names, key, read = _chunks(path, opts, chunk)
            names = names or found_names
            held = _held_out(labels, n, opts.test_fraction, opts.split_seed, path) if split is None else None
            check = inner["folder" if os.path.isdir(path) else "arrays"]
            for start in range(0, n, chunk):
                rows = np.arange(start, min(start + chunk, n))
                raw, chunk_labels = read(rows)
                where = f"{path} (rows {rows[0]}..{rows[-1]})"
                c = _checked_arrays(raw, chunk_labels, where, check, key=key)
                if meta["shape"] is None:
                    meta.update(shape=c.images.shape[1:], vectors=c.vectors, how=c.how)
                    stored = np.uint8 if raw.dtype in (np.uint8, bool) and not c.vectors else np.float32
                    writers = {s: SplitWriter(partial, s, stored) for s in SPLITS}
                elif c.images.shape[1:] != meta["shape"]:
                    raise DataFileError(f"{where}: rows of shape {c.images.shape[1:]} after rows of shape "
                                        f"{meta['shape']}; every example must have the same shape")
                kinds.add(c.values)
                lo, hi = min(lo, float(c.images.min())), max(hi, float(c.images.max()))
                x = np.round(c.images * 255.0).astype(np.uint8) if writers["train"].dtype == np.uint8 else c.images
                for s in SPLITS:
                    keep = np.ones(rows.size, bool) if split == s else (
                        np.zeros(rows.size, bool) if split is not None else (held[rows] if s == "test"
                                                                             else ~held[rows]))
                    if keep.any():
                        writers[s].write(x[keep], None if c.labels is None else c.labels[keep])
        for w in writers.values():
            w.close()
        counts = {s: writers[s].label_counts for s in SPLITS}
        num_classes = (max(max(c) for c in counts.values() if c) + 1) if any(counts.values()) else None
        if names:
            num_classes = max(num_classes or 0, len(names))
        record = {"name": os.path.basename(os.path.normpath(src)), "source": os.path.abspath(src),
                  "test_source": os.path.abspath(opts.test_path) if opts.test_path else None,
                  "image_shape": [int(s) for s in meta["shape"]], "dtype": writers["train"].dtype.name,
                  "values": _combined_values(kinds, opts.values), "vectors": bool(meta["vectors"]),
                  "value_range": [lo, hi],
                  "num_classes": num_classes, "class_names": list(names or []),
                  "splits": {s: writers[s].count for s in SPLITS},
                  "label_counts": {s: {str(k): v for k, v in sorted(counts[s].items())} for s in SPLITS},
                  "how": meta["how"], "test_fraction": None if opts.test_path else opts.test_fraction,
                  "split_seed": opts.split_seed, "image_size": opts.image_size, "channels": opts.channels,
                  "toolkit_version": __version__}
        record["description"] = (f"prepared from {record['source']} by vae {__version__}: {meta['how']}; "
                                 f"{record['splits']['train']} train, {record['splits']['test']} test rows")
        write_metadata(partial, record)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.replace(partial, dest)
    return record
