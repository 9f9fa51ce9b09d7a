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
  numpy images with `tf.image.encode_png`. `load_tfds` swaps the last one for PIL while it
  prepares a dataset, so builders that do not use the others (dsprites, shapes3d with
  `h5py` installed, your own builders) prepare without TF; for the rest the error tells to
  prepare once where TensorFlow is installed (`tfds build NAME --file_format=array_record`)
  and read the result here.

Modules: `vae.data.tfds_prepare` (the builder: finding, checking, preparing without TF),
`vae.data.tfds_probe` (probing the download hosts), `vae.data.tfds_read` (a prepared split to
numpy); this one holds `load_tfds` and the prepare-or-fail step.
"""

from __future__ import annotations

import logging
import os

from vae.data.base import OFFLINE_DATASETS, Dataset, DatasetUnavailableError
from vae.data.tfds_prepare import (
    _advice, _check_random_access, _data_dir_root, _gcs_disabled, _info_file, _is_prepared, _make_builder,
    _missing_module, _numpy_images_encoded_with_pil,
)
# `_download_and_prepare` looks `_download_urls` and `_unreachable_hosts` up in this module, so
# patching them here (as the tests do) takes effect. FALLBACK_DOWNLOAD_HOST and BINARY_DATASETS
# are re-exported: they were defined here before the split.
from vae.data.tfds_probe import (  # noqa: F401
    FALLBACK_DOWNLOAD_HOST, PROBE_TIMEOUT_S, _download_urls, _first_lines, _unreachable_hosts,
)
from vae.data.tfds_read import BINARY_DATASETS, _to_dataset  # noqa: F401

log = logging.getLogger(__name__)


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


__all__ = ["load_tfds", "OFFLINE_DATASETS", "PROBE_TIMEOUT_S"]
