"""Your own images as a dataset: a folder of image files, or an `.npz` / `.npy` file.

    data.name=path/to/folder     every file Pillow reads; labels from sub-folder names (sorted,
                                 one class per sub-folder) when the images sit in sub-folders
    data.name=path/to/data.npz   arrays `images` [N, H, W, C] or [N, H, W] and optional `labels` [N]
    data.name=path/to/data.npy   an images array alone

Pixels: uint8 (0..255, divided by 255) or floats in [0, 1]; anything else is refused, as are NaN,
mixed image sizes (unless data.image_size resizes them), unreadable files, an empty folder, labels
that do not match the images, and pickled arrays (read with allow_pickle=False, always).
data.image_size (H, W) resizes once, at load, with Pillow's bilinear filter; data.channels (1 or
3) converts grey and colour. Splits: with data.test_path the file at data.name is `train` and the
one at data.test_path is `test`; otherwise a data.test_fraction share is held out as `test`
(stratified by label when there are labels), fixed by data.split_seed whatever the run's seed.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from vae.data.base import Dataset, DatasetInfo

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class DataFileError(ValueError):
    """Your data cannot be used as given; the message names the file and what is wrong."""


@dataclasses.dataclass(frozen=True)
class FileOptions:
    """What the loader takes from the config's data section."""

    image_size: tuple[int, int] | None = None
    channels: int | None = None
    test_fraction: float = 0.1
    split_seed: int = 0
    test_path: str | None = None


def is_file_source(name: str) -> bool:
    """True when data.name points at a folder or an .npz / .npy file (rather than a dataset name)."""
    return name.endswith((".npz", ".npy")) or os.path.isdir(name) or os.sep in name


def _pixels(images: np.ndarray, where: str) -> tuple[np.ndarray, str]:
    """images as float32 in [0, 1] and how their range was read ('uint8 0..255' or 'float [0, 1]')."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0, "uint8 0..255, divided by 255"
    if images.dtype == bool:
        return images.astype(np.float32), "boolean {0, 1}"
    if not np.issubdtype(images.dtype, np.number):
        raise DataFileError(f"{where}: images have dtype {images.dtype}; give uint8 0..255 or floats in [0, 1]")
    images = images.astype(np.float32)
    bad = ~np.isfinite(images)
    if bad.any():
        raise DataFileError(f"{where}: {int(bad.sum())} pixel values are NaN or infinite")
    lo, hi = float(images.min()), float(images.max())
    if lo < 0 or hi > 1:
        raise DataFileError(f"{where}: pixel values range over [{lo:g}, {hi:g}]; give uint8 0..255 or floats in "
                            f"[0, 1] (divide 0..255 floats by 255)")
    return images, "float [0, 1]"


def _convert_channels(images: np.ndarray, channels: int | None, where: str) -> np.ndarray:
    have = images.shape[-1]
    if channels is None or channels == have:
        return images
    if have == 1 and channels == 3:
        return np.repeat(images, 3, axis=-1)
    if have in (3, 4) and channels == 1:   # ITU-R 601 luma, as Pillow's convert('L')
        return (images[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    raise DataFileError(f"{where}: cannot convert {have} channels to data.channels={channels}")


def _resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[N, H, W, C] float in [0, 1] -> [N, size[0], size[1], C], bilinear (Pillow, per channel)."""
    h, w = size
    if images.shape[1:3] == (h, w):
        return images
    out = np.empty((images.shape[0], h, w, images.shape[-1]), np.float32)
    for i, image in enumerate(images):
        for c in range(image.shape[-1]):
            out[i, :, :, c] = np.asarray(Image.fromarray(image[:, :, c], mode="F").resize((w, h), Image.BILINEAR))
    return np.clip(out, 0.0, 1.0)


