"""Every preset trains a few steps through the shared loop without NaN and lowers its loss."""

import json

import numpy as np
import pytest

from vae.config import apply_overrides
from vae.presets import get_preset, list_presets
from vae.run import train

REQUIRED = {"quickstart", "vae_mnist5k", "iwae_mnist5k", "beta_vae_sprites", "factor_vae_sprites",
            "beta_tcvae_sprites", "annealed_vae_sprites", "dip_vae_sprites", "cvae_mnist5k", "vamp_mnist5k",
            "vqvae_mnist5k", "hvae_mnist5k", "mnist_iwae_burda"}


def test_required_presets_exist():
    assert REQUIRED <= {name for name, _ in list_presets()}


def _short(name: str) -> list[str]:
    cfg = get_preset(name)
    sprites = cfg.data.name == "sprites"
    overrides = ["train.steps=40", "train.log_every=10", "train.eval_every=40", "train.final_iwae_samples=0",
                 "train.num_samples=4", "train.progress=false", "train.eval_batch_size=64",
                 f"train.batch_size={32 if sprites else 64}",
                 "data.train_split=train[:1024]", "data.test_split=test[:64]", "optim.warmup_steps=0",
                 "optim.learning_rate=1e-3"]
    if cfg.data.name not in ("mnist5k", "sprites"):  # needs a download: run the same model on mnist5k
        overrides.append("data.name=mnist5k")
    if name == "vamp_mnist5k":
        overrides.append("model.prior_components=50")
    if name == "annealed_vae_sprites":
        overrides += ["objective.gamma=10", "objective.capacity_steps=40"]
    return overrides


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_preset_trains_and_lowers_its_loss(tmp_path, name):
    cfg = apply_overrides(get_preset(name), _short(name))
    summary = train(cfg, str(tmp_path / name))
    records = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    train_lines = [r for r in records if r["split"] == "train"]
    for r in records:
        assert all(np.isfinite(v) for v in r.values() if isinstance(v, float)), r
    first, last = train_lines[0], train_lines[-1]
    key = "loss" if name != "annealed_vae_sprites" else "recon"
    assert last[key] < first[key], (name, first[key], last[key])
    assert np.isfinite(summary["test_elbo"])
