"""`nvae`: a deep hierarchical VAE after NVAE (Vahdat & Kautz 2020): a bottom-up and a shared
top-down tower of residual cells, model.latent_scales resolutions with model.groups_per_scale
latent groups of model.group_channels channels each, the residual posterior (eq. 2), trained on
the ELBO (eq. 1) with the KL summed over groups; objective.kl_schedule=linear gives the KL
warm-up and objective.free_bits applies per group (free_bits_group counts groups). See
`vae.models.nvae` for which of NVAE's elements are in and which are not.

Defaults, from the authors' MNIST command: 2 latent scales, 10 groups per scale, 20 channels per
group, 1 cell per group. model.channels gives the widths: one pre- and one post-processing block
(halving / doubling H and W) between consecutive entries, the last one for the latent scales
(the authors' MNIST model is (16, 32, 64)); one residual cell per block (theirs has 3).
model.architecture, hidden, kernel_size and latent_dim are not used. Images are zero-padded to
multiples of 2^halvings and the output cropped back (28x28 -> 32x32 as NVAE pads MNIST). The
likelihood is any of the toolkit's: Bernoulli on binarized MNIST as the paper, the discretized
logistic mixture (model.likelihood=logistic_mixture) on 8-bit colour images for bits/dim."""

from vae.config import ConfigError
from vae.models import build_likelihood
from vae.models.nvae import NVAE
from vae.registry import Variant, register
from vae.variants.common import ELBO_READS, elbo

DEFAULTS = {"model.latent_scales": 2, "model.groups_per_scale": 10, "model.group_channels": 20,
            "model.cells_per_group": 1}


def _value(model_config, field: str) -> int:
    value = getattr(model_config, field)
    return DEFAULTS[f"model.{field}"] if value is None else value


def _model(config, image_shape, num_classes):
    likelihood = build_likelihood(config)
    return NVAE(likelihood=likelihood, image_shape=tuple(image_shape),
                out_channels=likelihood.param_channels(image_shape[-1]), channels=tuple(config.channels),
                latent_scales=_value(config, "latent_scales"), groups_per_scale=_value(config, "groups_per_scale"),
                group_channels=_value(config, "group_channels"), cells_per_group=_value(config, "cells_per_group"))


def _validate(config) -> None:
    if config.model.prior != "normal":
        raise ConfigError(f"model.prior={config.model.prior!r} is not allowed with model.name='nvae': its top group's "
                          "prior is N(0, I) and the lower groups' priors are learned; use 'normal'")


VARIANT = register(Variant(
    name="nvae",
    build_model=_model,
    build_objective=lambda config, *, dataset_size, total_steps: elbo(config, VARIANT, total_steps),
    reads=(*ELBO_READS, "model.latent_scales", "model.groups_per_scale", "model.group_channels",
           "model.cells_per_group"),
    defaults={"objective.beta": 1.0, **DEFAULTS},
    validate=_validate,
    paper="Vahdat & Kautz 2020, NVAE: A Deep Hierarchical Variational Autoencoder, eq. 1-2",
    summary="deep hierarchical VAE (NVAE): residual cells, latent groups at several resolutions",
))
