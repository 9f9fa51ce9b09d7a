"""The README's Python example runs as written, and its set-up commands are the ones CI runs."""

import pathlib
import re

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_python_example_runs():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["samples"].shape == (16, 28, 28, 1)
    assert float(namespace["metrics"]["loss"]) < 250  # from ~543 nats at initialisation
    assert np.isfinite(np.asarray(namespace["samples"])).all()


def test_readme_commands_match_ci():
    text = (ROOT / "README.md").read_text()
    assert 'pip install -e ".[dev]" && vae train' in text
    assert 'pip install -e ".[dev]" && pytest' in text
    assert 'pip install -e ".[dev]" && pytest' in (ROOT / ".ci" / "run").read_text()


def test_readme_adding_a_model_example_runs(tmp_path, monkeypatch):
    """The "Adding a model" example registers two variants from outside the package; they train,
    evaluate and explore; `vae evaluate` loads their runs given the module that registers them."""
    import json
    import os
    import subprocess
    import sys

    from vae import registry

    text = (ROOT / "README.md").read_text()
    block = re.findall(r"```python\n(.*?)```", text, flags=re.S)[1]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme_example"}
    try:
        exec(compile(block, "README.md", "exec"), namespace)
        for name in ("rate_target_vae", "fixed_variance_vae"):
            summary = json.loads((tmp_path / "runs" / name / "summary.json").read_text())
            result = json.loads((tmp_path / "runs" / name / "eval.json").read_text())
            assert summary["steps"] == 200 and np.isfinite(summary["test_elbo"])
            # the IWAE bound (k=100) is at least the one-sample ELBO, up to Monte-Carlo noise
            assert result["iwae"]["log_px"] > result["elbo"]["elbo"] - 3 * result["iwae"]["example_stderr"]
        assert namespace["samples"].shape == (8, 28, 28, 1)
        assert registry.get("rate_target_vae").reads == ("objective.gamma",)

        # the command line: the run's variant is not importable by itself (it was declared in this
        # test's namespace), so `vae evaluate` says what to import; with --import it evaluates
        (tmp_path / "my_variants.py").write_text(block.split("# Both train")[0])
        env = {**os.environ, "PYTHONPATH": str(tmp_path), "JAX_PLATFORMS": "cpu"}
        cmd = [sys.executable, "-m", "vae.cli"]
        run_dir = str(tmp_path / "runs" / "rate_target_vae")
        refused = subprocess.run(cmd + ["evaluate", run_dir, "--iwae-samples", "0"], env=env, capture_output=True,
                                 text=True)
        assert refused.returncode == 2
        assert "model.name='rate_target_vae', which is not registered" in refused.stderr
        assert "--import MODULE" in refused.stderr
        ok = subprocess.run(cmd + ["--import", "my_variants", "evaluate", run_dir, "--iwae-samples", "0"], env=env,
                            capture_output=True, text=True)
        assert ok.returncode == 0, ok.stderr[-2000:]
        again = json.loads((tmp_path / "runs" / "rate_target_vae" / "eval.json").read_text())
        assert again["num_examples"] == 200 and "iwae" not in again and np.isfinite(again["elbo"]["elbo"])
    finally:
        registry.unregister("rate_target_vae")
        registry.unregister("fixed_variance_vae")


def test_readme_shows_the_leaderboard_as_the_study_wrote_it():
    """The README's leaderboard is results/leaderboard.md verbatim (between its two markers), so the
    numbers shown are the ones measured and nothing is edited by hand."""
    text = (ROOT / "README.md").read_text()
    shown = re.search(r"<!-- results/leaderboard.md -->\n(.*?)<!-- end results/leaderboard.md -->", text, flags=re.S)
    assert shown, "README has no leaderboard block"
    assert shown.group(1) == (ROOT / "results" / "leaderboard.md").read_text()
