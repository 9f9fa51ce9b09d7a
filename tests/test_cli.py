import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from vae.checkpoint import Checkpointer
from vae.cli import main

SMALL = ["--set", "model.hidden=64", "--set", "model.latent_dim=4", "--set", "train.batch_size=32",
         "--set", "train.log_every=5", "--set", "train.num_samples=16", "--no-progress"]


def _run(tmp_path, *args):
    return main(["train", "--preset", "quickstart", *SMALL, *args])


def test_train_writes_the_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(tmp_path, "--set", "train.steps=20", "--set", "train.eval_every=10", "--out", str(out)) == 0
    assert {"config.json", "metrics.jsonl", "checkpoints", "figures", "summary.json"} <= set(os.listdir(out))
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["steps"] == 20 and config["model"]["latent_dim"] == 4 and config["name"] == "quickstart"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["split"]) for r in records] == [
        (5, "train"), (10, "train"), (10, "test"), (15, "train"), (20, "train"), (20, "test")]
    for r in records:
        assert {"step", "split", "loss", "recon", "kl", "elbo", "elapsed"} <= set(r)
        assert all(np.isfinite(v) for v in r.values() if isinstance(v, float))
    assert sorted(os.listdir(out / "checkpoints")) == ["10", "20"]
    for name in ("reconstructions.png", "samples.png"):
        data = (out / "figures" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 20
    test = [r for r in records if r["split"] == "test"][-1]
    assert summary["test_elbo"] == pytest.approx(test["elbo"])
    assert summary["test_recon"] == pytest.approx(test["recon"]) and summary["test_kl"] == pytest.approx(test["kl"])
    assert summary["wall_time_s"] > 0 and summary["train_steps_per_s"] > 0
    assert "test_elbo" in capsys.readouterr().out


def test_resume_continues_to_the_same_result(tmp_path):
    common = ["--set", "optim.schedule=constant", "--set", "optim.warmup_steps=0", "--set", "train.eval_every=10"]
    full, part = tmp_path / "full", tmp_path / "part"
    assert _run(tmp_path, *common, "--set", "train.steps=20", "--out", str(full)) == 0
    assert _run(tmp_path, *common, "--set", "train.steps=10", "--out", str(part)) == 0
    assert _run(tmp_path, *common, "--set", "train.steps=20", "--out", str(part), "--resume") == 0
    ckpt_full, ckpt_part = Checkpointer(full / "checkpoints"), Checkpointer(part / "checkpoints")
    assert ckpt_part.latest_step() == 20
    import jax

    a, b = ckpt_full.restore(step=20)[0], ckpt_part.restore(step=20)[0]
    assert set(a) >= {"params", "opt_state", "step", "rng"}
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    lines = lambda d: [(r["step"], r["split"], r["loss"]) for r in map(json.loads, (d / "metrics.jsonl").read_text().splitlines())]
    assert lines(full) == lines(part)


def test_existing_run_is_not_overwritten_by_accident(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(tmp_path, "--set", "train.steps=5", "--set", "train.eval_every=5", "--out", str(out)) == 0
    before = (out / "summary.json").read_text()
    assert _run(tmp_path, "--set", "train.steps=5", "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert (out / "summary.json").read_text() == before
    assert _run(tmp_path, "--set", "train.steps=5", "--set", "train.eval_every=5", "--out", str(out), "--overwrite") == 0


def test_resume_refuses_a_different_model(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(tmp_path, "--set", "train.steps=5", "--set", "train.eval_every=5", "--out", str(out)) == 0
    assert _run(tmp_path, "--set", "model.latent_dim=6", "--out", str(out), "--resume") == 2
    assert "model.latent_dim" in capsys.readouterr().err
    assert _run(tmp_path, "--out", str(tmp_path / "nothing"), "--resume") == 2
    assert "holds no run" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--set", "model.latent_dim=-1"], "model.latent_dim=-1"),
    (["--set", "train.stepz=3"], "unknown config key 'train.stepz'"),
    (["--set", "data.name=mnistt", "--set", "data.data_dir=/tmp/vae-test-no-data"], "mnist5k"),
    (["--set", "data.test_split=validation"], "data.test_split='validation' is not allowed"),
])
def test_bad_input_fails_fast_with_a_clear_message(tmp_path, capsys, args, message):
    t0 = time.monotonic()
    assert main(["train", *args, "--out", str(tmp_path / "x")]) == 2
    assert time.monotonic() - t0 < 20
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x" / "checkpoints").exists()


def test_console_script_lists_presets():
    exe = shutil.which("vae") or os.path.join(os.path.dirname(sys.executable), "vae")
    result = subprocess.run([exe, "presets"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert any(line.startswith("quickstart") and "mnist5k" in line for line in result.stdout.splitlines())


def test_explore_writes_the_requested_figure(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(tmp_path, "--set", "train.steps=10", "--set", "train.eval_every=10", "--out", str(out)) == 0
    for name in ("traversals.png", "interpolations.png"):
        assert (out / "figures" / name).read_bytes()[:4] == b"\x89PNG"
    target = tmp_path / "m.png"
    assert main(["explore", str(out), "--figure", "manifold", "--out", str(target)]) == 0
    assert target.read_bytes()[:4] == b"\x89PNG" and target.stat().st_size > 2000
    assert main(["explore", str(out), "--figure", "bogus"]) == 2
    assert "allowed: samples" in capsys.readouterr().err
    target = tmp_path / "t.png"
    assert main(["explore", str(out), "--figure", "traversals", "--range-mode", "minmax", "--out", str(target)]) == 0
    assert target.read_bytes()[:4] == b"\x89PNG"
    assert main(["explore", str(out), "--figure", "traversals", "--range-mode", "wide"]) == 2
    assert "range_mode='wide' is not allowed; choose one of std" in capsys.readouterr().err
    assert main(["explore", str(out), "--figure", "manifold", "--range-mode", "minmax"]) == 2
    assert "applies to kind='traversals' only" in capsys.readouterr().err
    assert main(["explore", str(tmp_path / "none"), "--figure", "samples"]) == 2
