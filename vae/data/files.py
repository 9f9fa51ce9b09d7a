"""Your own data as a dataset: a folder of image files, or an `.npz` / `.npy` file of images or vectors.

    data.name=path/to/folder     every file Pillow reads; labels from sub-folder names (sorted,
                                 one class per sub-folder) when the images sit in sub-folders
    data.name=path/to/data.npz   arrays `images` [N, H, W, C] or [N, H, W], or `vectors` [N, D]
                                 (tabular data, embeddings), and optional `labels` [N]
    data.name=path/to/data.npy   an images or vectors array alone

Pixels: uint8 (0..255, divided by 255) or floats in [0, 1]; anything else is refused, as are NaN,
mixed image sizes (unless data.image_size resizes them), unreadable files, an empty folder, labels
that do not match the images, and pickled arrays (read with allow_pickle=False, always).
data.image_size (H, W) resizes once, at load, with Pillow's bilinear filter; data.channels (1 or
3) converts grey and colour; 8-bit images stay on the 8-bit levels (rounded after either).
Vectors: any 2-D array (under `vectors`, or `images`, or in an .npy) is N vectors of D real values,
used as given (cast to float32, never rescaled: a table's columns are not intensities; standardize
them yourself if their scales differ) and held as [N, 1, 1, D]; NaN and Inf are refused, and
data.image_size / data.channels do not apply. They train with model.architecture=mlp and a
Gaussian likelihood (model.likelihood=gaussian, data.binarize=none).
Values (DatasetInfo.values, recorded in config.json): uint8 images are '8bit'; floats '8bit' when
every value is a level k/255, 'binary' when every value is 0 or 1, else 'continuous'; vectors
'binary' or 'continuous'. data.values overrides the inference: `8bit` rounds values in [0, 1] to
the levels, `binary` checks that they are 0 or 1, `continuous` takes them as they are.
Splits: with data.test_path the file at data.name is `train` and the one at data.test_path is
`test`; otherwise a data.test_fraction share is held out as `test` (stratified by label when there
are labels), fixed by data.split_seed whatever the run's seed.
"""

from __future__ import annotations

import dataclasses
import os
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from vae.data.base import VALUE_KINDS, Dataset, DatasetInfo, infer_values

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
ARRAY_KEYS = ("images", "vectors")   # the npz arrays read as data (one of them), besides `labels`


class DataFileError(ValueError):
    """Your data cannot be used as given; the message names the file and what is wrong."""


@dataclasses.dataclass(frozen=True)
class FileOptions:
    """What the loader takes from the config's data section (values: 'auto' or one of VALUE_KINDS)."""

    image_size: tuple[int, int] | None = None
    channels: int | None = None
    test_fraction: float = 0.1
    split_seed: int = 0
    test_path: str | None = None
    values: str = "auto"


class Checked(NamedTuple):
    """Data checked and converted: images [N, H, W, C] (vectors: [N, 1, 1, D]) float32, labels [N]
    int32 or None, how the values were read (for the description), their kind, whether vectors."""

    images: np.ndarray
    labels: np.ndarray | None
    how: str
    values: str
    vectors: bool


def is_file_source(name: str) -> bool:
    """True when data.name points at a folder or an .npz / .npy file (rather than a dataset name)."""
    return name.endswith((".npz", ".npy")) or os.path.isdir(name) or os.sep in name


def _pixels(images: np.ndarray, where: str) -> tuple[np.ndarray, str, str]:
    """images as float32 in [0, 1], how their range was read, and their kind (VALUE_KINDS)."""
    if images.dtype == np.uint8:
        kind = "binary" if np.isin(images, (0, 255)).all() else "8bit"
        return images.astype(np.float32) / 255.0, "uint8 0..255, divided by 255", kind
    if images.dtype == bool:
        return images.astype(np.float32), "boolean {0, 1}", "binary"
    if not np.issubdtype(images.dtype, np.number):
        raise DataFileError(f"{where}: images have dtype {images.dtype}; give uint8 0..255 or floats in [0, 1]")
    given, images = images, images.astype(np.float32)
    bad = ~np.isfinite(images)
    if bad.any():
        raise DataFileError(f"{where}: {int(bad.sum())} pixel values are NaN or infinite")
    lo, hi = float(images.min()), float(images.max())
    if lo < 0 or hi > 1:
        raise DataFileError(f"{where}: pixel values range over [{lo:g}, {hi:g}]; give uint8 0..255 or floats in "
                            f"[0, 1] (divide 0..255 floats by 255), or vectors [N, D] for real-valued data")
    # the kind from the values as stored (float16 holds k/255 less exactly than float32); 8-bit
    # floats are put exactly on the levels, as uint8 / 255 would give them
    kind = infer_values(given if np.issubdtype(given.dtype, np.floating) else images)
    return (_on_levels(images) if kind == "8bit" else images), "float [0, 1]", kind


