"""vae.data.tfds_source: TFDS datasets as numpy without TensorFlow, failing fast offline.

The happy paths use tiny builders defined here, prepared into tmp dirs as array_record (the
image encoding and the download go through TFDS's own code; the download from a local HTTP
server). Nothing here needs network or TensorFlow.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")
from etils import epath  # noqa: E402  (a tensorflow-datasets dependency)

from vae.data import tfds_source  # noqa: E402
from vae.data.base import OFFLINE_DATASETS, DatasetUnavailableError  # noqa: E402
from vae.data.tfds_source import load_tfds  # noqa: E402

FAST_S = 15  # a bound on hanging, not a benchmark
HERE = epath.Path(__file__).parent


class VaeTestDigits(tfds.core.GeneratorBasedBuilder):
    """8x8 grey images from numpy (PNG-encoded by TFDS), a label, two factors, extra features."""

    VERSION = tfds.core.Version("1.0.0")
    pkg_dir_path = HERE  # this module is not in a package: tell TFDS where its files are

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description="Tiny test digits.\nSecond line.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(8, 8, 1)),
                "label": tfds.features.ClassLabel(num_classes=3),
                "label_shape": tfds.features.ClassLabel(num_classes=2),
                "label_scale": tfds.features.ClassLabel(num_classes=5),
                "value_scale": tfds.features.Tensor(shape=(), dtype=np.float32),
                "id": tfds.features.Text(),
            }),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(range(10)), "test": self._generate_examples(range(20, 24))}

    def _generate_examples(self, indices):
        for i in indices:
            image = np.full((8, 8, 1), 10 * i, np.uint8)
            image[0, 0, 0] = 255
            yield i, {"image": image, "label": i % 3, "label_shape": i % 2, "label_scale": i % 5,
                      "value_scale": i / 10, "id": f"ex{i}"}


class VaeTestBinary(tfds.core.GeneratorBasedBuilder):
    """0/1 uint8 Tensor images, no labels."""

    VERSION = tfds.core.Version("1.0.0")
    pkg_dir_path = HERE

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(6, 6, 1), dtype=np.uint8),
        }))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i in range(5):
            yield i, {"image": (np.arange(36).reshape(6, 6, 1) % (i + 2) == 0).astype(np.uint8)}


class VaeTestDownloaded(tfds.core.GeneratorBasedBuilder):
    """RGB images and labels downloaded (by TFDS's download manager) from `URL`."""

    VERSION = tfds.core.Version("1.0.0")
    pkg_dir_path = HERE
    URL = "http://127.0.0.1:9/unset"  # set by the tests

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(5, 5, 3)),
            "label": tfds.features.ClassLabel(names=["a", "b"]),
        }))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(dl_manager.download(self.URL))}

    def _generate_examples(self, path):
        with np.load(os.fspath(path)) as data:
            images, labels = data["images"], data["labels"]
        for i, (image, label) in enumerate(zip(images, labels)):
            yield i, {"image": image, "label": int(label)}


