"""Reading a prepared TFDS split (a random-access data source) into a numpy `Dataset`: images
scaled to float32 [0, 1], integer labels and the `label_*` ground-truth factors (see
`vae.data.tfds_source`)."""

from __future__ import annotations

import logging

import numpy as np

from vae.data.base import Dataset, DatasetInfo, DatasetUnavailableError, infer_values

# Datasets whose integer pixels are already 0/1 (also detected from the data).
BINARY_DATASETS = frozenset({"binarized_mnist"})
_READ_CHUNK = 4096


def _image_feature(tfds, features) -> tuple[str, object]:
    keys = list(features.keys())
    image_types = (tfds.features.Image,)
    if "image" in features and isinstance(features["image"], image_types + (tfds.features.Tensor,)):
        return "image", features["image"]
    for key in keys:
        if isinstance(features[key], image_types):
            return key, features[key]
    raise DatasetUnavailableError(
        f"no image feature in this TFDS dataset (features: {', '.join(keys)}); load_tfds reads image datasets"
    )


def _to_dataset(tfds, builder, name: str, split: str, source, root: str) -> Dataset:
    info = builder.info
    features = info.features
    try:
        image_key, image_feature = _image_feature(tfds, features)
    except DatasetUnavailableError as err:
        raise DatasetUnavailableError(f"TFDS dataset {name!r}: {err}") from None
    shape = tuple(image_feature.shape)
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) != 3 or any(d is None for d in shape):
        raise DatasetUnavailableError(
            f"TFDS dataset {name!r}: images of shape {tuple(image_feature.shape)} (variable size or not "
            "[H, W, C]) cannot be stacked into [N, H, W, C]; load_tfds needs fixed-size images"
        )
    h, w, c = (int(d) for d in shape)

    class_label = tfds.features.ClassLabel
    label_key = "label" if "label" in features and _is_scalar_int(features["label"]) else None
    num_classes = None
    if label_key and isinstance(features[label_key], class_label):
        num_classes = int(features[label_key].num_classes)
    # ground-truth factors (dsprites, shapes3d): the scalar ClassLabel features label_<factor>, in
    # sorted order like TFDS's own (feature order read back from a prepared dir is not stable)
    factor_keys = sorted(k for k in features.keys()
                         if k.startswith("label_") and isinstance(features[k], class_label)
                         and tuple(features[k].shape) == ())

    n = len(source)
    images = np.empty((n, h, w, c), np.float32)
    labels = np.empty((n,), np.int32) if label_key else None
    factors = np.empty((n, len(factor_keys)), np.int32) if factor_keys else None
    raw_dtype = np.dtype(getattr(image_feature, "np_dtype", None) or np.uint8)
    raw_max = 0.0
    get_many = getattr(source, "__getitems__", None)
    absl_log = logging.getLogger("absl")
    absl_log.addFilter(_quiet_opencv_hint)
    try:
        for start in range(0, n, _READ_CHUNK):
            keys = list(range(start, min(n, start + _READ_CHUNK)))
            records = get_many(keys) if get_many else [source[i] for i in keys]
            block = np.stack([np.asarray(r[image_key]) for r in records]).reshape(len(keys), h, w, c)
            raw_dtype = block.dtype
            if block.size:
                raw_max = max(raw_max, float(block.max()))
            images[start : start + len(keys)] = block
            if labels is not None:
                labels[start : start + len(keys)] = [r[label_key] for r in records]
            if factors is not None:
                factors[start : start + len(keys)] = [[r[k] for k in factor_keys] for r in records]
    finally:
        absl_log.removeFilter(_quiet_opencv_hint)

    binary = builder.name in BINARY_DATASETS
    values = "8bit"   # uint8 images: levels k/255
    if raw_dtype == np.bool_:
        binary = True
    elif np.issubdtype(raw_dtype, np.integer):
        binary = binary or (n > 0 and raw_max <= 1)
        if not binary:
            scale = 255.0 if raw_dtype.itemsize == 1 else float(np.iinfo(raw_dtype).max)
            np.divide(images, np.float32(scale), out=images)
            # 16-bit levels k/65535 are not the 8-bit grid: no 8-bit offset in their bits/dim
            values = "8bit" if raw_dtype.itemsize == 1 else "continuous"
    else:  # float images: [0, 1] already, or [0, 255]
        if raw_max > 1.0:
            np.divide(images, np.float32(255.0), out=images)
        np.clip(images, 0.0, 1.0, out=images)
        binary = binary or bool(n > 0 and np.all((images == 0) | (images == 1)))
        values = infer_values(images)

    display = builder.name + (f"/{builder.builder_config.name}" if builder.builder_config else "")
    summary = next((line.strip() for line in (info.description or "").splitlines() if line.strip()), "")
    description = f"TFDS {info.full_name} (array_record in {root})" + (f": {summary}" if summary else "")
    dataset_info = DatasetInfo(
        name=display,
        image_shape=(h, w, c),
        num_classes=num_classes,
        factor_names=tuple(k[len("label_"):] for k in factor_keys),
        factor_sizes=tuple(int(features[k].num_classes) for k in factor_keys),
        binary=binary,
        description=description,
        values="binary" if binary else values,
    )
    return Dataset(dataset_info, split, images, labels, factors)


def _quiet_opencv_hint(record: logging.LogRecord) -> bool:
    """Drops TFDS's "OpenCV is not installed ... Defaulting to PIL" warning (PIL is fine here)."""
    return not str(record.msg).startswith("OpenCV is not installed")


def _is_scalar_int(feature) -> bool:
    try:
        return tuple(feature.shape) == () and np.issubdtype(np.dtype(feature.np_dtype), np.integer)
    except (AttributeError, TypeError):
        return False
