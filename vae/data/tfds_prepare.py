"""Finding, checking and preparing a TFDS builder without TensorFlow: the data dir, the builder
(with TFDS's gs://tfds-data lookups off), whether it is prepared and in a random-access format,
PIL in place of TensorFlow for encoding images while preparing, and the advice that ends every
`DatasetUnavailableError` (see `vae.data.tfds_source`)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re

from vae.data.base import OFFLINE_DATASETS, DatasetUnavailableError


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