def _digits_index(images):
    """The generator index i of each loaded digits image (its fill value is 10 * i)."""
    return np.rint(images[:, 1, 1, 0] * 255 / 10).astype(int)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The tiny builders prepared by load_tfds itself (they download nothing: no host to probe)."""
    root = tmp_path_factory.mktemp("tfds")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tfds_source, "_download_urls", lambda builder: [])
        for name in ("vae_test_digits", "vae_test_binary"):
            load_tfds(name, "train[:1]", data_dir=str(root))
    return root


def _assert_names_offline_sets(message):
    for word in OFFLINE_DATASETS:
        assert word in message


def test_offline_constant_matches_the_loader():
    from vae import data as vdata

    assert tuple(vdata.OFFLINE_DATASETS) == OFFLINE_DATASETS == ("mnist5k", "sprites")


def test_mnist_not_prepared_fails_fast_when_offline(tmp_path):
    if not tfds_source._unreachable_hosts(["https://storage.googleapis.com/cvdf-datasets/mnist/"]):
        pytest.skip("the network is up: mnist would be downloaded")
    t0 = time.monotonic()
    with pytest.raises(DatasetUnavailableError) as err:
        load_tfds("mnist", "train", data_dir=str(tmp_path))
    assert time.monotonic() - t0 < FAST_S
    message = str(err.value)
    for word in ("mnist", str(tmp_path), "storage.googleapis.com", "tfds build mnist", "data.data_dir"):
        assert word in message
    _assert_names_offline_sets(message)
    assert not list(tmp_path.iterdir())  # nothing half-prepared left behind


def test_not_prepared_and_no_download_fails_at_once(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(DatasetUnavailableError, match="download=False") as err:
        load_tfds("mnist:3.*.*", "train", data_dir=str(tmp_path), download=False)
    assert time.monotonic() - t0 < FAST_S
    assert str(tmp_path) in str(err.value)
    _assert_names_offline_sets(str(err.value))


def test_unknown_name_fails_fast_with_suggestion(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(DatasetUnavailableError) as err:
        load_tfds("mnistt", "train", data_dir=str(tmp_path))
    assert time.monotonic() - t0 < FAST_S
    message = str(err.value)
    assert "unknown TFDS dataset 'mnistt'" in message
    assert "mnistt -> mnist" in message  # TFDS's own suggestion
    assert str(tmp_path) in message
    _assert_names_offline_sets(message)
    assert "abstract_reasoning" not in message  # not TFDS's list of every dataset


def test_reads_prepared_array_record_as_numpy(prepared):
    ds = load_tfds("vae_test_digits", "train", data_dir=str(prepared))
    assert ds.split == "train" and len(ds) == 10
    assert ds.images.shape == (10, 8, 8, 1) and ds.images.dtype == np.float32
    assert ds.images.min() >= 0.0 and ds.images.max() == 1.0  # uint8 / 255
    index = _digits_index(ds.images)
    assert sorted(index) == list(range(10))
    np.testing.assert_allclose(ds.images[:, 1, 1, 0], index * 10 / 255, atol=1e-7)
    assert ds.labels.dtype == np.int32 and ds.labels.shape == (10,)
    np.testing.assert_array_equal(ds.labels, index % 3)
    assert ds.factors.dtype == np.int32 and ds.factors.shape == (10, 2)
    np.testing.assert_array_equal(ds.factors, np.stack([index % 5, index % 2], axis=1))  # sorted names
    info = ds.info
    assert info.name == "vae_test_digits" and info.image_shape == (8, 8, 1)
    assert info.num_classes == 3 and not info.binary
    assert info.factor_names == ("scale", "shape") and info.factor_sizes == (5, 2)
    assert "Tiny test digits." in info.description


def test_split_slicing_versions_and_bad_splits(prepared):
    train = load_tfds("vae_test_digits", "train", data_dir=str(prepared))
    head = load_tfds("vae_test_digits:1.*.*", "train[:3]", data_dir=str(prepared), download=False)
    assert head.images.shape == (3, 8, 8, 1) and head.labels.shape == (3,) and head.factors.shape == (3, 2)
    np.testing.assert_array_equal(head.images, train.images[:3])
    np.testing.assert_array_equal(head.labels, train.labels[:3])
    assert len(load_tfds("vae_test_digits", "train[-20%:]", data_dir=str(prepared))) == 2
    test = load_tfds("vae_test_digits", "test", data_dir=str(prepared))
    assert sorted(_digits_index(test.images)) == [20, 21, 22, 23]
    with pytest.raises(ValueError, match="validation"):
        load_tfds("vae_test_digits", "validation", data_dir=str(prepared))
    with pytest.raises(ValueError, match=r"train\[:100\]"):
        load_tfds("vae_test_digits", "train[:100]", data_dir=str(prepared))


def test_binary_tensor_images_without_labels(prepared):
    ds = load_tfds("vae_test_binary", "train", data_dir=str(prepared))
    assert ds.images.shape == (5, 6, 6, 1) and ds.images.dtype == np.float32
    assert set(np.unique(ds.images)) == {0.0, 1.0}  # kept 0/1, not divided by 255
    assert ds.info.binary and ds.info.num_classes is None
    assert ds.labels is None and ds.factors is None and ds.info.factor_names == ()


def test_entry_point_reads_tfds_names(prepared):
    from vae import data as vdata

    ds = vdata.load("vae_test_digits", "test[:2]", data_dir=str(prepared))
    assert ds.images.shape == (2, 8, 8, 1) and ds.info.num_classes == 3


def test_tfrecord_only_data_says_it_needs_tensorflow(prepared, tmp_path):
    shutil.copytree(prepared / "vae_test_digits", tmp_path / "vae_test_digits")
    info_path = tmp_path / "vae_test_digits" / "1.0.0" / "dataset_info.json"
    info = json.loads(info_path.read_text())
    info["fileFormat"] = "tfrecord"
    info_path.write_text(json.dumps(info))
    with pytest.raises(DatasetUnavailableError) as err:
        load_tfds("vae_test_digits", "train", data_dir=str(tmp_path))
    message = str(err.value)
    for word in ("tfrecord", "pip install tensorflow", "file_format='array_record'", "--file_format=array_record"):
        assert word in message


def test_reads_data_prepared_elsewhere_without_the_builder_code(prepared):
    """A fresh interpreter that never imports the builder class reads it from its files."""
    code = ("import sys; from vae.data.tfds_source import load_tfds; "
            "ds = load_tfds('vae_test_digits', 'train[:4]', data_dir=sys.argv[1], download=False); "
            "print(ds.images.shape, ds.info.num_classes, ds.info.factor_names, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(prepared)], capture_output=True, text=True, timeout=60,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(4, 8, 8, 1) 3 ('scale', 'shape') False"


# --- the download path, against a local HTTP server -----------------------------------------


@pytest.fixture(scope="module")
def http_server():
    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, body: bool):
            if self.path.startswith("/busy"):
                self.send_response(503)
                self.end_headers()
                return
            data = files.get(self.path)
            self.send_response(200 if data is not None else 404)
            self.send_header("Content-Length", str(len(data or b"")))
            self.end_headers()
            if body and data:
                self.wfile.write(data)

        def do_GET(self):
            self._answer(True)

        def do_HEAD(self):
            self._answer(False)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", files
    server.shutdown()
    server.server_close()


def _serve_images(monkeypatch, http_server, path="/data.npz"):
    base, files = http_server
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 5, 5, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(6) * 40  # a key to match records after TFDS's shuffle
    labels = np.array([0, 1, 1, 0, 1, 0])
    import io

    buffer = io.BytesIO()
    np.savez(buffer, images=images, labels=labels)
    files["/data.npz"] = buffer.getvalue()
    url = base + path
    monkeypatch.setattr(VaeTestDownloaded, "URL", url)
    # the test builder registers no checksums file: tell the probe which URL it will fetch
    monkeypatch.setattr(tfds_source, "_download_urls", lambda builder: [url])
    return images, labels


def test_downloads_and_prepares_as_array_record_without_tensorflow(tmp_path, monkeypatch, http_server):
    images, labels = _serve_images(monkeypatch, http_server)
    ds = load_tfds("vae_test_downloaded", "train", data_dir=str(tmp_path))
    assert (tmp_path / "vae_test_downloaded" / "1.0.0" / "dataset_info.json").exists()
    assert list((tmp_path / "vae_test_downloaded" / "1.0.0").glob("*.array_record*"))
    assert ds.images.shape == (6, 5, 5, 3) and ds.info.num_classes == 2 and not ds.info.binary
    order = np.rint(ds.images[:, 0, 0, 0] * 255 / 40).astype(int)
    np.testing.assert_allclose(ds.images, images[order] / 255.0, atol=1e-6)  # PNG is lossless
    np.testing.assert_array_equal(ds.labels, labels[order])
    assert "tensorflow" not in sys.modules

    # prepared now: read again without probing anything
    monkeypatch.setattr(tfds_source, "_download_urls", lambda builder: pytest.fail("probed a prepared dataset"))
    again = load_tfds("vae_test_downloaded", "train[:2]", data_dir=str(tmp_path), download=True)
    assert len(again) == 2


def test_server_errors_fail_fast_instead_of_retrying(tmp_path, monkeypatch, http_server):
    _serve_images(monkeypatch, http_server, path="/busy/data.npz")  # 503: TFDS would retry for 204 s
    t0 = time.monotonic()
    with pytest.raises(DatasetUnavailableError, match="HTTP 503") as err:
        load_tfds("vae_test_downloaded", "train", data_dir=str(tmp_path))
    assert time.monotonic() - t0 < FAST_S
    _assert_names_offline_sets(str(err.value))

    _serve_images(monkeypatch, http_server, path="/missing.npz")  # 404: reachable, TFDS fails at once
    t0 = time.monotonic()
    with pytest.raises(DatasetUnavailableError, match="could not be prepared") as err:
        load_tfds("vae_test_downloaded", "train", data_dir=str(tmp_path))
    assert time.monotonic() - t0 < FAST_S
    assert "404" in str(err.value)


def test_probe_reports_unreachable_hosts_quickly(http_server):
    base, _ = http_server
    t0 = time.monotonic()
    assert tfds_source._unreachable_hosts([base + "/anything"]) == []
    bad = tfds_source._unreachable_hosts(["http://127.0.0.1:1/x", base + "/busy"])
    assert len(bad) == 2 and "connection refused" in bad[0] and "HTTP 503" in bad[1]
    assert time.monotonic() - t0 < FAST_S
