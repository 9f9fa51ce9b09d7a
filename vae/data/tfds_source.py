"""Any tensorflow-datasets image dataset as numpy, without TensorFlow.

`load_tfds(name, split)` reads a TFDS dataset that is prepared in the array_record format
through TFDS's random-access data source (`builder.as_data_source`, backed by the
`array_record` package) and returns a `Dataset`: images float32 in [0, 1], [N, H, W, C];
labels int32 [N] when the dataset has a `label` feature; and, for datasets with ground-truth
factors (dsprites, shapes3d), the `label_*` ClassLabel features as `factors` int32 [N, F] in
sorted name order, e.g. dsprites: orientation, scale, shape, x_position, y_position (the float
`value_*` features are not read: `Dataset.factors` holds class indices).

When the dataset is not prepared and `download=True`, it is downloaded and prepared once
with `builder.download_and_prepare(file_format="array_record")`.

Failing fast offline. TFDS's downloader opens every URL through a `requests` session with
`urllib3.Retry(total=10, backoff_factor=0.2)`; without network each attempt fails at once
(DNS), but urllib3 sleeps 0.2 * 2**(k-1) s between attempts: 0.4 + 0.8 + ... + 102.4 =
204.4 s before `tfds.load("mnist")` raises. So before preparing anything this module checks
whether the dataset is prepared (`dataset_info.json` in `builder.data_dir`, a local file
check); if not, it probes the hosts of the dataset's download URLs (from the builder's
registered checksums, or storage.googleapis.com when it has none) with one HTTP HEAD each,
without retries, at most `PROBE_TIMEOUT_S` seconds, through the proxy like TFDS's own
session. No answer, or a 5xx (which TFDS would retry too) -> `DatasetUnavailableError` within
seconds. TFDS's gs://tfds-data lookups (dataset_info from the bucket at builder construction,
prepared-data downloads) are switched off (`gcs_utils._is_gcs_disabled`, already the default
in tensorflow-datasets 4.9.10) and `DownloadConfig(try_download_gcs=False)` is passed.

What needs TensorFlow (none of it is a requirement of this toolkit):
* reading data prepared in the tfrecord format (TFDS's default): a clear error says so;
* generating most of TFDS's own datasets: their generation code reads the downloads with
  `tf.io.gfile` (mnist, fashion_mnist, cifar10, binarized_mnist), TFDS's extractor
  (.gz/.tar) and its >1 GB shuffle buffer use `tf.io.gfile`, and `tfds.features.Image` encodes
  numpy images with `tf.image.encode_png`. This module swaps the last one for PIL while it
  prepares a dataset, so builders that do not use the others (dsprites, shapes3d with
  `h5py` installed, your own builders) prepare without TF; for the rest the error tells to
  prepare once where TensorFlow is installed (`tfds build NAME --file_format=array_record`)
  and read the result here.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import re
import socket
import threading
import time
import urllib.parse

import numpy as np

from vae.data.base import OFFLINE_DATASETS, Dataset, DatasetInfo, DatasetUnavailableError

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 3.0
# Probed when a builder records no download URLs (most TFDS data is hosted there).
FALLBACK_DOWNLOAD_HOST = "https://storage.googleapis.com/"
# Datasets whose integer pixels are already 0/1 (also detected from the data).
BINARY_DATASETS = frozenset({"binarized_mnist"})
_READ_CHUNK = 4096
_MAX_PROBED_HOSTS = 8


def load_tfds(name: str, split: str, data_dir: str | None = None, download: bool = True) -> Dataset:
    """Loads one split of a TFDS image dataset as numpy, without TensorFlow.

    name: a TFDS name, optionally with config and version ('mnist', 'mnist:3.*.*', ...).
    split: a TFDS split string, slices included ('train', 'test', 'train[:1000]', 'train[:10%]').
    data_dir: TFDS data directory (None: TFDS's default, $TFDS_DATA_DIR or ~/tensorflow_datasets).
    download: whether to download and prepare the dataset when it is not prepared in data_dir.

    Raises DatasetUnavailableError (within seconds offline) when the dataset is unknown, not
    prepared and not downloadable, or prepared in a format that needs TensorFlow; ValueError
    for a split TFDS does not understand.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:  # pragma: no cover - tensorflow-datasets is a dependency
        raise DatasetUnavailableError(
            f"TFDS dataset {name!r} needs the tensorflow-datasets package (pip install tensorflow-datasets): {err}"
            + _advice(name, None)
        ) from err

    root = _data_dir_root(tfds, data_dir)
    with _gcs_disabled():
        builder = _make_builder(tfds, name, data_dir, root)
        if not _is_prepared(builder):
            if not download:
                raise DatasetUnavailableError(
                    f"TFDS dataset {name!r} is not prepared in the TFDS data dir {root} "
                    f"(no {_info_file(builder)}) and download=False." + _advice(name, root)
                )
            _download_and_prepare(tfds, builder, name, root)
    _check_random_access(builder, name, root)
    try:
        source = builder.as_data_source(split=split)
    except ImportError as err:
        raise DatasetUnavailableError(
            f"reading TFDS dataset {name!r} needs a package that is missing: {err} "
            "(array_record reading needs `pip install array_record`)." + _advice(name, root)
        ) from err
    except (ValueError, KeyError) as err:
        raise ValueError(
            f"{name}: split {split!r} is not understood: {err} "
            f"(splits: {', '.join(builder.info.splits.keys())}; slices like 'train[:1000]' or 'train[:10%]')"
        ) from err
    return _to_dataset(tfds, builder, name, split, source, root)


# --- finding and preparing the builder ------------------------------------------------


def _data_dir_root(tfds, data_dir: str | None) -> str:
    if data_dir:
        return os.path.expanduser(os.fspath(data_dir))
    return os.fspath(tfds.core.constants.DATA_DIR)


@contextlib.contextmanager
def _gcs_disabled():
    """Keeps TFDS away from gs://tfds-data (dataset_info and prepared-data lookups)."""
    try:
        from tensorflow_datasets.core.utils import gcs_utils
    except ImportError:  # pragma: no cover - layout of other TFDS versions
        yield
        return
    previous = getattr(gcs_utils, "_is_gcs_disabled", None)
    gcs_utils._is_gcs_disabled = True
    try:
        yield
    finally:
        if previous is not None:
            gcs_utils._is_gcs_disabled = previous


def _make_builder(tfds, name: str, data_dir: str | None, root: str):
    try:
        return tfds.builder(name, data_dir=data_dir, try_gcs=False)
    except Exception as err:  # DatasetNotFoundError, bad version/config, missing namespace package
        text = str(err)
        first_line = next((line.strip() for line in text.splitlines() if line.strip()), type(err).__name__)
        first_line = first_line.rstrip(".")
        suggestion = re.search(r"Did you mean:?\s*(.+?)\s*\?", text)
        try:
            from tensorflow_datasets.core.registered import DatasetNotFoundError
        except ImportError:  # pragma: no cover - layout of other TFDS versions
            DatasetNotFoundError = ()
        not_found = isinstance(err, DatasetNotFoundError)
        what = "unknown TFDS dataset" if not_found else "cannot construct the TFDS builder for"
        message = f"{what} {name!r}: {first_line}"
        if suggestion:
            message += f" (TFDS suggests: {suggestion.group(1)})"
        message += f". Looked in the TFDS data dir {root}."
        raise DatasetUnavailableError(message + _advice(name, root, known=False)) from err


def _info_file(builder) -> str:
    return os.path.join(os.fspath(builder.data_dir), "dataset_info.json")


def _is_prepared(builder) -> bool:
    """Whether dataset_info.json is in builder.data_dir (what builder.is_prepared() checks, quietly)."""
    from etils import epath

    try:
        return epath.Path(_info_file(builder)).exists()
    except Exception:  # e.g. a remote data dir whose filesystem is not installed
        return False


def _download_and_prepare(tfds, builder, name: str, root: str) -> None:
    unreachable = _unreachable_hosts(_download_urls(builder))
    if unreachable:
        raise DatasetUnavailableError(
            f"TFDS dataset {name!r} is not prepared in the TFDS data dir {root} (no {_info_file(builder)}) "
            f"and cannot be downloaded: no connection to {', '.join(unreachable)} "
            f"(offline?)." + _advice(name, root)
        )
    log.info("downloading and preparing TFDS %s into %s (array_record)", name, builder.data_dir)
    config = tfds.download.DownloadConfig(try_download_gcs=False)
    try:
        with _numpy_images_encoded_with_pil():
            builder.download_and_prepare(file_format="array_record", download_config=config)
    except Exception as err:
        missing = _missing_module(err)
        if missing == "tensorflow":
            reason = (
                "TFDS's generation code for this dataset needs TensorFlow (e.g. tf.io.gfile to read the "
                "downloads or to extract archives); reading the prepared array_record data does not. "
                f"Prepare it once where tensorflow is installed: `tfds build {name} --file_format=array_record "
                f"--data_dir {root}` (the downloads in {os.path.join(root, 'downloads')} are reused)"
            )
        elif missing:
            reason = f"preparing it needs the python package {missing!r} (pip install {missing})"
        else:
            reason = f"download_and_prepare failed: {type(err).__name__}: {_first_lines(str(err))}"
        raise DatasetUnavailableError(
            f"TFDS dataset {name!r} could not be prepared in the TFDS data dir {root}: {reason}."
            + _advice(name, root)
        ) from err


def _check_random_access(builder, name: str, root: str) -> None:
    from tensorflow_datasets.core import file_adapters

    info = builder.info
    try:
        formats = set(info.available_file_formats())
    except AttributeError:  # pragma: no cover - older TFDS
        formats = {info.file_format} if info.file_format else set()
    if formats & set(file_adapters.FileFormat.with_random_access()):
        return
    found = ", ".join(sorted(str(getattr(f, "value", f)) for f in formats)) or "tfrecord (TFDS's default)"
    raise DatasetUnavailableError(
        f"TFDS dataset {name!r} is prepared in {builder.data_dir} as {found} only. Reading tfrecord needs "
        "TensorFlow (`pip install tensorflow`), which this toolkit does not use: it reads array_record. "
        f"Re-prepare it with file_format='array_record', e.g. `tfds build {name} --file_format=array_record "
        f"--overwrite --data_dir {root}` (or builder.download_and_prepare(file_format='array_record') into "
        "another data_dir), or convert it where TensorFlow is installed with `tfds convert_format "
        f"--dataset_version_dir={builder.data_dir} --out_file_format=array_record`." + _advice(name, None)
    )


def _advice(name: str, root: str | None, known: bool = True) -> str:
    offline = (f"Datasets that work offline: {', '.join(OFFLINE_DATASETS)} "
               f"(e.g. `--set data.name={OFFLINE_DATASETS[0]}`).")
    if not known:
        return (
            "\nCheck the name against the TFDS catalog (https://www.tensorflow.org/datasets/catalog, "
            "`tfds.list_builders()`), or point at a data dir where it is prepared with "
            f"`--set data.data_dir=DIR`. {offline}"
        )
    where = root or "DIR"
    return (
        f"\nTo use {name!r}: run once with network access (it is then downloaded and prepared as "
        "array_record; for many TFDS datasets that step needs `pip install tensorflow` once, reading "
        f"does not), or prepare it with `tfds build {name} --file_format=array_record --data_dir {where}`, "
        "or point at a data dir where it is prepared with `--set data.data_dir=DIR` "
        f"(DIR/{name.split(':')[0]}/VERSION/dataset_info.json). {offline}"
    )


def _first_lines(text: str, limit: int = 400) -> str:
    text = " ".join(line.strip() for line in text.strip().splitlines()[:4])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _missing_module(err: BaseException) -> str | None:
    """The module a ModuleNotFoundError in err's chain names (TFDS re-raises with a new message)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, ModuleNotFoundError):
            if err.name:
                return err.name.split(".")[0]
            match = re.search(r"No module named '([\w.]+)'", str(err))
            if match:
                return match.group(1).split(".")[0]
        err = err.__cause__ or err.__context__
    return None


# --- probing the download hosts -----------------------------------------------------


def _download_urls(builder) -> list[str]:
    try:
        urls = list(builder.url_infos or ())
    except Exception:  # a missing or malformed checksums file
        urls = []
    return urls or [FALLBACK_DOWNLOAD_HOST]


def _probe(url: str, timeout: float) -> str | None:
    """None when url's server answers the way TFDS's downloader would not retry, else why not.

    An HTTP HEAD without retries, through the environment's proxy like TFDS's requests session.
    Any answer below 500 counts (a 404 fails TFDS's download at once, not after retries); a
    connection error, a timeout or a 5xx is what TFDS retries for 204 s.
    """
    parts = urllib.parse.urlsplit(url)
    try:
        if parts.scheme in ("http", "https"):
            import requests

            response = requests.head(url, timeout=timeout, allow_redirects=False)
            response.close()
            if response.status_code >= 500:
                return f"HTTP {response.status_code}"
        else:
            port = parts.port or {"ftp": 21}.get(parts.scheme, 443)
            with socket.create_connection((parts.hostname, port), timeout=timeout):
                pass
    except Exception as err:  # requests.RequestException, OSError, ...
        return _why(err)
    return None


def _why(err: Exception) -> str:
    text = str(err)
    for pattern, reason in (
        (r"NameResolution|Failed to resolve|Name or service not known|nodename nor servname|getaddrinfo",
         "cannot resolve the host name"),
        (r"Connection refused", "connection refused"),
        (r"timed out|Timeout", "timed out"),
        (r"SSL|CERTIFICATE", "TLS error"),
        (r"Network is unreachable|No route to host", "network unreachable"),
    ):
        if re.search(pattern, text) or re.search(pattern, type(err).__name__):
            return reason
    return f"{type(err).__name__}: {_first_lines(text, 160)}"


def _unreachable_hosts(urls: list[str], timeout: float = PROBE_TIMEOUT_S) -> list[str]:
    """The hosts of urls whose server does not answer within about timeout seconds.

    One URL per scheme://host:port, probed in parallel daemon threads that are abandoned at
    the deadline (requests' timeout does not cover name resolution).
    """
    per_host: dict[str, str] = {}
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        if parts.hostname:
            per_host.setdefault(f"{parts.scheme}://{parts.netloc}", url)
    targets = list(per_host.items())[:_MAX_PROBED_HOSTS]
    results: dict[str, str | None] = {}

    def run(host: str, url: str):
        results[host] = _probe(url, timeout)

    threads = [threading.Thread(target=run, args=target, daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout + 1.0
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    bad = []
    for host, _ in targets:
        if host not in results:
            bad.append(f"{host} (no answer within {timeout:g} s)")
        elif results[host] is not None:
            bad.append(f"{host} ({results[host]})")
    return bad


# --- preparing without TensorFlow ---------------------------------------------------


@contextlib.contextmanager
def _numpy_images_encoded_with_pil():
    """While preparing: encode numpy images for `tfds.features.Image` with PIL instead of TF.

    TFDS encodes numpy images with tf.image.encode_png / encode_jpeg. Without TensorFlow this
    swaps in PIL for the duration (TFDS decodes with PIL or OpenCV when reading as numpy).
    Nothing changes when TensorFlow is installed or TFDS's internals differ.
    """
    patched = None
    if importlib.util.find_spec("tensorflow") is None:
        try:
            from PIL import Image as PILImage
            from tensorflow_datasets.core.features import image_feature

            encoder_cls = image_feature._ImageEncoder
            original = encoder_cls.__dict__["_encode_image"]
            validate = image_feature._validate_np_array
        except (ImportError, AttributeError, KeyError):
            pass
        else:

            def _encode_image(self, np_image):
                validate(np_image, shape=self.shape, dtype=self.np_dtype)
                array = np_image[..., 0] if np_image.ndim == 3 and np_image.shape[-1] == 1 else np_image
                buffer = io.BytesIO()
                if self.encoding_format == "jpeg":
                    PILImage.fromarray(array).save(buffer, format="JPEG", quality=95)
                else:
                    PILImage.fromarray(array).save(buffer, format="PNG")
                return buffer.getvalue()

            encoder_cls._encode_image = _encode_image
            patched = (encoder_cls, original)
    try:
        yield
    finally:
        if patched is not None:
            patched[0]._encode_image = patched[1]


# --- reading ------------------------------------------------------------------------


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
    if raw_dtype == np.bool_:
        binary = True
    elif np.issubdtype(raw_dtype, np.integer):
        binary = binary or (n > 0 and raw_max <= 1)
        if not binary:
            scale = 255.0 if raw_dtype.itemsize == 1 else float(np.iinfo(raw_dtype).max)
            np.divide(images, np.float32(scale), out=images)
    else:  # float images: [0, 1] already, or [0, 255]
        if raw_max > 1.0:
            np.divide(images, np.float32(255.0), out=images)
        np.clip(images, 0.0, 1.0, out=images)
        binary = binary or bool(n > 0 and np.all((images == 0) | (images == 1)))

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


__all__ = ["load_tfds", "OFFLINE_DATASETS", "PROBE_TIMEOUT_S"]
