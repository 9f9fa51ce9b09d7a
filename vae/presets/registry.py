"""The registry of presets: names to functions returning a `Config`."""

from __future__ import annotations

import dataclasses
from typing import Callable

from vae import variants  # noqa: F401 - presets name variants: they must be registered first
from vae.config import Config
from vae.errors import ConfigError

_REGISTRY: dict[str, Callable[[], Config]] = {}
DEFAULT_PRESET = "quickstart"
RENAMED = {"hvae_mnist5k": "ladder_vae_mnist5k"}  # old name -> new name


def register(fn: Callable[[], Config]) -> Callable[[], Config]:
    """Decorator: registers `fn` under its name; its docstring's first line describes it."""
    _REGISTRY[fn.__name__] = fn
    return fn


def get_preset(name: str) -> Config:
    """The Config of preset `name`, with `name` set as its run name."""
    if name not in _REGISTRY:
        if name in RENAMED:
            raise ConfigError(f"preset {name!r} is now {RENAMED[name]!r} (the ladder VAE's model.name is 'ladder_vae')")
        raise ConfigError(f"unknown preset {name!r}; available presets: {', '.join(sorted(_REGISTRY))}")
    config = _REGISTRY[name]()
    return config if config.name == name else dataclasses.replace(config, name=name)


def list_presets() -> list[tuple[str, str]]:
    """(name, one-line description) for every preset, sorted by name."""
    return [(name, (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "")
            for name, fn in sorted(_REGISTRY.items())]
