"""experiments.disentanglement --quick: the study's harness end to end (its numbers mean nothing)."""

import json
import math
import os
import pathlib
import shutil
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))   # `pytest` alone does not put the root there
from experiments import disentanglement as study  # noqa: E402


def test_grid_settings_are_disentanglement_lib_values():
    assert [m.label for m in study.GRID] == ["VAE", "beta-VAE", "AnnealedVAE", "beta-TCVAE", "FactorVAE",
                                             "DIP-VAE-I", "DIP-VAE-II"]
    dip2 = study.MODELS["DIP-VAE-II"].settings()
    assert dip2 == [{"model.name": "dip_vae_ii", "objective.dip_lambda_od": 5.0, "objective.dip_lambda_d": 5.0},
                    {"model.name": "dip_vae_ii", "objective.dip_lambda_od": 10.0, "objective.dip_lambda_d": 10.0}]
    assert study.setting_name(dip2[1]) == "dip_lambda_od=10,dip_lambda_d=10"
    assert study.MODELS["VAE"].settings() == [{}] and study.setting_name({}) == "default"
    cfg = study.run_config(study.MODELS["AnnealedVAE"], {"objective.capacity_max": 10.0}, 2, 500, 32, 1e-3, False)
    assert (cfg.seed, cfg.objective.capacity_max, cfg.objective.capacity_steps) == (2, 10.0, 500)
    assert (cfg.train.batch_size, cfg.optim.learning_rate) == (32, 1e-3)
    assert (cfg.model.architecture, cfg.model.hidden) == ("mlp", (1200, 1200))   # the study's networks
    assert cfg.data.train_split == "train[:200000]"
    burgess = study.run_config(study.MODELS["VAE"], {}, 0, 500, 64, 1e-4, False, burgess=True)
    assert burgess.model.architecture == "burgess" and burgess.model.name == "vae"


