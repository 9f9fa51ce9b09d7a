"""Scale and reliability: multi-device equivalence, kill-and-resume, damaged checkpoints,
Ctrl-C, the NaN guard, bad input and determinism."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import vae.data as vdata
from vae.checkpoint import Checkpointer
from vae.config import Config, ConfigError, ModelConfig
from vae.variants import build_model
from vae.objectives import ELBO
from vae.run import NonFiniteError, RunDirError, load_run, train
from vae.step import create_train_state, make_train_step

TINY = {"model.hidden": (32,), "model.latent_dim": 4, "train.batch_size": 32, "train.progress": False,
        "train.final_iwae_samples": 0, "train.num_samples": 4, "data.train_split": "train[:512]",
        "data.test_split": "test[:64]", "train.log_every": 5, "optim.schedule": "constant", "optim.warmup_steps": 0}


def _cfg(**kw):
    return Config().replace(**{**TINY, **kw})


def _records(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "elapsed"} for line in lines]


def _params(run_dir, step=None):
    state, _ = Checkpointer(run_dir / "checkpoints").restore(step=step)
    return jax.tree_util.tree_leaves(state["params"])


def _run_cli(args, env_extra=None, **kw):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "vae.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _cli_args(out, steps, *extra):
    sets = [f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in TINY.items()
            if k != "train.progress"]
    args = ["train", "--out", str(out), "--no-progress", f"--set=train.steps={steps}", "--set=train.eval_every=10"]
    return args + [f"--set={s}" for s in sets] + list(extra)


def test_same_seed_gives_bit_identical_metrics(tmp_path):
    train(_cfg(**{"train.steps": 10, "train.eval_every": 10}), str(tmp_path / "a"))
    train(_cfg(**{"train.steps": 10, "train.eval_every": 10}), str(tmp_path / "b"))
    assert _records(tmp_path / "a") == _records(tmp_path / "b")
    for x, y in zip(_params(tmp_path / "a"), _params(tmp_path / "b")):
        np.testing.assert_array_equal(x, y)
    train(_cfg(**{"train.steps": 10, "train.eval_every": 10, "seed": 1}), str(tmp_path / "c"))
    assert _records(tmp_path / "c") != _records(tmp_path / "a")


def test_batch_in_step_matches_a_separate_batch_program(tmp_path):
    """train.batch_in_step=on (the single-process default) and off (a batch program of its own, as
    in multi-process runs) train on the same batches: same logged metrics and parameters within
    float32 rounding."""
    base = {"train.steps": 20, "train.eval_every": 10, "data.binarize": "dynamic"}
    train(_cfg(**base, **{"train.batch_in_step": "off"}), str(tmp_path / "off"))
    train(_cfg(**base, **{"train.batch_in_step": "on"}), str(tmp_path / "on"))
    off, on = _records(tmp_path / "off"), _records(tmp_path / "on")
    assert [r["step"] for r in off] == [r["step"] for r in on] and len(off) >= 6
    for a, b in zip(off, on):
        for key, value in a.items():
            if isinstance(value, float):
                assert b[key] == pytest.approx(value, rel=1e-4, abs=1e-5), (a["step"], key)
    for x, y in zip(_params(tmp_path / "off"), _params(tmp_path / "on")):
        np.testing.assert_allclose(y, x, rtol=1e-4, atol=1e-5)


def test_batch_splits_auto_and_explicit_values():
    from vae.objectives import IWAE, BetaTCVAE, FactorVAE
    from vae.run import batch_splits

    assert jax.default_backend() == "cpu"
    assert batch_splits(0, "conv", ELBO(), 1, 128) == 2  # auto on the CPU: halves for the conv nets
    assert batch_splits(0, "burgess", IWAE(), 1, 64) == 4  # four parts of >= 16 rows for Burgess, ResNet
    assert batch_splits(0, "resnet", ELBO(beta=4.0), 1, 64) == 4
    assert batch_splits(0, "resnet", ELBO(beta=4.0), 1, 32) == 2   # four parts would have 8 rows: halves
    assert batch_splits(0, "burgess", ELBO(), 1, 66) == 2
    assert batch_splits(0, "mlp", ELBO(), 1, 128) == 1  # measured slower for the MLP
    assert batch_splits(0, "conv", FactorVAE(), 1, 128) == 1  # batch statistics
    assert batch_splits(0, "conv", ELBO(free_bits=0.5), 1, 128) == 1
    assert batch_splits(0, "conv", ELBO(), 4, 128) == 1  # several devices
    assert batch_splits(0, "conv", ELBO(), 1, 127) == 1
    assert batch_splits(4, "mlp", ELBO(), 1, 128) == 4 and batch_splits(1, "conv", FactorVAE(), 1, 128) == 1
    with pytest.raises(ConfigError, match=r"train.batch_splits=2 needs a per-example objective.*BetaTCVAE"):
        batch_splits(2, "conv", BetaTCVAE(dataset_size=100), 1, 128)
    with pytest.raises(ConfigError, match=r"batch_splits=4 with 4 devices needs train.batch_size divisible by 16, got 8"):
        batch_splits(4, "conv", ELBO(), 4, 8)


def test_conv_run_splits_its_batches_and_refuses_splits_a_batch_objective_cannot_take(tmp_path):
    conv = {"model.architecture": "conv", "model.channels": (4, 8), "train.steps": 6, "train.eval_every": 6}
    summary = train(_cfg(**conv), str(tmp_path / "auto"))
    assert summary["batch_splits"] == 2 and np.isfinite(summary["test_elbo"])
    records = _records(tmp_path / "auto")
    assert records[-1]["step"] == 6 and all(np.isfinite(r["loss"]) for r in records if "loss" in r)
    with pytest.raises(ConfigError, match="train.batch_splits=2 needs a per-example objective"):
        train(_cfg(**conv, **{"train.batch_splits": 2, "model.name": "factor_vae"}), str(tmp_path / "bad"))
    assert not (tmp_path / "bad").exists()  # refused before any work


MULTI_DEVICE = textwrap.dedent('''
    import json, sys
    import jax, numpy as np
    from vae.config import Config
    from vae.checkpoint import Checkpointer
    from vae.run import train
    from vae.config import ConfigError
    assert len(jax.devices()) == 4, jax.devices()
    tiny = json.loads(sys.argv[2])
    out = {}
    for n in (1, 4):
        cfg = Config().replace(**{**tiny, "train.steps": 12, "train.eval_every": 12, "train.devices": n})
        s = train(cfg, f"{sys.argv[1]}/d{n}")
        state, _ = Checkpointer(f"{sys.argv[1]}/d{n}/checkpoints").restore(step=12)
        out[n] = (s["test"]["loss"], [np.asarray(x) for x in jax.tree_util.tree_leaves(state["params"])], s["devices"])
    cfg = Config().replace(**{**tiny, "train.steps": 12, "train.eval_every": 12, "train.devices": 4,
                              "train.shard_params": True})
    sharded = train(cfg, f"{sys.argv[1]}/sharded")
    cfg = Config().replace(**{**tiny, "train.steps": 12, "train.eval_every": 12, "train.devices": 4,
                              "train.batch_in_step": "on"})
    fused = train(cfg, f"{sys.argv[1]}/fused")
    try:
        train(Config().replace(**{**tiny, "train.batch_size": 30, "train.devices": 4}), f"{sys.argv[1]}/bad")
        bad = "no error"
    except ConfigError as err:
        bad = str(err)
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(out[1][1], out[4][1]))
    print(json.dumps({"loss1": out[1][0], "loss4": out[4][0], "max_param_diff": diff, "devices4": out[4][2],
                      "loss_sharded": sharded["test"]["loss"], "loss_fused": fused["test"]["loss"], "bad_batch": bad}))
''')


def test_four_devices_match_one_device(tmp_path):
    tiny = {k: (list(v) if isinstance(v, tuple) else v) for k, v in TINY.items()}
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"}
    result = subprocess.run([sys.executable, "-c", MULTI_DEVICE, str(tmp_path), json.dumps(tiny)], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    r = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(r["devices4"]) == 4
    assert r["loss4"] == pytest.approx(r["loss1"], rel=1e-5)
    assert r["loss_sharded"] == pytest.approx(r["loss1"], rel=1e-5)
    assert r["loss_fused"] == pytest.approx(r["loss1"], rel=1e-5)
    assert r["max_param_diff"] < 1e-5
    assert "train.batch_size=30 is not divisible by the number of devices (4)" in r["bad_batch"]


def _prepared_tiny(tmp_path) -> list[str]:
    """A prepared (streamed) copy of TINY's data: the --set flags that train on it."""
    from vae.data import FileOptions, load
    from vae.data.prepare import prepare_dataset

    for split, key in (("train", "data.train_split"), ("test", "data.test_split")):
        ds = load("mnist5k", TINY[key])
        np.savez(tmp_path / f"{split}.npz", images=np.round(ds.images * 255).astype(np.uint8), labels=ds.labels)
    prepare_dataset(str(tmp_path / "train.npz"), str(tmp_path / "prepared"),
                    FileOptions(test_path=str(tmp_path / "test.npz")))
    return [f"--set=data.name={tmp_path / 'prepared'}", "--set=data.train_split=train", "--set=data.test_split=test"]


