"""The built-in model variants, one module each, registered by name on import (see
`vae.registry`). `build_model` and `build_objective` dispatch on `model.name` through the
registry, so a variant registered from a notebook builds the same way. `gaussian_vae` and
`networks` (in `common`) are the building blocks a variant of your own can reuse.

    vae, beta_vae, cvae          the ELBO (Kingma & Welling 2014; Higgins 2017; Sohn 2015)
    annealed_vae                 controlled capacity (Burgess 2018)
    beta_tcvae, factor_vae       total correlation (Chen 2018; Kim & Mnih 2018)
    dip_vae_i, dip_vae_ii        covariance matching (Kumar 2018)
    iwae                         importance-weighted bound (Burda 2016)
    vqvae                        vector quantization (van den Oord 2017)
    hvae                         two-level ladder VAE (Sønderby 2016)
"""

from __future__ import annotations

import importlib
import pkgutil

from vae import registry
from vae.config import Config, ModelConfig
from vae.variants.common import ELBO_READS, gaussian_vae, networks

# Every module of this package but `common` declares variants: importing it registers them, so
# adding a built-in variant is adding a file here (in name order, for a stable registry order).
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "common"):
    importlib.import_module(f"{__name__}.{_module}")


def build_model(config: ModelConfig, image_shape: tuple[int, int, int], num_classes: int | None = None):
    """The model of variant `config.name`, sized for images of `image_shape` (H, W, C).

    num_classes: the dataset's label count; needed by conditional variants (`cvae`)."""
    variant = registry.get(config.name)
    if variant.conditional and not num_classes:
        raise ValueError(f"model.name={config.name!r} needs a labelled dataset (num_classes)")
    return variant.build_model(config, tuple(int(s) for s in image_shape), num_classes)


def build_objective(config: Config, *, dataset_size: int = 60_000, total_steps: int | None = None):
    """The objective of variant `config.model.name` with the config's hyperparameters (None:
    the variant's paper default). dataset_size feeds beta-TCVAE's estimator; total_steps
    (default config.train.steps) the cyclical KL schedule."""
    variant = registry.get(config.model.name)
    steps = config.train.steps if total_steps is None else total_steps
    return variant.build_objective(config, dataset_size=dataset_size, total_steps=steps)


__all__ = ["build_model", "build_objective", "gaussian_vae", "networks", "ELBO_READS"]
