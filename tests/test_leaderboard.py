"""experiments.leaderboard --quick: the harness and its table end to end (its numbers mean nothing)."""

import json
import math
import os
import pathlib
import shutil
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))   # `pytest` alone does not put the root there
from experiments import leaderboard  # noqa: E402


def test_presets_are_the_mnist5k_ones_and_the_budget_is_shared():
    presets = leaderboard.mnist5k_presets()
    assert "quickstart" in presets and "vqvae_map_mnist5k" in presets
    assert "conv_sprites" not in presets and "nvae_cifar10" not in presets
    for name in ("quickstart", "ladder_vae_mnist5k"):
        cfg = leaderboard.run_config(name, 3, 400, 64, False)
        assert (cfg.seed, cfg.train.steps, cfg.train.batch_size, cfg.train.eval_every) == (3, 400, 64, 400)
    # a KL warm-up longer than the budget is shortened to half of it
    assert leaderboard.run_config("ladder_vae_mnist5k", 0, 400, 64, False).objective.kl_warmup_steps == 200


def test_unknown_preset_is_refused_naming_it(tmp_path):
    with pytest.raises(SystemExit, match="not mnist5k presets: conv_sprites"):
        leaderboard.main(["--presets", "conv_sprites", "--out", str(tmp_path), "--results", str(tmp_path)])