def _vectors(x: np.ndarray, where: str, opts: FileOptions) -> tuple[np.ndarray, str, str]:
    """[N, D] numbers -> ([N, 1, 1, D] float32 as given, how they were read, their kind)."""
    for key, value in (("image_size", opts.image_size), ("channels", opts.channels)):
        if value is not None:
            raise DataFileError(f"{where}: data.{key}={value!r} applies to images; these are vectors [N, D] of "
                                f"shape {x.shape}: leave data.{key} unset")
    if x.dtype != bool and not np.issubdtype(x.dtype, np.number):
        raise DataFileError(f"{where}: vectors have dtype {x.dtype}; give numbers")
    x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise DataFileError(f"{where}: {int(bad.sum())} values of the vectors are NaN or infinite (rows "
                            f"{', '.join(map(str, rows[:5]))}{', ...' if rows.size > 5 else ''}); drop or impute them")
    kind = "binary" if np.isin(x, (0.0, 1.0)).all() else "continuous"
    return x[:, None, None, :], f"vectors [N, {x.shape[1]}] as given (float32)", kind


def _on_levels(x: np.ndarray) -> np.ndarray:
    """Values in [0, 1] rounded to the nearest 8-bit level k/255."""
    return np.round(x * 255.0).astype(np.float32) / np.float32(255.0)


def _with_values(x: np.ndarray, kind: str, how: str, opts: FileOptions, where: str) -> tuple[np.ndarray, str, str]:
    """(x, how, kind) after data.values=opts.values (auto: the inferred `kind`)."""
    if opts.values == "auto" or opts.values == kind:
        return x, how, kind
    if opts.values == "continuous":
        return x, f"{how}; taken as continuous (data.values=continuous)", "continuous"
    lo, hi = float(x.min()), float(x.max())
    if opts.values == "8bit":
        if lo < 0 or hi > 1:
            raise DataFileError(f"{where}: data.values=8bit needs values in [0, 1] (levels k/255), these range over "
                                f"[{lo:g}, {hi:g}]; allowed here: auto, continuous")
        x = _on_levels(x)
        return x, f"{how}; rounded to the 8-bit levels k/255 (data.values=8bit)", infer_values(x)
    off = int((~np.isin(x, (0.0, 1.0))).sum())
    raise DataFileError(f"{where}: data.values=binary needs every value 0 or 1, but {off} are not; binarize "
                        f"images with data.binarize=dynamic|static, or use data.values=auto")


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


def _read_arrays(path: str) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """(the data array, labels or None, its npz key: 'images', 'vectors', or None for an .npy)."""
    try:
        if path.endswith(".npy"):
            return np.load(path, allow_pickle=False), None, None
        with np.load(path, allow_pickle=False) as f:
            keys = [k for k in ARRAY_KEYS if k in f.files]
            if len(keys) > 1:
                raise DataFileError(f"{path} holds both 'images' and 'vectors'; keep the one that is your data")
            if not keys:
                raise DataFileError(f"{path} has no array named 'images' or 'vectors' (it has: "
                                    f"{', '.join(f.files) or 'none'}); save it as np.savez(path, images=..., "
                                    f"labels=...), or np.savez(path, vectors=..., labels=...) for vectors [N, D]")
            return f[keys[0]], (f["labels"] if "labels" in f.files else None), keys[0]
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


