"""Run configuration: frozen dataclasses, `--set key=value` overrides and validation.

A `Config` fully determines a run together with its seed. Presets are Python functions that
return a `Config` (see `vae/presets/`); the command line can override any leaf with
`--set section.field=value`, e.g. `--set model.latent_dim=32 --set train.steps=500`.
`model.name` is checked against the variant registry (`vae.registry`), and a config that sets
a variant-specific field its variant does not read is refused.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

from vae import registry
from vae.config_sections import (
    DataConfig,
    ModelConfig,
    ObjectiveConfig,
    OptimConfig,
    TrainConfig,
    model_names,
)
from vae.errors import ConfigError

__all__ = ["Config", "DataConfig", "ModelConfig", "ObjectiveConfig", "OptimConfig", "TrainConfig", "ConfigError",
           "model_names", "apply_overrides", "check_variant_fields", "config_keys", "unread_fields"]


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything a run needs besides the seed's consequences. `name` names the run directory."""

    name: str = "quickstart"
    seed: int = 0
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    objective: ObjectiveConfig = dataclasses.field(default_factory=ObjectiveConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def __post_init__(self):
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r} is not allowed; it must be a non-negative int")
        variant = registry.get(self.model.name)
        if variant.validate is not None:
            variant.validate(self)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        """The config of a dict (a run's config.json); its 'dataset' entry, a record of the data a
        run read (written by the loop), is not a setting and is skipped."""
        return _from_dict(cls, {k: v for k, v in d.items() if k != "dataset"}, prefix="")

    def replace(self, **overrides: Any) -> "Config":
        """Returns a copy with `section.field` overrides applied: `cfg.replace(**{"train.steps": 10})`."""
        return apply_overrides(self, [f"{k}={_to_text(v)}" for k, v in overrides.items()])


def unread_fields(config: "Config") -> list[str]:
    """Variant-specific keys (every objective.* field, and model.* fields outside the shared
    networks/likelihood/prior ones) that differ from their defaults but that the variant of
    `config.model.name` does not read."""
    variant = registry.get(config.model.name)
    unread = []
    adversarial = registry.ADVERSARIAL_FIELDS if config.objective.adversarial != "none" else ("adversarial",)
    for section, shared in (("model", registry.SHARED_MODEL_FIELDS), ("objective", adversarial)):
        value, default = getattr(config, section), type(getattr(config, section))()
        for f in dataclasses.fields(value):
            key = f"{section}.{f.name}"
            if f.name in shared or key in variant.reads:
                continue
            if getattr(value, f.name) != getattr(default, f.name):
                unread.append(key)
    return unread


def check_variant_fields(config: "Config") -> "Config":
    """`config`, or a ConfigError when it sets a field its variant ignores (a silent no-op
    otherwise). Checked when a config is built to run (overrides, presets, `vae.run.train`),
    not when a saved one is read back, so run directories of earlier versions still load."""
    unread = unread_fields(config)
    adversarial = [k for k in unread if k in ("objective.adversarial_start", "objective.adversarial_weight")]
    if adversarial:
        raise ConfigError(f"{adversarial[0]} is set, but objective.adversarial='none'; set "
                          "objective.adversarial=patchgan to add the adversarial term, or remove the setting")
    if unread:
        reads = ", ".join(registry.get(config.model.name).reads) or "no variant-specific fields"
        raise ConfigError(f"{unread[0]} is set, but model.name={config.model.name!r} does not read it (it reads "
                          f"{reads}); remove the setting or choose the variant that uses it")
    return config


def _to_text(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


def _from_dict(cls, d: dict, prefix: str):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"unknown config key {prefix + unknown[0]!r}; allowed: {', '.join(sorted(prefix + n for n in names))}")
    kwargs = {}
    for name, value in d.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _from_dict(hint, value, prefix=f"{prefix}{name}.")
        elif _is_tuple(hint) and value is not None:
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _is_tuple(hint) -> bool:
    return typing.get_origin(hint) is tuple


def _parse_value(key: str, text: str, hint) -> Any:
    """Parses command-line text into the field's type, with an error naming the key."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if text.lower() in ("none", "null", ""):
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _parse_value(key, text, inner)
    try:
        if hint is bool:
            lowered = text.lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if hint is int:
            return int(text)
        if hint is float:
            return float(text)
        if hint is str:
            return text
        if origin is tuple:
            inner = args[0]
            parts = [p for p in text.strip("()[] ").split(",") if p.strip()]
            return tuple(_parse_value(key, p.strip(), inner) for p in parts)
    except ValueError:
        raise ConfigError(f"{key}={text!r} is not allowed; expected {_type_name(hint)}") from None
    raise ConfigError(f"{key}: cannot parse values of type {hint}")


def _type_name(hint) -> str:
    if typing.get_origin(hint) is tuple:
        return f"a comma-separated list of {typing.get_args(hint)[0].__name__}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


def config_keys(config: Config) -> list[str]:
    """Every overridable key, e.g. `model.latent_dim`."""
    keys = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            keys += [f"{f.name}.{g.name}" for g in dataclasses.fields(value)]
        else:
            keys.append(f.name)
    return keys


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Applies `section.field=value` strings; unknown keys and bad values raise ConfigError.
    The whole config is checked once, after every override (so their order does not matter)."""
    top: dict[str, Any] = {}
    sections = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
                if dataclasses.is_dataclass(getattr(config, f.name))}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.field=value, e.g. train.steps=500")
        key, text = item.split("=", 1)
        key = key.strip()
        path = key.split(".")
        if len(path) > 2 or key not in config_keys(config):
            raise ConfigError(f"unknown config key {key!r}; allowed keys: {', '.join(config_keys(config))}")
        if len(path) == 1:
            top[key] = _parse_value(key, text, typing.get_type_hints(Config)[key])
        else:
            section_name, field = path
            section = sections[section_name]
            hint = typing.get_type_hints(type(section))[field]
            sections[section_name] = dataclasses.replace(section, **{field: _parse_value(key, text, hint)})
    return check_variant_fields(dataclasses.replace(config, **top, **sections))
