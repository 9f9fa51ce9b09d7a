"""The benchmark harness still runs against the library (its timings are not asserted here)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_benchmark_compile_and_pipeline_sections(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--no-torch", "--repeats", "1",
                           "--only", "compile,pipeline", "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    # the train step vae.run builds compiles exactly once per run
    assert r["compile"]["train_step_backend_compiles"] == 1
    assert r["compile"]["train_step_cache_size"] == 1
    p = r["pipeline"]
    assert p["vae_run_uses"] == "in_step"  # the single-process default of train.batch_in_step
    assert set(p["overhead_pct_by_form"]) == {"separate_program", "in_step"}
    assert p["steps_per_epoch"] == 4000 // 128
    assert "pipeline: epoch of 31 steps" in proc.stdout and "compile: train step compiled 1x" in proc.stdout


def test_malloc_benchmark_quick_writes_both_allocators(tmp_path):
    out = tmp_path / "malloc.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.malloc", "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = json.loads(out.read_text())["cases"]["chen-mlp b64"]
    assert row["applied"] == {"mmap_threshold": 64 * 2 ** 20, "trim_threshold": 128 * 2 ** 20}
    for side in ("tuned", "default"):
        assert row[side]["ms_per_step"] > 0 and row[side]["peak_rss_mib"] > 100
    assert row["default_over_tuned"] == row["default"]["ms_per_step"] / row["tuned"]["ms_per_step"]
    assert "| chen-mlp b64 |" in proc.stdout