def read_image_files(files: list[str], opts: FileOptions, *, shape: tuple | None = None,
                     first: str | None = None) -> np.ndarray:
    """The image files as uint8 [n, H, W, C], converted to data.channels and resized to
    data.image_size by Pillow; every image must come out as `shape` (default: the first's, which
    came from the file `first`)."""
    images = []
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
        if shape is None:
            shape, first = array.shape, path
        elif array.shape != tuple(shape):
            raise DataFileError(f"images differ in size or channels: {first} is {tuple(shape)}, {path} is "
                                f"{array.shape}; set data.image_size (e.g. data.image_size=64,64) to resize them "
                                f"all, and data.channels to convert")
        images.append(array)
    return np.stack(images)


def _read_folder(folder: str, opts: FileOptions) -> tuple[np.ndarray, np.ndarray | None, list[str] | None, str]:
    files, labels, names = _image_files(folder)
    return (read_image_files(files, opts), None if labels is None else np.asarray(labels, np.int32), names,
            "uint8 0..255 image files, divided by 255")


def _read_source(path: str, opts: FileOptions) -> tuple[Checked, list[str] | None]:
    """The data at `path`, checked and converted, and the class names of a folder (else None)."""
    if not os.path.exists(path):
        raise DataFileError(f"data.name={path!r}: no such file or folder")
    if os.path.isdir(path):
        images, labels, names, how = _read_folder(path, opts)
        kind = "binary" if np.isin(images, (0, 255)).all() else "8bit"
        x, how, kind = _with_values(images.astype(np.float32) / 255.0, kind, how, opts, path)
        return Checked(x, labels, how, kind, False), names
    if not path.endswith((".npz", ".npy")):
        raise DataFileError(f"{path}: give a folder of images, an .npz or an .npy file")
    array, labels, key = _read_arrays(path)
    return _checked_arrays(array, labels, path, opts, key=key), None


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


def _checked_arrays(images, labels, where: str, opts: FileOptions, key: str | None = None) -> Checked:
    """Arrays given in memory, checked and converted as a file's are. `key`: the npz array they
    came from ('vectors' must be [N, D]); a 2-D array is vectors whatever its key."""
    images = np.asarray(images)
    vectors = images.ndim == 2
    if images.ndim == 0 or images.shape[0] == 0 or images.ndim > 4 or (key == "vectors" and images.ndim != 2):
        want = "vectors [N, D]" if key == "vectors" else "images [N, H, W, C] or [N, H, W], or vectors [N, D],"
        raise DataFileError(f"{where}: give {want} with N > 0, got shape {images.shape}")
    if vectors:
        images, how, kind = _vectors(images, where, opts)
    else:
        source = images[..., None] if images.ndim == 3 else images
        images, how, kind = _pixels(source, where)
        images = _convert_channels(images, opts.channels, where)
        if opts.image_size is not None:
            images = _resize(images, opts.image_size)
        if kind != "continuous" and (opts.channels is not None or opts.image_size is not None):
            # 8-bit images stay on the 8-bit levels, as Pillow's uint8 resize keeps a folder's
            images = _on_levels(images)
            kind = infer_values(images)
    images, how, kind = _with_values(images, kind, how, opts, where)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (images.shape[0],):
            raise DataFileError(f"{where}: labels have shape {labels.shape} but there are {images.shape[0]} images "
                                f"(labels must be [N])")
        if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
            raise DataFileError(f"{where}: labels must be integers >= 0, got dtype {labels.dtype}, min {labels.min()}")
        labels = labels.astype(np.int32)
    return Checked(images, labels, how, kind, vectors)


def _what(data: Checked) -> str:
    return "values" if data.vectors else "pixels"