def test_leaderboard_quick_writes_json_table_and_figure_and_reuses_runs(tmp_path):
    out, results = str(tmp_path / "runs"), str(tmp_path / "results")
    board = leaderboard.main(["--quick", "--out", out, "--results", results])
    assert [(r["key"]["preset"], r["key"]["seed"]) for r in board["runs"]] == [
        ("quickstart", 0), ("quickstart", 1), ("ae_mnist5k", 0), ("ae_mnist5k", 1), ("vqvae_mnist5k", 0),
        ("vqvae_mnist5k", 1)]
    vae_runs, ae_runs, vq_runs = board["runs"][:2], board["runs"][2:4], board["runs"][4:]
    for r in vae_runs:
        assert sorted(r["samplers"]) == ["gmm", "maf"] and r["best_sampler"] in ("gmm", "maf")
        assert r["iwae_k"] == 5 and r["iwae_nll"] > 0 and math.isfinite(r["test_elbo"])
        assert r["best_sampler"] == min(r["samplers"], key=lambda n: r["samplers"][n]["fd_classifier"])
    for r in ae_runs:   # no density: no ELBO or NLL, and the table says so
        assert r["iwae_nll"] is None and r["test_elbo"] is None and "density" in r["no_density"]
        assert sorted(r["samplers"]) == ["gmm", "maf"]
    for r in vq_runs:   # codes: the code prior is its sampler; the uniform code prior gives it a bound
        assert sorted(r["samplers"]) == ["code_prior"] and r["best_sampler"] == "code_prior"
        assert r["iwae_nll"] > 0 and r["no_density"] is None
    for r in board["runs"]:
        assert 0 <= r["prior"]["precision"] <= 1 and r["num_params"] > 0 and r["mse_per_image"] > 0
        # one classifier for the study: every fd is in the same features, and no run trains its own
        assert r["classifier"] == board["runs"][0]["classifier"] and r["classifier"]["steps"] == 20
        assert not os.path.exists(os.path.join(r["run_dir"], "classifier"))
    assert os.listdir(os.path.join(out, "classifier")) == [os.path.basename(board["runs"][0]["classifier"]["cache"])]
    rows = {row["preset"]: row for row in board["rows"]}
    nll = [r["iwae_nll"] for r in vae_runs]
    assert rows["quickstart"]["IWAE NLL"]["mean"] == pytest.approx(sum(nll) / 2)
    assert rows["quickstart"]["IWAE NLL"]["std"] == pytest.approx(abs(nll[0] - nll[1]) / math.sqrt(2))
    assert rows["ae_mnist5k"]["IWAE NLL"] is None and rows["ae_mnist5k"]["fd best"] is not None
    with open(os.path.join(results, "leaderboard.json")) as f:
        saved = json.load(f)
    assert saved["rows"] == board["rows"] and saved["budget"]["seeds"] == [0, 1] and saved["toolkit_version"]
    table = open(os.path.join(results, "leaderboard.md")).read()
    assert "| quickstart | vae | 2 |" in table and "| vqvae_mnist5k | vqvae | 2 | code_prior |" in table
    assert "| ae_mnist5k | ae | 2 | " in table and "| — |" in table and " ± " in table
    assert os.path.getsize(os.path.join(results, "leaderboard.png")) > 10_000
    # a second call reuses every finished (preset, seed): nothing is trained, fitted or scored again; narrowed
    # to one preset, its results keep the others' records (same budget)
    record = os.path.join(out, "quickstart", "seed0", "result.json")
    mtime = os.path.getmtime(record)
    again = leaderboard.main(["--quick", "--out", out, "--results", results, "--presets", "quickstart"])
    assert os.path.getmtime(record) == mtime and again["rows"] == board["rows"] and again["runs"] == board["runs"]
    # a fresh clone: a run's folder is gone, its record in the results json is reused and nothing is trained
    shutil.rmtree(os.path.join(out, "ae_mnist5k", "seed1"))
    clone = leaderboard.main(["--quick", "--out", out, "--results", results, "--presets", "ae_mnist5k"])
    assert clone["runs"][:2] == ae_runs and len(clone["runs"]) == 6   # this call's preset first, then those kept
    assert not os.path.exists(os.path.join(out, "ae_mnist5k", "seed1"))
    # --report writes the table from the finished runs alone: a missing seed is left out and said so
    report = leaderboard.main(["--quick", "--out", out, "--results", str(tmp_path / "new"), "--report"])
    assert [(r["key"]["preset"], r["key"]["seed"]) for r in report["runs"]] == [
        ("quickstart", 0), ("quickstart", 1), ("ae_mnist5k", 0), ("vqvae_mnist5k", 0), ("vqvae_mnist5k", 1)]
    assert not os.path.exists(os.path.join(out, "ae_mnist5k", "seed1"))
    table = open(os.path.join(tmp_path, "new", "leaderboard.md")).read()
    assert "5 of the 6 planned runs" in table
    assert "WARNING" not in table   # one classifier for every run
    one_seed = next(line for line in table.splitlines() if line.startswith("| ae_mnist5k | ae | 1 | "))
    assert "±" not in one_seed and report["rows"][1]["MSE/image"]["std"] is None   # no spread from one seed
    # --rescore-samples scores the named presets' finished runs again, trains and evaluates nothing: a one-level
    # model's samples did not change, so neither do its scores; the other presets' records are left alone
    vq_record = os.path.join(out, "vqvae_mnist5k", "seed0", "result.json")
    vq_mtime = os.path.getmtime(vq_record)
    rescored = leaderboard.main(["--quick", "--out", out, "--results", str(tmp_path / "rescored"),
                                 "--rescore-samples", "quickstart"])
    for old, new in zip(vae_runs, rescored["runs"][:2]):
        assert new["samples_scored_at"] == rescored["commit"] and "samples_scored_at" not in old
        assert new["prior"] == old["prior"] and new["samplers"] == old["samplers"]
        assert {k: v for k, v in new.items() if k != "samples_scored_at"} == old
    assert os.path.getmtime(record) > mtime and os.path.getmtime(vq_record) == vq_mtime
    with pytest.raises(SystemExit, match="not mnist5k presets: conv_sprites"):
        leaderboard.main(["--quick", "--out", out, "--results", results, "--rescore-samples", "conv_sprites"])
    # runs scored with classifiers that trained differently (clones on other machines): the table says so
    with open(os.path.join(results, "leaderboard.json")) as f:
        saved = json.load(f)
    quick0 = next(r for r in saved["runs"] if r["key"]["preset"] == "quickstart" and r["key"]["seed"] == 0)
    quick0["classifier"]["final_loss"] += 1e-3
    with open(os.path.join(results, "leaderboard.json"), "w") as f:
        json.dump(saved, f)
    shutil.rmtree(os.path.join(out, "quickstart", "seed0"))
    leaderboard.main(["--quick", "--out", out, "--results", results, "--report"])
    assert "fd columns come from 2 classifiers" in open(os.path.join(results, "leaderboard.md")).read()
    with pytest.raises(SystemExit, match="no finished run with these settings in"):
        leaderboard.main(["--quick", "--out", str(tmp_path / "empty"), "--results", str(tmp_path / "empty"),
                          "--report"])


def test_a_run_killed_between_its_last_checkpoint_and_its_summary_is_finished_not_trained_again(tmp_path):
    from experiments.common import finished_steps, summary_steps, train_to
    run_dir = str(tmp_path / "run")
    cfg = leaderboard.run_config("quickstart", 0, 6, 32, True)
    assert train_to(cfg, run_dir, 6) and finished_steps(run_dir) == [6] and summary_steps(run_dir) == 6
    assert not train_to(cfg, run_dir, 6)   # finished: nothing to do
    os.remove(os.path.join(run_dir, "summary.json"))   # what a study killed while the run finished leaves
    rows = open(os.path.join(run_dir, "metrics.jsonl")).read().splitlines()
    assert train_to(cfg, run_dir, 6) and summary_steps(run_dir) == 6 and finished_steps(run_dir) == [6]
    after = open(os.path.join(run_dir, "metrics.jsonl")).read().splitlines()
    # no training step ran again: the train rows are those of the first call (the restored state is evaluated)
    assert [r for r in after if '"train"' in r] == [r for r in rows if '"train"' in r]
    with open(os.path.join(run_dir, "summary.json")) as f:
        assert json.load(f)["steps"] == 6
