"""vae.memory: glibc's thresholds are set once, can be turned off, and change no number a step computes."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from vae import memory

# A subprocess, so each side gets a fresh allocator: three jitted steps of Chen et al.'s MLP on
# 64x64 images (12.7M parameters, 51 MB per parameter-sized array: above glibc's own 32 MiB
# ceiling, so the tuned side serves them from the heap and the default side from fresh mmaps).
STEPS = textwrap.dedent("""
    import hashlib, json
    import jax, numpy as np
    import vae
    from vae.memory import keep_large_buffers
    applied = keep_large_buffers()
    model = vae.build_model(vae.ModelConfig(architecture="mlp", latent_dim=10, hidden=(1200, 1200)), (64, 64, 1))
    optimizer = vae.make_optimizer(vae.OptimConfig(learning_rate=1e-3), total_steps=10)
    state = vae.create_train_state(model, optimizer, (64, 64, 1), seed=0)
    step = vae.make_train_step(model, vae.ELBO(), optimizer)
    x = (np.random.default_rng(0).random((16, 64, 64, 1)) < 0.3).astype(np.float32)
    batch = {"image": jax.numpy.asarray(x), "label": jax.numpy.zeros(16, jax.numpy.int32)}
    losses = []
    for _ in range(3):
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
    digest = hashlib.sha256(b"".join(np.asarray(a).tobytes() for a in jax.tree_util.tree_leaves(state.params)))
    print(json.dumps({"applied": applied, "losses": losses, "params": digest.hexdigest()}))
""")


def _run(env_extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", STEPS], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tuned_and_default_allocators_give_bit_identical_steps():
    tuned, default = _run({}), _run({memory.ENV: "0"})
    assert tuned["applied"] == {"mmap_threshold": memory.MMAP_THRESHOLD, "trim_threshold": memory.TRIM_THRESHOLD}
    assert default["applied"] == {}
    assert tuned["losses"] == default["losses"] and tuned["params"] == default["params"]
    # glibc's own variable is the user's choice: left as it is
    assert _run({"MALLOC_MMAP_THRESHOLD_": "1048576"})["applied"] == {}


def test_thresholds_are_checked_and_set_once(monkeypatch):
    with pytest.raises(ValueError, match=r"mmap_threshold=0: allowed are 1 .. 2147483647 bytes"):
        memory.keep_large_buffers(mmap_threshold=0)
    with pytest.raises(ValueError, match=r"trim_threshold=4294967296: allowed"):
        memory.keep_large_buffers(trim_threshold=2 ** 32)
    monkeypatch.setattr(memory, "_applied", {"mmap_threshold": 5, "trim_threshold": 7})
    assert memory.keep_large_buffers() == {"mmap_threshold": 5, "trim_threshold": 7}   # the first call's setting
