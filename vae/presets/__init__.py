"""Presets: Python functions returning a full `Config`, one per named experiment, each with the
command that runs it and the result to expect in its docstring (the flax / big_vision style).

    vae train --preset NAME [--set section.field=value ...]

`mnist.py` holds the mnist5k presets, `sprites.py` the procedural-sprites ones, `zoo.py` the
autoencoder, distribution-matching, perceptual and adversarial variants on mnist5k, `zoo3.py` the
variants with other posteriors, geometries, bounds and hierarchies. Register one of
your own with `@vae.presets.register` (its docstring's first line describes it in `vae presets`).
"""

from __future__ import annotations

from vae.presets.registry import DEFAULT_PRESET, get_preset, list_presets, register
from vae.presets import mnist, sprites, zoo, zoo3  # noqa: F401, E402 - importing them registers their presets

__all__ = ["DEFAULT_PRESET", "get_preset", "list_presets", "register"]