def memory_splits(data, opts: FileOptions) -> tuple[tuple[np.ndarray, np.ndarray | None],
                                                     tuple[np.ndarray, np.ndarray | None], str]:
    """In-memory data as (train (x, labels), test (x, labels), description): `data` is images
    [N, H, W(, C)] or vectors [N, D], (x, labels), {'images' or 'vectors': ..., 'labels': ...},
    a `vae.data.Dataset`, or {'train': one of those, 'test': one of those}; without a test part,
    opts.test_fraction is held out as with files. Each x comes back as a file holds it: images
    [N, H, W, C] float32 in [0, 1], vectors [N, D] float32."""
    def parts(d, where) -> Checked:
        if isinstance(d, Dataset):
            x = d.images[:, 0, 0, :] if d.info.vectors else d.images
            return _checked_arrays(x, d.labels, where, opts)
        if isinstance(d, dict):
            keys = [k for k in ARRAY_KEYS if k in d]
            if len(keys) != 1:
                raise DataFileError(f"{where}: a dict of data needs 'images' or 'vectors' (and optional 'labels'), or "
                                    f"'train' and 'test' parts; got keys {', '.join(map(str, d)) or 'none'}")
            return _checked_arrays(d[keys[0]], d.get("labels"), where, opts, key=keys[0])
        if isinstance(d, (tuple, list)):
            if len(d) != 2:
                raise DataFileError(f"{where}: give (images, labels), got a sequence of {len(d)}")
            return _checked_arrays(d[0], d[1], where, opts)
        return _checked_arrays(d, None, where, opts)

    def stored(c: Checked, rows=slice(None)):
        x = c.images[rows]
        return (x[:, 0, 0, :] if c.vectors else x), None if c.labels is None else c.labels[rows]

    if isinstance(data, dict) and "train" in data:
        if "test" not in data:
            raise DataFileError("data: a dict with a 'train' part needs a 'test' part too")
        tr, te = parts(data["train"], "data['train']"), parts(data["test"], "data['test']")
        if tr.vectors != te.vectors or tr.images.shape[1:] != te.images.shape[1:]:
            raise DataFileError(f"data: the train part has shape {tr.images.shape[1:]} per example and the test part "
                                f"{te.images.shape[1:]}; give both parts the same shape")
        return stored(tr), stored(te), f"{_what(tr)}: {tr.how}; train and test given separately"
    c = parts(data, "data")
    test = _held_out(c.labels, c.images.shape[0], opts.test_fraction, opts.split_seed, "data")
    return stored(c, ~test), stored(c, test), (f"{_what(c)}: {c.how}; {opts.test_fraction:g} held out as test"
                                               f"{', stratified by label' if c.labels is not None else ''}, "
                                               f"split_seed {opts.split_seed}")


def load_files(path: str, split: str, opts: FileOptions) -> Dataset:
    """One split ('train' or 'test') of your data at `path` (see the module docstring)."""
    if split not in ("train", "test"):
        raise ValueError(f"split {split!r} of {path}: your own data has the splits 'train' and 'test'")
    if opts.values != "auto" and opts.values not in VALUE_KINDS:
        raise DataFileError(f"data.values={opts.values!r} is not allowed; choose auto, {', '.join(VALUE_KINDS)}")
    if opts.test_path is not None:
        source = path if split == "train" else opts.test_path
        data, names = _read_source(source, opts)
        how = f"{split}: all of {source}"
    else:
        if not 0 < opts.test_fraction < 1:
            raise DataFileError(f"data.test_fraction={opts.test_fraction} must be in (0, 1) (or give data.test_path)")
        data, names = _read_source(path, opts)
        test = _held_out(data.labels, data.images.shape[0], opts.test_fraction, opts.split_seed, path)
        keep = test if split == "test" else ~test
        data = data._replace(images=data.images[keep], labels=None if data.labels is None else data.labels[keep])
        how = (f"{split}: {int(keep.sum())} of {keep.size} rows ({opts.test_fraction:g} held out as test"
               f"{', stratified by label' if data.labels is not None else ''}, split_seed {opts.split_seed})")
    labels = data.labels
    num_classes = None if labels is None else int(max(labels.max() + 1, len(names or ())))
    info = DatasetInfo(name=os.path.abspath(path), image_shape=tuple(int(s) for s in data.images.shape[1:]),
                       num_classes=num_classes, values=data.values, vectors=data.vectors,
                       description=f"your data from {os.path.abspath(path)}; {_what(data)}: {data.how}; {how}",
                       class_names=tuple(names or ()))
    return Dataset(info, split, data.images, labels)