@pytest.mark.parametrize("stream", [False, True], ids=["in_memory", "streamed"])
def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, stream):
    full, killed = tmp_path / "full", tmp_path / "killed"
    data = _prepared_tiny(tmp_path) if stream else []
    assert _run_cli(_cli_args(full, 60, *data)).wait(timeout=300) == 0
    proc = _run_cli(_cli_args(killed, 60, *data))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # kill once a checkpoint past step 20 exists, mid-run
        steps = [int(d) for d in os.listdir(killed / "checkpoints") if d.isdigit()] if (killed / "checkpoints").exists() else []
        if any(s >= 20 for s in steps):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    resumed = _run_cli(_cli_args(killed, 60, *data, "--resume"))
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-2000:]
    assert "resuming" in err
    assert _records(killed) == _records(full)
    for x, y in zip(_params(killed, 60), _params(full, 60)):
        np.testing.assert_array_equal(x, y)


def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
    out = tmp_path / "run"
    train(_cfg(**{"train.steps": 20, "train.eval_every": 10}), str(out))
    # damage every data file of the latest checkpoint
    for root, _, files in os.walk(out / "checkpoints" / "20" / "state"):
        for name in files:
            with open(os.path.join(root, name), "wb") as f:
                f.write(b"garbage")
    summary = train(_cfg(**{"train.steps": 20, "train.eval_every": 10}), str(out), resume=True)
    err = capsys.readouterr().err
    assert "checkpoint at step 20 is damaged" in err and "resuming" in err and "from step 10" in err
    assert summary["steps"] == 20


