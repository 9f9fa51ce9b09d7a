"""The registry of model variants: each variant is declared once, by name, in its own module.

A `Variant` says how to build the model and the objective of `model.name` from a `Config`,
which paper (and equation) it implements, its paper defaults, and which config fields it
reads. The built-in variants live in `vae/variants/` (one module each, registered on import
of `vae`); a researcher registers their own the same way, from a notebook or a script:

    import vae
    vae.register_variant(vae.Variant(name="my_vae", build_model=..., build_objective=...,
                                     reads=("objective.beta",), paper="..."))

after which `model.name=my_vae` trains, evaluates and explores like a built-in. `vae.config`
checks `model.name` against this registry, and `vae.variants.build_model` /
`build_objective` dispatch through it.

This module is on the bottom floor: it imports nothing from `vae` but its errors, so the
configs can consult it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

from vae.errors import ConfigError

# Fields read by every variant through the shared loop (networks, likelihood, prior, data,
# optimizer, loop settings): never reported as unread.
SHARED_MODEL_FIELDS = ("name", "architecture", "latent_dim", "hidden", "channels", "kernel_size", "activation",
                       "likelihood", "sigma", "learn_sigma", "num_mixtures", "prior", "prior_components")
# Objective fields of the adversarial term any variant can add (objective.adversarial=patchgan):
# read by every variant when the term is on.
ADVERSARIAL_FIELDS = ("adversarial", "adversarial_start", "adversarial_weight", "disc_learning_rate", "disc_channels")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One model variant.

    name: the `model.name` that selects it.
    build_model(model_config, image_shape, num_classes) -> a `vae.models.LatentVariableModel`
      (image_shape: (H, W, C); num_classes: the dataset's label count or None).
    build_objective(config, *, dataset_size, total_steps) -> a `vae.objectives.Objective`
      (config: the whole `Config`; dataset_size: training examples; total_steps: train.steps).
    reads: the variant-specific config keys it reads, e.g. ('objective.beta',
      'model.bottom_latent_dim'); a run that changes another variant's key (e.g.
      objective.gamma for a plain VAE) is refused with a ConfigError naming it.
    defaults: paper defaults of keys whose config value is None, e.g. {'objective.beta': 4.0};
      read them with `value(config, key)`.
    paper: the citation and the equation implemented. summary: one line for tables.
    validate(config): extra checks, raising ConfigError (e.g. VQ-VAE's latent_dim % code_dim).
    conditional: the model conditions on labels (needs a labelled dataset).
    has_density: the model defines p(x) (so an IWAE log-likelihood estimate is meaningful).
    module: where it was declared (filled in by `register`), so a run of a variant declared
      outside the package can re-import it when the run is loaded.
    """

    name: str
    build_model: Callable[..., Any]
    build_objective: Callable[..., Any]
    reads: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    paper: str = ""
    summary: str = ""
    validate: Callable[[Any], None] | None = None
    conditional: bool = False
    has_density: bool = True
    module: str = ""

    def value(self, config: Any, key: str) -> Any:
        """config's value of `section.field`, or this variant's default where it is None."""
        section, field = key.split(".")
        value = getattr(getattr(config, section), field)
        return self.defaults.get(key) if value is None else value


_VARIANTS: dict[str, Variant] = {}
# Names that were taken back: asking for one explains where its model went.
RENAMED = {"hvae": "model.name='hvae' is ambiguous and no longer used: the two-level ladder VAE "
                   "(Sønderby et al. 2016) that had this name is 'ladder_vae'; in the literature (and pythae) "
                   "HVAE is the Hamiltonian VAE (Caterini et al. 2018), which is 'hamiltonian_vae'. "
                   "A run saved with 'hvae' trains the same model with model.name=ladder_vae"}


def register(variant: Variant, *, replace: bool = False) -> Variant:
    """Registers `variant` under its name and returns it. Registering a taken name raises
    ValueError unless replace=True (e.g. re-running a notebook cell)."""
    if not isinstance(variant, Variant):
        raise TypeError(f"register takes a vae.Variant, got {type(variant).__name__}")
    if not variant.name.isidentifier():
        raise ValueError(f"variant name {variant.name!r} must be a Python identifier (letters, digits, _)")
    if variant.name in _VARIANTS and not replace:
        raise ValueError(f"a variant named {variant.name!r} is registered already (in {_VARIANTS[variant.name].module});"
                         " pass replace=True to replace it")
    if not variant.module:
        variant = dataclasses.replace(variant, module=getattr(variant.build_model, "__module__", "") or "")
    _VARIANTS[variant.name] = variant
    return variant


def unregister(name: str) -> None:
    """Removes a variant (for tests and notebooks); unknown names are ignored."""
    _VARIANTS.pop(name, None)


def names() -> tuple[str, ...]:
    """Every registered `model.name`, in registration order."""
    return tuple(_VARIANTS)


def get(name: str) -> Variant:
    """The variant registered as `name`; ConfigError naming the registered ones otherwise."""
    try:
        return _VARIANTS[name]
    except KeyError:
        if name in RENAMED:
            raise ConfigError(RENAMED[name]) from None
        raise ConfigError(f"model.name={name!r} is not allowed; choose one of {', '.join(map(repr, _VARIANTS))} "
                          "(or register your own with vae.register_variant)") from None
