"""The built-in model variants, one module each, registered by name on import (see
`vae.registry`). `build_model` and `build_objective` dispatch on `model.name` through the
registry, so a variant registered from a notebook builds the same way. `gaussian_vae` and
`networks` (in `common`) are the building blocks a variant of your own can reuse.

    vae, beta_vae, cvae          the ELBO (Kingma & Welling 2014; Higgins 2017; Sohn 2015)
    annealed_vae                 controlled capacity (Burgess 2018)
    beta_tcvae, factor_vae       total correlation (Chen 2018; Kim & Mnih 2018)
    dip_vae_i, dip_vae_ii        covariance matching (Kumar 2018)
    iwae                         importance-weighted bound (Burda 2016)
    miwae, piwae, ciwae          multi-sample bounds (Rainforth 2018)
    vae_nf, vae_iaf              flow posteriors: planar / radial (Rezende 2015), IAF (Kingma 2016)
    categorical_vae, joint_vae   categorical latents, Gumbel-softmax (Jang 2017; Maddison 2017);
                                 continuous + discrete with capacities (Dupont 2018)
    svae                         hyperspherical latents, vMF or power spherical (Davidson 2018; De Cao 2020)
    pvae                         hyperbolic latents, Poincaré ball, wrapped normal (Mathieu 2019)
    hamiltonian_vae, rhvae       tempered leapfrog steps on the posterior sample (Caterini 2018), with a
                                 learned Riemannian metric (Chadebec 2020)
    vqvae                        vector quantization (van den Oord 2017)
    ladder_vae                   two-level ladder VAE (Sønderby 2016)
    nvae                         deep hierarchical VAE, residual cells, latent groups at several scales (Vahdat 2020)
    ae, wae, swae, rae_l2, rae_gp, aae   deterministic autoencoders, no density (Tolstikhin 2018;
                                 Kolouri 2019; Ghosh 2020; Makhzani 2016)
    info_vae                     MMD on the aggregate posterior (Zhao 2019)
    logcosh_vae, msssim_vae, dfc_vae     other reconstruction costs (Chen 2019; Snell 2017; Hou 2017)
    vae_gan                      learned similarity (Larsen 2016)
and, on any of them, objective.adversarial=patchgan (Esser et al. 2021).
"""

from __future__ import annotations

import importlib
import pkgutil

from vae import registry
from vae.config import Config, ModelConfig
from vae.objectives import AdversarialTerm
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
    (default config.train.steps) the cyclical KL schedule. With objective.adversarial=patchgan
    the variant's objective is wrapped in `vae.objectives.AdversarialTerm`."""
    variant = registry.get(config.model.name)
    steps = config.train.steps if total_steps is None else total_steps
    objective = variant.build_objective(config, dataset_size=dataset_size, total_steps=steps)
    o = config.objective
    if o.adversarial == "patchgan":  # the adaptive PatchGAN term, on any variant (Esser et al. 2021)
        objective = AdversarialTerm(objective, start=o.adversarial_start, weight=o.adversarial_weight,
                                    disc_learning_rate=o.disc_learning_rate,
                                    **({"disc_channels": o.disc_channels} if o.disc_channels else {}))
    return objective


__all__ = ["build_model", "build_objective", "gaussian_vae", "networks", "ELBO_READS"]
