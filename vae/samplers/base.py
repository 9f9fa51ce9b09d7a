"""The sampler interface and its registry.

A sampler is a density over a trained model's latent space, fitted after training to the
encoder's outputs on the training split (Ghosh et al. 2020, "ex-post density estimation"; Dai &
Wipf 2019), or a prior over the code indices of a discrete model. Each is a frozen dataclass of
its options with three pure functions, the optax way (state in, state out, keys as arguments):

    fit(data, key)                     -> (state, report)  data: [N, d] float32 latents, or
                                                            [N, L] int32 codes for kind 'codes'
    sample(state, key, num, temperature) -> [num, d] latents (or [num, L] codes), jittable
    log_prob(state, z)                 -> [num] log-density, or None where there is none

`state` is a dict of arrays (nested dicts allowed: flax params), saved as .npz without pickle;
`report` is a small JSON-able dict of what fitting measured (e.g. held-out log-likelihood).
`uses_model` samplers ('normal', 'vamp') have no state of their own: they draw from the
model's prior, and the caller does that (`vae.samplers.store`).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, ClassVar

import jax
import numpy as np


class SamplerError(ValueError):
    """A sampler request that cannot be met: an unknown name or option, a model it does not fit."""


@dataclasses.dataclass(frozen=True)
class LatentSampler:
    """Base class: options are the dataclass fields (parsed from `--set key=value`)."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "continuous"   # 'continuous' ([N, d] float latents) or 'codes' ([N, L] ints)
    uses_model: ClassVar[bool] = False   # draws from the model's own prior (no fitted state)
    summary: ClassVar[str] = ""
    paper: ClassVar[str] = ""

    def check_model(self, model: Any) -> None:
        """Raises SamplerError when this sampler does not apply to `model`: by default, a fitted
        density over continuous latents refuses a model whose latents are codes."""
        if self.kind == "continuous" and not self.uses_model and hasattr(model, "encode_codes"):
            raise SamplerError(f"this model's latents are codes ({type(model).__name__}); sampler {self.name!r} "
                               f"fits continuous latents: use code_prior")

    def bind(self, model: Any) -> "LatentSampler":
        """This sampler with what it takes from `model` (a curvature, a codebook size); SamplerError
        when it does not apply to it."""
        self.check_model(model)
        return self

    def fit(self, data: np.ndarray, key: jax.Array) -> tuple[dict, dict]:
        raise NotImplementedError

    def sample(self, state: dict, key: jax.Array, num: int, temperature: float = 1.0) -> jax.Array:
        raise NotImplementedError

    def log_prob(self, state: dict, z: jax.Array) -> jax.Array | None:
        return None

    def options(self) -> dict:
        """The options as a JSON-able dict (tuples as lists)."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}


_SAMPLERS: dict[str, type[LatentSampler]] = {}


def register_sampler(cls: type[LatentSampler]) -> type[LatentSampler]:
    """Class decorator: makes `cls` available by `cls.name` (once)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _SAMPLERS and _SAMPLERS[cls.name] is not cls:
        raise ValueError(f"a sampler named {cls.name!r} is already registered ({_SAMPLERS[cls.name].__name__})")
    _SAMPLERS[cls.name] = cls
    return cls


def sampler_names() -> tuple[str, ...]:
    return tuple(sorted(_SAMPLERS))


def _parse(field: dataclasses.Field, hint: Any, text: str) -> Any:
    origin = typing.get_origin(hint)
    try:
        if hint is bool:
            if text.lower() in ("true", "1", "yes"):
                return True
            if text.lower() in ("false", "0", "no"):
                return False
            raise ValueError(text)
        if hint in (int, float, str):
            return hint(text)
        if origin is tuple:
            inner = typing.get_args(hint)[0]
            return tuple(inner(t) for t in text.replace("(", "").replace(")", "").split(",") if t.strip())
    except ValueError:
        raise SamplerError(f"option {field.name}={text!r} is not a valid {getattr(hint, '__name__', hint)}") from None
    raise SamplerError(f"option {field.name} of type {hint} cannot be set from text")


def make_sampler(name: str, overrides: dict[str, Any] | list[str] | None = None) -> LatentSampler:
    """The sampler `name` with options from `overrides` ({'components': 10} or ['components=10'])."""
    if name not in _SAMPLERS:
        raise SamplerError(f"unknown sampler {name!r}; choose one of {', '.join(sampler_names())}")
    cls = _SAMPLERS[name]
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    items = overrides or {}
    if isinstance(items, (list, tuple)):
        pairs = {}
        for item in items:
            if "=" not in item:
                raise SamplerError(f"sampler option {item!r} must be KEY=VALUE")
            key, value = item.split("=", 1)
            pairs[key.strip()] = value.strip()
        items = pairs
    kwargs = {}
    for key, value in items.items():
        if key not in fields:
            allowed = ", ".join(fields) or "none"
            raise SamplerError(f"sampler {name!r} has no option {key!r}; its options: {allowed}")
        kwargs[key] = _parse(fields[key], hints[key], value) if isinstance(value, str) else value
        if isinstance(kwargs[key], list):
            kwargs[key] = tuple(kwargs[key])
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise SamplerError(f"sampler {name!r}: {err}") from None


def positive(name: str, value: float) -> None:
    """Option check shared by the samplers' __post_init__."""
    if not value > 0:
        raise SamplerError(f"{name}={value} must be > 0")


FIT_ON = ("mean", "sample")


def check_fit_on(value: str) -> None:
    """fit_on: what a continuous sampler is fitted to: posterior means, or one z ~ q(z|x) per image."""
    if value not in FIT_ON:
        raise SamplerError(f"fit_on={value!r} is not allowed; choose {' or '.join(FIT_ON)}")
