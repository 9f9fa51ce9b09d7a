"""Prepared datasets (`vae prepare`) and the streaming input: the records hold exactly the
in-memory split, streamed batches are the in-memory Batcher's (so a run on either is the same
run), a resume restarts the stream at its step, bad requests are refused, and host memory does
not grow with the dataset."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from vae.cli import main as cli_main
from vae.config import Config, ConfigError
from vae.data import DataFileError, FileOptions, load_split
from vae.data.pipeline import Batcher
from vae.data.prepare import prepare_dataset
from vae.data.records import PreparedDataError, RecordSource, is_prepared
from vae.data.stream import StreamBatcher


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    rng = np.random.default_rng(0)
    images = (rng.random((300, 12, 12, 1)) * 255).astype(np.uint8)
    labels = rng.integers(0, 3, 300)
    np.savez(root / "d.npz", images=images, labels=labels)
    return root, images, labels


def _data(name, **kw):
    return Config().replace(**{"data.name": str(name), **kw}).data


def test_prepared_splits_equal_the_in_memory_splits_row_for_row(source, tmp_path):
    root, images, labels = source
    meta = prepare_dataset(str(root / "d.npz"), str(tmp_path / "p"), FileOptions(test_fraction=0.2, split_seed=4),
                           chunk=64)      # several chunks: the split must not depend on them
    assert is_prepared(str(tmp_path / "p")) and meta["splits"] == {"train": 240, "test": 60}
    assert meta["dtype"] == "uint8" and meta["values"] == "8bit" and meta["num_classes"] == 3
    for split in ("train", "test"):
        memory = load_split(_data(root / "d.npz", **{"data.test_fraction": 0.2, "data.split_seed": 4}), split)
        prepared = load_split(_data(tmp_path / "p"), split)
        np.testing.assert_array_equal(prepared.images, memory.images)
        np.testing.assert_array_equal(prepared.labels, memory.labels)
        assert prepared.info.values == memory.info.values and prepared.info.image_shape == (12, 12, 1)
        counts = np.bincount(memory.labels, minlength=3)
        assert [meta["label_counts"][split].get(str(k), 0) for k in range(3)] == counts.tolist()


def test_streamed_batches_are_the_in_memory_batchers_across_epochs_and_jumps(source, tmp_path):
    root, _, _ = source
    prepare_dataset(str(root / "d.npz"), str(tmp_path / "p"))
    memory = load_split(_data(root / "d.npz"), "train")
    batcher = Batcher(memory.images, memory.labels, 64, seed=5, dynamic_binarization=True)
    stream = StreamBatcher(RecordSource(str(tmp_path / "p"), "train"), 64, seed=5, dynamic_binarization=True)
    assert stream.steps_per_epoch == batcher.steps_per_epoch == 270 // 64
    for step in (0, 1, 2, 3, 4, 5, 9, 2, 3):          # across epochs; 9 and back to 2: the stream restarts
        a, b = batcher.batch(step), stream.batch(step)
        np.testing.assert_array_equal(np.asarray(a["image"]), np.asarray(b["image"]), err_msg=f"step {step}")
        np.testing.assert_array_equal(np.asarray(a["label"]), np.asarray(b["label"]))
        assert set(np.unique(np.asarray(b["image"]))) <= {0.0, 1.0}     # dynamically binarized
        np.testing.assert_array_equal(stream.indices(step), batcher.indices(step))


def test_a_run_on_the_prepared_dataset_is_the_run_on_its_source(source, tmp_path):
    root, _, _ = source
    prepared = str(tmp_path / "p")
    assert cli_main(["prepare", str(root / "d.npz"), prepared]) == 0
    common = ["--set", "train.steps=8", "--set", "train.eval_every=4", "--set", "train.batch_size=32",
              "--set", "model.hidden=16", "--set", "model.latent_dim=2", "--set", "train.final_iwae_samples=0",
              "--set", "train.num_samples=4", "--no-progress"]
    runs = {}
    for name, data in (("memory", str(root / "d.npz")), ("stream", prepared)):
        out = str(tmp_path / name)
        assert cli_main(["train", "--set", f"data.name={data}", *common, "--out", out]) == 0
        runs[name] = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("elapsed", "steps_per_s")} for r in rows]  # noqa
    assert strip(runs["stream"]) == strip(runs["memory"])
    record = json.load(open(tmp_path / "stream" / "config.json"))["dataset"]
    assert record["train_examples"] == 270 and sum(record["train_class_counts"]) == 270


def test_bad_requests_are_refused_and_nothing_is_lost(source, tmp_path, capsys):
    root, images, _ = source
    dest = tmp_path / "p"
    prepare_dataset(str(root / "d.npz"), str(dest))
    before = sorted(os.listdir(dest))
    with pytest.raises(DataFileError, match="already exists; choose another DEST, or pass --overwrite"):
        prepare_dataset(str(root / "d.npz"), str(dest))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataFileError, match="is not a prepared dataset: it is not replaced"):
        prepare_dataset(str(root / "d.npz"), str(tmp_path / "mine"), overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me" and sorted(os.listdir(dest)) == before
    # a folder whose images differ in size: refused, and no half-written DEST or .partial left behind
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(20):
        Image.fromarray(images[i, ..., 0]).save(folder / f"a{i:02d}.png")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(folder / "b.png")
    with pytest.raises(DataFileError, match="images differ in size"):
        prepare_dataset(str(folder), str(tmp_path / "q"))
    assert not (tmp_path / "q").exists() and not (tmp_path / "q.partial").exists()
    assert cli_main(["prepare", str(root / "d.npz"), str(tmp_path / "r"), "--set", "train.steps=3"]) == 2
    assert "allowed keys are data.test_fraction" in capsys.readouterr().err
    with pytest.raises(DataFileError, match=r"prepared dataset: .* leave data.image_size=\(8, 8\) unset"):
        load_split(_data(dest, **{"data.image_size": (8, 8)}), "train")
    from vae.run import train
    cfg = Config().replace(**{"data.name": str(dest), "data.binarize": "static", "train.steps": 1})
    with pytest.raises(ConfigError, match="data.binarize='static' draws the whole split at once"):
        train(cfg, str(tmp_path / "run"))
    os.remove(dest / "test.array_record")
    with pytest.raises(PreparedDataError, match="test.array_record is missing"):
        RecordSource(str(dest), "test")


MEMORY_PROBE = textwrap.dedent("""
    import json, sys
    import numpy as np
    from vae.config import Config
    from vae.run import train
    cfg = Config().replace(**{"data.name": sys.argv[1], "train.steps": 30, "train.eval_every": 30,
                              "train.batch_size": 64, "model.hidden": (16,), "model.latent_dim": 2,
                              "train.final_iwae_samples": 0, "train.num_samples": 4, "train.progress": False,
                              "train.loggers": ("jsonl",)})
    train(cfg, sys.argv[2])
    # VmHWM: this process image's peak (ru_maxrss would include the forking pytest process's)
    hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
    print(json.dumps({"peak_rss_mb": int(hwm.split()[1]) / 1024}))
""")


@pytest.mark.slow
def test_streaming_memory_does_not_grow_with_the_dataset(tmp_path):
    """Two prepared datasets of 1,000 and 12,000 images of 48 x 48 x 3 (the larger one 83 MB of
    uint8 on disk, 332 MB as float32 in memory): training streams both with the same peak memory,
    within 40 MB."""
    rng = np.random.default_rng(0)
    peaks = {}
    for n in (1000, 12000):
        npy = tmp_path / f"x{n}.npy"
        np.save(npy, (rng.random((n, 48, 48, 3)) * 255).astype(np.uint8))
        prepare_dataset(str(npy), str(tmp_path / f"p{n}"), FileOptions(test_fraction=0.02))
        npy.unlink()
        out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(tmp_path / f"p{n}"), str(tmp_path / f"r{n}")],
                             capture_output=True, text=True, check=True)
        peaks[n] = json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"]
    dataset_mb = 11000 * 48 * 48 * 3 * 4 / 2 ** 20     # what the extra rows would take in memory as float32
    assert peaks[12000] - peaks[1000] < 40 < dataset_mb / 5, (peaks, dataset_mb)
