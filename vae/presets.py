"""The preset registry. Presets are Python functions returning a `Config`, defined in
`experiments/presets.py` (and anywhere else that calls `register`)."""

from __future__ import annotations

import dataclasses
import importlib
from typing import Callable

from vae.config import Config, ConfigError

_REGISTRY: dict[str, Callable[[], Config]] = {}
DEFAULT_PRESET = "quickstart"


def register(fn: Callable[[], Config]) -> Callable[[], Config]:
    """Decorator: registers `fn` under its name; its docstring's first line describes it."""
    _REGISTRY[fn.__name__] = fn
    return fn


def _load_builtin() -> None:
    importlib.import_module("experiments.presets")


def get_preset(name: str) -> Config:
    """The Config of preset `name`, with `name` set as its run name."""
    _load_builtin()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown preset {name!r}; available presets: {', '.join(sorted(_REGISTRY))}")
    config = _REGISTRY[name]()
    return config if config.name == name else dataclasses.replace(config, name=name)


def list_presets() -> list[tuple[str, str]]:
    """(name, one-line description) for every preset, sorted by name."""
    _load_builtin()
    return [(name, (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "") for name, fn in sorted(_REGISTRY.items())]