def test_study_quick_writes_json_table_and_figures_and_resumes(tmp_path):
    out, results = str(tmp_path / "runs"), str(tmp_path / "results")
    argv = ["--quick", "--out", out, "--results", results, "--only", "VAE", "--only", "beta-TCVAE"]
    first = study.main(argv)
    keys = [(r["key"]["model"], study.setting_name(r["key"]["setting"]), r["key"]["seed"]) for r in first["runs"]]
    assert keys == [("VAE", "default", 0), ("VAE", "default", 1), ("beta-TCVAE", "beta=6", 0),
                    ("beta-TCVAE", "beta=6", 1), ("beta-TCVAE", "beta=10", 0), ("beta-TCVAE", "beta=10", 1)]
    for run in first["runs"]:
        assert [p["step"] for p in run["mig_curve"]] == first["budget"]["stages"]
        assert all(0 <= p["mig"] <= 1 for p in run["mig_curve"])
        assert all(math.isfinite(v) for v in run["scores"].values()), run["scores"]
        # the curve's last point is the final MIG of the metric suite only up to its sample size
        assert 0 <= run["scores"]["MIG"] <= 1 and 0 <= run["scores"]["FactorVAE"] <= 1
        assert run["device"] == "cpu"   # recorded per run: speeds compare only on the same device
    assert [(r["model"], r["setting"], r["seeds"]) for r in first["rows"]] == [
        ("VAE", "default", [0, 1]), ("beta-TCVAE", "beta=6", [0, 1]), ("beta-TCVAE", "beta=10", [0, 1])]
    row = first["rows"][1]
    mine = [r["scores"]["MIG"] for r in first["runs"] if r["key"]["setting"] == {"objective.beta": 6.0}]
    assert row["MIG"] == {"median": sum(mine) / 2, "min": min(mine), "max": max(mine)}
    with open(os.path.join(results, "disentanglement.json")) as f:
        assert json.load(f)["rows"] == first["rows"]
    table = open(os.path.join(results, "disentanglement.md")).read()
    assert "| beta-TCVAE | beta=10 | 2 |" in table and table.count("\n| ") == 1 + len(first["rows"])
    for name in ("disentanglement.png", "disentanglement_mig_steps.png"):
        assert os.path.getsize(os.path.join(results, name)) > 10_000
    # a second call reuses every finished run: nothing is trained or scored again; narrowed to one model, its
    # results keep the other's records (same budget)
    record = os.path.join(out, "VAE", "default", "seed0", "result.json")
    mtime = os.path.getmtime(record)
    again = study.main(argv[:-2])
    assert os.path.getmtime(record) == mtime and again["rows"] == first["rows"] and again["runs"] == first["runs"]
    # a run killed after its last stage keeps its MIG curve and checkpoints: only the final scoring is redone
    run_dir = os.path.join(out, "VAE", "default", "seed1")
    os.remove(os.path.join(run_dir, "result.json"))
    checkpoints = os.path.join(run_dir, "checkpoints")
    before = {n: os.path.getmtime(os.path.join(checkpoints, n)) for n in os.listdir(checkpoints)}
    third = study.main(argv[:4] + [str(tmp_path / "third")] + argv[5:-2])   # no results json to reuse it from
    assert {n: os.path.getmtime(os.path.join(checkpoints, n)) for n in os.listdir(checkpoints)} == before
    assert third["runs"][1]["mig_curve"] == first["runs"][1]["mig_curve"]
    assert third["runs"][1]["scores"] == first["runs"][1]["scores"]
    assert all(r["steps_per_s"] > 0 for r in third["runs"])
    # a fresh clone: a run's folder is gone, its record in the results json is reused and nothing is trained
    shutil.rmtree(os.path.join(out, "beta-TCVAE", "beta=10", "seed1"))
    clone = study.main(argv)
    assert [r["scores"] for r in clone["runs"]] == [r["scores"] for r in first["runs"]]
    assert not os.path.exists(os.path.join(out, "beta-TCVAE", "beta=10", "seed1"))
    # --report: the table from the finished runs only (a study in progress); nothing is trained
    report = study.main(argv[:4] + [str(tmp_path / "new")] + argv[5:] + ["--report"])
    assert [r["scores"] for r in report["runs"]] == [r["scores"] for r in first["runs"][:5]]
    assert report["rows"][2]["seeds"] == [0] and not os.path.exists(os.path.join(out, "beta-TCVAE", "beta=10", "seed1"))
    assert "5 runs of the 6 planned" in open(os.path.join(tmp_path, "new", "disentanglement.md")).read()
    with pytest.raises(SystemExit, match="no finished run with these settings in"):
        study.main(["--quick", "--out", str(tmp_path / "empty"), "--results", str(tmp_path / "empty"), "--report"])
    # a run recorded on an accelerator is named in the budget line and kept out of the CPU's step time
    with open(os.path.join(results, "disentanglement.json")) as f:
        saved = json.load(f)
    saved["runs"][0]["device"] = "NVIDIA H200"
    with open(os.path.join(results, "disentanglement.json"), "w") as f:
        json.dump(saved, f)
    shutil.rmtree(out)
    mixed = study.main(argv + ["--report"])
    assert [r["device"] for r in mixed["runs"]] == ["NVIDIA H200"] + ["cpu"] * 5
    table = open(os.path.join(results, "disentanglement.md")).read()
    assert "; 1 run trained on one NVIDIA H200 (the rest on the CPU)" in table


def test_median_steps_per_s_ignores_pauses_and_resumes(tmp_path):
    from experiments.common import median_steps_per_s
    assert median_steps_per_s(str(tmp_path)) is None   # no metrics.jsonl
    # 100 steps per logged interval: 0.5 s each, one paused interval (30 s), then a resume from step 300 whose
    # elapsed restarts lower (dropped) and a test row (ignored)
    rows = [(100, 5.0), (200, 5.5), (300, 6.0), (400, 36.0), (500, 36.5), (400, 20.0), (500, 20.5), (600, 21.0)]
    lines = [{"step": s, "split": "train", "elapsed": e} for s, e in rows] + [{"step": 600, "split": "test",
                                                                              "elapsed": 99.0}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    # intervals kept: 200, 200, 3.33, 200, 200, 200 steps/s -> median 200
    assert median_steps_per_s(str(tmp_path)) == pytest.approx(200.0)