def test_sigint_saves_a_checkpoint_and_resume_finishes_identically(tmp_path):
    full, stopped = tmp_path / "full", tmp_path / "stopped"
    args = lambda out, *extra: _cli_args(out, 1500, "--set=train.eval_every=500", "--set=train.log_every=50", *extra)
    assert _run_cli(args(full)).wait(timeout=300) == 0
    proc = _run_cli(args(stopped))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (stopped / "metrics.jsonl").exists():
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted; saved a checkpoint at step" in err
    saved = Checkpointer(stopped / "checkpoints").latest_step()
    assert 0 < saved < 1500
    resumed = _run_cli(args(stopped, "--resume"))
    assert resumed.wait(timeout=300) == 0
    for x, y in zip(_params(stopped, 1500), _params(full, 1500)):
        np.testing.assert_array_equal(x, y)
    test_lines = lambda d: [r for r in _records(d) if r["split"] == "test"]
    assert test_lines(stopped) == test_lines(full)


def test_nonfinite_step_is_not_applied():
    model = build_model(ModelConfig(latent_dim=2, hidden=(8,)), (4, 4, 1))
    opt = optax.adam(1e-2)
    state = create_train_state(model, opt, (4, 4, 1), seed=0)
    before = [np.asarray(x) for x in jax.tree_util.tree_leaves((state.params, state.opt_state))]
    step = make_train_step(model, ELBO(), opt)
    bad = {"image": jnp.full((2, 4, 4, 1), jnp.nan), "label": jnp.zeros(2, jnp.int32)}
    state, m = step(state, bad)
    assert float(m["nonfinite"]) == 1.0 and int(state.step) == 1
    for x, y in zip(before, jax.tree_util.tree_leaves((state.params, state.opt_state))):
        np.testing.assert_array_equal(x, np.asarray(y))


