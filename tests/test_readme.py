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