def _read_arrays(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        if path.endswith(".npy"):
            return np.load(path, allow_pickle=False), None
        with np.load(path, allow_pickle=False) as f:
            if "images" not in f.files:
                raise DataFileError(f"{path} has no array named 'images' (it has: {', '.join(f.files) or 'none'}); "
                                    f"save it as np.savez(path, images=..., labels=...)")
            return f["images"], (f["labels"] if "labels" in f.files else None)
    except DataFileError:
        raise
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise DataFileError(f"{path} holds pickled objects, which are never loaded (pickles can run code); save "
                                f"plain numeric arrays") from None
        raise DataFileError(f"{path} cannot be read as numpy arrays: {err}") from None
    except (OSError, EOFError) as err:
        raise DataFileError(f"{path} cannot be read: {err}") from None


def _image_files(folder: str) -> tuple[list[str], list[int] | None, list[str] | None]:
    """(files, labels or None, class names or None) of a folder: its image files, or those of its
    sub-folders (one class each, sorted by name)."""
    entries = sorted(os.listdir(folder))
    subdirs = [e for e in entries if os.path.isdir(os.path.join(folder, e)) and not e.startswith(".")]
    files = [e for e in entries if e.lower().endswith(IMAGE_EXTENSIONS)]
    if subdirs and files:
        raise DataFileError(f"{folder} holds both image files ({files[0]}, ...) and sub-folders ({subdirs[0]}, ...): "
                            f"put every image in a class sub-folder, or none")
    if not subdirs:
        if not files:
            raise DataFileError(f"{folder} holds no image files (looked for {', '.join(IMAGE_EXTENSIONS)})")
        return [os.path.join(folder, f) for f in files], None, None
    out, labels = [], []
    for k, sub in enumerate(subdirs):
        found = sorted(f for f in os.listdir(os.path.join(folder, sub)) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not found:
            raise DataFileError(f"class folder {os.path.join(folder, sub)} holds no image files")
        out += [os.path.join(folder, sub, f) for f in found]
        labels += [k] * len(found)
    return out, labels, subdirs


def _read_folder(folder: str, opts: FileOptions) -> tuple[np.ndarray, np.ndarray | None, list[str] | None, str]:
    files, labels, names = _image_files(folder)
    images, first = [], None
    for path in files:
        try:
            with Image.open(path) as im:
                im.load()
                mode = {1: "L", 3: "RGB"}.get(opts.channels or 0) or ("L" if im.mode in ("1", "L", "I;16", "I", "F")
                                                                       else "RGB")
                im = im.convert(mode)
                if opts.image_size is not None:
                    im = im.resize((opts.image_size[1], opts.image_size[0]), Image.BILINEAR)
                array = np.asarray(im, np.uint8)
        except (UnidentifiedImageError, OSError) as err:
            raise DataFileError(f"{path} cannot be read as an image: {err}") from None
        array = array[..., None] if array.ndim == 2 else array
        if first is None:
            first = (path, array.shape)
        elif array.shape != first[1]:
            raise DataFileError(f"images differ in size or channels: {first[0]} is {first[1]}, {path} is "
                                f"{array.shape}; set data.image_size (e.g. data.image_size=64,64) to resize them "
                                f"all, and data.channels to convert")
        images.append(array)
    return (np.stack(images), None if labels is None else np.asarray(labels, np.int32), names,
            "uint8 0..255 image files, divided by 255")


def _read_source(path: str, opts: FileOptions):
    """(images [N, H, W, C] float32 in [0, 1], labels or None, class names or None, pixel range)."""
    if not os.path.exists(path):
        raise DataFileError(f"data.name={path!r}: no such file or folder")
    if os.path.isdir(path):
        images, labels, names, pixel_range = _read_folder(path, opts)
        return images.astype(np.float32) / 255.0, labels, names, pixel_range
    if not path.endswith((".npz", ".npy")):
        raise DataFileError(f"{path}: give a folder of images, an .npz or an .npy file")
    images, labels, pixel_range = _checked_arrays(*_read_arrays(path), path, opts)
    return images, labels, None, pixel_range


def _held_out(labels: np.ndarray | None, n: int, fraction: float, seed: int, where: str) -> np.ndarray:
    """A boolean mask of the rows held out as `test`: round(fraction * n) rows, as near that share of
    each class as rounding allows when there are labels; a function of `seed` alone. DataFileError
    naming `where` when that leaves either split empty."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(n, bool)
    groups = [np.arange(n)] if labels is None else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    quota = fraction * np.array([rows.size for rows in groups], float)
    take = np.floor(quota).astype(int)
    # the rows rounding left over go to the classes with the largest remainders (largest-remainder method)
    extra = int(round(fraction * n)) - int(take.sum())
    take[np.argsort(-(quota - take), kind="stable")[:max(extra, 0)]] += 1
    for rows, k in zip(groups, take):
        mask[rng.permutation(rows)[:k]] = True
    if mask.all() or not mask.any():
        raise DataFileError(f"{where}: {n} images are too few to hold out data.test_fraction={fraction} as a test "
                            f"split")
    return mask


def _checked_arrays(images, labels, where: str, opts: FileOptions):
    """Arrays given in memory, checked and converted as a file's are: (images, labels, pixel range)."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[0] == 0:
        raise DataFileError(f"{where}: images must be [N, H, W, C] or [N, H, W] with N > 0, got shape {images.shape}")
    images, pixel_range = _pixels(images, where)
    images = _convert_channels(images, opts.channels, where)
    if opts.image_size is not None:
        images = _resize(images, opts.image_size)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (images.shape[0],):
            raise DataFileError(f"{where}: labels have shape {labels.shape} but there are {images.shape[0]} images "
                                f"(labels must be [N])")
        if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
            raise DataFileError(f"{where}: labels must be integers >= 0, got dtype {labels.dtype}, min {labels.min()}")
        labels = labels.astype(np.int32)
    return images, labels, pixel_range


def memory_splits(data, opts: FileOptions) -> tuple[tuple[np.ndarray, np.ndarray | None],
                                                     tuple[np.ndarray, np.ndarray | None], str]:
    """In-memory data as (train (images, labels), test (images, labels), description): `data` is
    images [N, H, W(, C)], (images, labels), {'images': ..., 'labels': ...}, a `vae.data.Dataset`,
    or {'train': one of those, 'test': one of those}; without a test part, opts.test_fraction is
    held out as with files."""
    def parts(d, where):
        if isinstance(d, Dataset):
            return _checked_arrays(d.images, d.labels, where, opts)
        if isinstance(d, dict):
            if "images" not in d:
                raise DataFileError(f"{where}: a dict of data needs 'images' (and optional 'labels'), or 'train' and "
                                    f"'test' parts; got keys {', '.join(map(str, d)) or 'none'}")
            return _checked_arrays(d["images"], d.get("labels"), where, opts)
        if isinstance(d, (tuple, list)):
            if len(d) != 2:
                raise DataFileError(f"{where}: give (images, labels), got a sequence of {len(d)}")
            return _checked_arrays(d[0], d[1], where, opts)
        return _checked_arrays(d, None, where, opts)

    if isinstance(data, dict) and "train" in data:
        if "test" not in data:
            raise DataFileError("data: a dict with a 'train' part needs a 'test' part too")
        tr, te = parts(data["train"], "data['train']"), parts(data["test"], "data['test']")
        return tr[:2], te[:2], f"pixels: {tr[2]}; train and test given separately"
    images, labels, pixel_range = parts(data, "data")
    test = _held_out(labels, images.shape[0], opts.test_fraction, opts.split_seed, "data")
    pick = lambda m: (images[m], None if labels is None else labels[m])  # noqa: E731
    return pick(~test), pick(test), (f"pixels: {pixel_range}; {opts.test_fraction:g} held out as test"
                                     f"{', stratified by label' if labels is not None else ''}, split_seed "
                                     f"{opts.split_seed}")


def load_files(path: str, split: str, opts: FileOptions) -> Dataset:
    """One split ('train' or 'test') of your data at `path` (see the module docstring)."""
    if split not in ("train", "test"):
        raise ValueError(f"split {split!r} of {path}: your own data has the splits 'train' and 'test'")
    if opts.test_path is not None:
        source = path if split == "train" else opts.test_path
        images, labels, names, pixel_range = _read_source(source, opts)
        how = f"{split}: all of {source}"
    else:
        if not 0 < opts.test_fraction < 1:
            raise DataFileError(f"data.test_fraction={opts.test_fraction} must be in (0, 1) (or give data.test_path)")
        images, labels, names, pixel_range = _read_source(path, opts)
        test = _held_out(labels, images.shape[0], opts.test_fraction, opts.split_seed, path)
        keep = test if split == "test" else ~test
        images, labels = images[keep], None if labels is None else labels[keep]
        how = (f"{split}: {int(keep.sum())} of {keep.size} rows ({opts.test_fraction:g} held out as test"
               f"{', stratified by label' if labels is not None else ''}, split_seed {opts.split_seed})")
    num_classes = None if labels is None else int(max(labels.max() + 1, len(names or ())))
    info = DatasetInfo(name=os.path.abspath(path), image_shape=tuple(int(s) for s in images.shape[1:]),
                       num_classes=num_classes, binary=bool(np.isin(images, (0.0, 1.0)).all()),
                       description=f"your data from {os.path.abspath(path)}; pixels: {pixel_range}; {how}",
                       class_names=tuple(names or ()))
    return Dataset(info, split, images, labels)
