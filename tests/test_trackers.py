"""Experiment tracking (train.loggers): TensorBoard event files read back with TensorBoard's own
reader, against metrics.jsonl; optional trackers refused clearly when not installed."""

import importlib.util
import json
import os

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import vae.config
import vae.run
from vae.errors import ConfigError

TINY = {"train.steps": 4, "train.eval_every": 2, "train.log_every": 2, "model.hidden": (8,), "model.latent_dim": 2,
        "train.progress": False, "train.final_iwae_samples": 0, "train.num_samples": 4,
        "data.train_split": "train[:256]", "data.test_split": "test[:64]"}


def _events(out):
    acc = EventAccumulator(os.path.join(out, "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_event_files_hold_every_logged_scalar_and_the_figures(tmp_path):
    out = str(tmp_path / "run")
    vae.run.train(vae.config.Config().replace(**TINY), out)
    acc = _events(out)
    with open(os.path.join(out, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    for record in records:
        for key in ("loss", "elbo", "kl"):
            events = {e.step: e.value for e in acc.Scalars(f"{record['split']}/{key}")}
            assert events[record["step"]] == pytest.approx(record[key], rel=1e-6)
    assert sorted(e.step for e in acc.Scalars("test/elbo")) == [2, 4]
    images = acc.Tags()["images"]
    assert {"figures/samples", "figures/reconstructions"} <= set(images)
    assert acc.Images("figures/samples")[0].width > 0
    # resuming past the end purges nothing it keeps and adds the new steps once
    vae.run.train(vae.config.Config().replace(**{**TINY, "train.steps": 6}), out, resume=True)
    steps = [e.step for e in _events(out).Scalars("train/loss")]
    assert steps == [2, 4, 6]


def test_loggers_are_checked_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="train.loggers='csv' is not allowed"):
        vae.config.Config().replace(**{"train.loggers": ("jsonl", "csv")})
    if importlib.util.find_spec("wandb") is None:
        out = tmp_path / "w"
        with pytest.raises(ConfigError, match="asks for wandb, which is not installed here: pip install wandb"):
            vae.run.train(vae.config.Config().replace(**{**TINY, "train.loggers": ("jsonl", "wandb")}), str(out))
        assert not out.exists()