def _nan_after(monkeypatch, bad_from: int):
    import vae.run.loop as run_mod

    real = run_mod.build_objective

    def poisoned(*a, **kw):
        inner = real(*a, **kw)

        class Poisoned(type(inner)):
            def compute(self, model, params, batch, rng, step, extra):
                loss, metrics, aux = super().compute(model, params, batch, rng, step, extra)
                return jnp.where(step >= bad_from, jnp.nan, loss), metrics, aux

        return Poisoned(**{f: getattr(inner, f) for f in inner.__dataclass_fields__})

    monkeypatch.setattr(run_mod, "build_objective", poisoned)


def test_nan_stops_the_run_naming_the_step_and_keeps_the_good_checkpoint(tmp_path, monkeypatch):
    _nan_after(monkeypatch, bad_from=12)
    out = tmp_path / "run"
    with pytest.raises(NonFiniteError, match=r"non-finite loss at step 13"):
        train(_cfg(**{"train.steps": 30, "train.eval_every": 10}), str(out))
    assert Checkpointer(out / "checkpoints").all_steps() == [10]
    bad = json.loads((out / "nonfinite_batch.json").read_text())
    assert bad["step"] == 13 and bad["metric"] == "loss" and len(bad["batch_indices"]) == 32
    for leaf in _params(out, 10):
        assert np.isfinite(leaf).all()


def test_skip_mode_counts_skipped_steps(tmp_path, monkeypatch):
    _nan_after(monkeypatch, bad_from=12)
    out = tmp_path / "run"
    summary = train(_cfg(**{"train.steps": 20, "train.eval_every": 10, "train.on_nonfinite": "skip"}), str(out))
    skipped = sum(r.get("skipped_steps", 0) for r in _records(out) if r["split"] == "train")
    assert skipped == 8 and summary["steps"] == 20
    assert all(np.isfinite(leaf).all() for leaf in _params(out, 20))


def _fake_load(monkeypatch, transform):
    import vae.run.setup as run_mod

    real = vdata.load

    def fake(name, split="train", **kw):
        ds = real(name, split, **kw)
        return vdata.Dataset(ds.info, ds.split, transform(ds.images.copy()), ds.labels, ds.factors)

    monkeypatch.setattr(run_mod.vdata, "load", fake)


def test_pixels_outside_unit_interval_are_refused_for_bernoulli(tmp_path, monkeypatch):
    _fake_load(monkeypatch, lambda x: x * 255.0)
    with pytest.raises(ConfigError, match=r"bernoulli' needs pixel values in \[0, 1\].*\[0, 255\]"):
        train(_cfg(**{"train.steps": 2}), str(tmp_path / "run"))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_nan_in_data_is_refused(tmp_path, monkeypatch):
    def poison(x):
        x[3, 0, 0, 0] = np.nan
        return x

    _fake_load(monkeypatch, poison)
    with pytest.raises(ConfigError, match="image 3 of the training split has NaN"):
        train(_cfg(**{"train.steps": 2}), str(tmp_path / "run"))


def test_model_that_does_not_fit_the_images_is_refused(tmp_path):
    wrong = build_model(ModelConfig(latent_dim=4, hidden=(8,), architecture="conv", channels=(4,)), (28, 28, 3))
    with pytest.raises(ConfigError, match=r"does not fit images of shape \(28, 28, 1\).*\(28, 28, 3\)"):
        train(_cfg(**{"train.steps": 2}), str(tmp_path / "run"), model=wrong)


def test_run_dir_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_run(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        load_run(str(tmp_path / "empty"))
    (tmp_path / "empty" / "config.json").write_text(Config().to_json())
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        load_run(str(tmp_path / "empty"))
    with pytest.raises(RunDirError, match="already holds a run"):
        train(_cfg(), str(tmp_path / "empty"))
