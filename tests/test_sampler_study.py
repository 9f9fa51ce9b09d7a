"""experiments.sampler_study --quick: the study's harness end to end (its numbers mean nothing)."""

import json
import math
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))   # `pytest` alone does not put the root there
from experiments import sampler_study  # noqa: E402


def test_sampler_study_quick_writes_its_table_json_and_figures(tmp_path):
    out = str(tmp_path / "study")
    rows = sampler_study.main(["--quick", "--out", out])
    expected = [(preset, name) for preset, names in sampler_study.STUDY for name in names]
    assert [(r["model"], r["sampler"]) for r in rows] == expected
    assert all(math.isfinite(r["fd_classifier"]) and 0 <= r["precision"] <= 1 for r in rows)
    with open(os.path.join(out, "sampler_study.json")) as f:
        assert json.load(f)["rows"] == rows
    table = open(os.path.join(out, "sampler_study.md")).read()
    assert table.count("\n") == len(rows) + 2 and "| vqvae_mnist5k | code_prior |" in table
    for preset, name in expected:
        assert os.path.getsize(os.path.join(out, "figures", f"{preset}_{name}.png")) > 0
        if name != "normal":
            assert os.path.isfile(os.path.join(out, preset, "samplers", name, "sampler.json"))
    # a second call reuses the runs and the fitted samplers (nothing is retrained or refitted)
    mtime = os.path.getmtime(os.path.join(out, "quickstart", "samplers", "maf", "state.npz"))
    again = sampler_study.main(["--quick", "--out", out, "--only", "quickstart"])
    assert os.path.getmtime(os.path.join(out, "quickstart", "samplers", "maf", "state.npz")) == mtime
    assert [r["fd_classifier"] for r in again] == [r["fd_classifier"] for r in rows if r["model"] == "quickstart"]
