"""Many hosts, run here: two processes on this machine (coordinator on 127.0.0.1, CPU collectives
through gloo) train the quickstart together, one device each, and end with the params of a
one-process run on the same global batch; only process 0 writes the run's files."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import jax

from vae.trained import load_run

ARGS = ["--set", "train.steps=4", "--set", "train.eval_every=4", "--set", "model.hidden=8", "--set",
        "train.final_iwae_samples=0", "--set", "train.num_samples=4", "--set", "data.train_split=train[:256]",
        "--set", "data.test_split=test[:64]", "--set", "train.loggers=jsonl", "--no-progress"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COORDINATOR")}
    env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f)
    return {**env, "JAX_PLATFORMS": "cpu", **extra}


def test_two_processes_train_to_the_one_process_params(tmp_path):
    port = _free_port()
    multi, single = str(tmp_path / "multi"), str(tmp_path / "single")
    procs = [subprocess.Popen([sys.executable, "-m", "vae.cli", "train", *ARGS, "--out", multi],
                              env=_env(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2",
                                       JAX_PROCESS_ID=str(i), JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    proc = subprocess.run([sys.executable, "-m", "vae.cli", "train", *ARGS, "--out", single], env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a, b = load_run(multi), load_run(single)
    assert a.step == b.step == 4
    for x, y in zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    with open(os.path.join(multi, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert [(r["step"], r["split"]) for r in records] == [(4, "train"), (4, "test")]   # written once
    with open(os.path.join(multi, "summary.json")) as f:
        assert len(json.load(f)["devices"]) == 2


def test_a_process_that_dies_stops_the_other_with_a_clear_error(tmp_path):
    import time

    port = _free_port()
    args = [a if a != "train.steps=4" else "train.steps=1000000" for a in ARGS]
    procs = [subprocess.Popen([sys.executable, "-m", "vae.cli", "train", *args, "--heartbeat-timeout", "5",
                               "--out", str(tmp_path / "run")],
                              env=_env(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2",
                                       JAX_PROCESS_ID=str(i), JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        deadline = time.time() + 120
        while not os.path.exists(tmp_path / "run" / "config.json") and time.time() < deadline:
            time.sleep(0.5)          # both are past start-up and training
        time.sleep(3)
        procs[1].kill()
        _, err = procs[0].communicate(timeout=90)   # it must not wait forever in a collective
    finally:
        for p in procs:
            p.kill()
    assert procs[0].returncode != 0
    assert "another task died" in err


def test_two_processes_streaming_a_prepared_dataset_reach_the_in_memory_params(tmp_path):
    """Each process streams only its rows of the global batch from the prepared records; the
    params equal a one-process run that holds the same data in memory."""
    from vae.data import load
    from vae.data.prepare import prepare_dataset
    from vae.data.files import FileOptions

    for split, rows in (("train", 256), ("test", 64)):
        ds = load("mnist5k", f"{split}[:{rows}]")
        np.savez(tmp_path / f"{split}.npz", images=np.round(ds.images * 255).astype(np.uint8), labels=ds.labels)
    prepared = str(tmp_path / "prepared")
    prepare_dataset(str(tmp_path / "train.npz"), prepared, FileOptions(test_path=str(tmp_path / "test.npz")))
    args = ARGS[:ARGS.index("data.train_split=train[:256]") - 1] + ARGS[ARGS.index("data.test_split=test[:64]") + 1:]
    port = _free_port()
    multi, single = str(tmp_path / "multi"), str(tmp_path / "single")
    procs = [subprocess.Popen([sys.executable, "-m", "vae.cli", "train", *args, "--set", f"data.name={prepared}",
                               "--out", multi],
                              env=_env(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2",
                                       JAX_PROCESS_ID=str(i), JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    proc = subprocess.run([sys.executable, "-m", "vae.cli", "train", *args, "--set",
                           f"data.name={tmp_path / 'train.npz'}", "--set", f"data.test_path={tmp_path / 'test.npz'}",
                           "--out", single], env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a, b = load_run(multi), load_run(single)
    assert a.step == b.step == 4
    for x, y in zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
