import pytest

from vae.config import Config, ConfigError, apply_overrides, config_keys
from vae.presets import get_preset, list_presets


def test_overrides_parse_each_type():
    cfg = apply_overrides(Config(), ["model.latent_dim=32", "optim.learning_rate=3e-4", "model.hidden=64,32",
                                     "train.progress=false", "optim.clip_norm=1.5", "seed=7", "data.name=sprites"])
    assert cfg.model.latent_dim == 32
    assert cfg.optim.learning_rate == pytest.approx(3e-4)
    assert cfg.model.hidden == (64, 32)
    assert cfg.train.progress is False
    assert cfg.optim.clip_norm == 1.5
    assert cfg.seed == 7 and cfg.data.name == "sprites"
    assert apply_overrides(cfg, ["optim.clip_norm=none"]).optim.clip_norm is None


def test_unknown_key_names_the_key_and_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"unknown config key 'model.latnet_dim'.*model\.latent_dim"):
        apply_overrides(Config(), ["model.latnet_dim=3"])
    with pytest.raises(ConfigError, match="section.field=value"):
        apply_overrides(Config(), ["model.latent_dim"])


@pytest.mark.parametrize("override, message", [
    ("model.latent_dim=-4", r"model.latent_dim=-4 .* > 0"),
    ("model.latent_dim=abc", r"model.latent_dim='abc' .* integer"),
    ("optim.learning_rate=0", r"optim.learning_rate=0.0 .* > 0"),
    ("train.batch_size=0", r"train.batch_size=0 .* > 0"),
    ("objective.beta=-1", r"objective.beta=-1.0 .* > 0"),
    ("objective.beta=0", r"objective.beta=0.0 .* > 0"),
    ("train.devices=-2", r"train.devices=-2 .* >= 0"),
    ("train.on_nonfinite=ignore", r"train.on_nonfinite='ignore'.*'stop', 'skip'"),
    ("train.batch_in_step=yes", r"train.batch_in_step='yes'.*'auto', 'on', 'off'"),
    ("train.batch_splits=-1", r"train.batch_splits=-1 .* int >= 0"),
    ("train.batch_splits=3", r"train.batch_splits=3 does not divide train.batch_size=128"),
    ("model.architecture=rnn", r"model.architecture='rnn'.*'mlp', 'conv'"),
    ("data.binarize=maybe", r"data.binarize='maybe'.*'dynamic'"),
    ("model.hidden=64,-1", r"model.hidden=\(64, -1\)"),
])
def test_bad_values_are_refused_with_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(Config(), [override])


def test_json_round_trip_and_keys():
    cfg = apply_overrides(Config(), ["model.hidden=10,20", "train.steps=5"])
    import json

    again = Config.from_dict(json.loads(cfg.to_json()))
    assert again == cfg
    assert "model.latent_dim" in config_keys(cfg) and "seed" in config_keys(cfg)
    with pytest.raises(ConfigError, match="unknown config key 'model.bogus'"):
        Config.from_dict({"model": {"bogus": 1}})


def test_presets_listed_and_named():
    names = [n for n, _ in list_presets()]
    assert "quickstart" in names
    assert all(doc for _, doc in list_presets())
    cfg = get_preset("quickstart")
    assert cfg.name == "quickstart" and cfg.data.name == "mnist5k" and cfg.model.architecture == "mlp"
    with pytest.raises(ConfigError, match=r"unknown preset 'quikstart'; available presets: .*quickstart"):
        get_preset("quikstart")
