"""Pieces the built-in variants share: the Gaussian-latent VAE built from a ModelConfig, and
the ELBO with its KL schedule and free bits."""

from __future__ import annotations

from vae.config import Config, ConfigError, ModelConfig
from vae.models import VAE, Autoencoder, build_likelihood, build_networks, build_prior
from vae.models.flows import FlowVAE, encoder_latent_dim
from vae.objectives import ELBO, make_kl_schedule
from vae.registry import Variant

# The ELBO's fields: its KL schedule (all ELBO-trained variants), and free bits (those with a KL per latent).
SCHEDULE_READS = ("objective.beta", "objective.kl_schedule", "objective.kl_warmup_steps", "objective.kl_cycles",
                  "objective.kl_cycle_ratio")
ELBO_READS = (*SCHEDULE_READS, "objective.free_bits", "objective.free_bits_group")


def networks(config: ModelConfig, image_shape: tuple[int, int, int], out_channels: int, *,
             latent_dim: int | None = None, extra_channels: int = 0):
    """(encoder, decoder) of `config.architecture` for images (H, W, C); the encoder sees C +
    extra_channels channels (a conditional model's one-hot labels) and outputs `latent_dim`
    (default config.latent_dim) Gaussian parameters."""
    enc_shape = (*image_shape[:2], image_shape[2] + extra_channels)
    return build_networks(config.architecture, latent_dim or config.latent_dim, enc_shape, out_channels,
                          hidden=config.hidden, channels=config.channels, kernel_size=config.kernel_size,
                          activation=config.activation)


def gaussian_vae(config: ModelConfig, image_shape: tuple[int, int, int], num_classes: int | None = None, *,
                 conditional: bool = False) -> VAE:
    """The VAE a ModelConfig describes: its networks, prior and likelihood, a Gaussian posterior;
    conditioned on one-hot labels when `conditional` (Sohn et al. 2015)."""
    likelihood = build_likelihood(config)
    n_cls = int(num_classes) if conditional else 0
    encoder, decoder = networks(config, image_shape, likelihood.param_channels(image_shape[-1]), extra_channels=n_cls)
    return VAE(encoder=encoder, decoder=decoder, prior=build_prior(config, image_shape), likelihood=likelihood,
               latent_dim=config.latent_dim, num_classes=n_cls)


def flow_vae(config: ModelConfig, image_shape: tuple[int, int, int], *, flow: str, length: int,
             hidden: int = 1) -> FlowVAE:
    """The VAE a ModelConfig describes with a flow posterior of `length` `flow` steps (the
    encoder widened to output the flow's parameters or context; see `vae.models.flows`)."""
    likelihood = build_likelihood(config)
    encoder, decoder = networks(config, image_shape, likelihood.param_channels(image_shape[-1]),
                                latent_dim=encoder_latent_dim(flow, length, config.latent_dim, hidden))
    return FlowVAE(encoder=encoder, decoder=decoder, prior=build_prior(config, image_shape), likelihood=likelihood,
                   latent_dim=config.latent_dim, flow=flow, flow_length=length, flow_hidden=hidden)


def elbo_without_free_bits(config: Config, variant: Variant, total_steps: int) -> ELBO:
    """The ELBO with the config's KL schedule, for variants whose KL has no per-latent form."""
    o = config.objective
    schedule = make_kl_schedule(o.kl_schedule, total_steps=total_steps, warmup_steps=o.kl_warmup_steps,
                                num_cycles=o.kl_cycles, ratio=o.kl_cycle_ratio)
    return ELBO(beta=variant.value(config, "objective.beta"), kl_schedule=schedule)


def autoencoder(config: ModelConfig, image_shape: tuple[int, int, int]) -> Autoencoder:
    """The deterministic autoencoder a ModelConfig describes (its networks and likelihood)."""
    likelihood = build_likelihood(config)
    encoder, decoder = networks(config, image_shape, likelihood.param_channels(image_shape[-1]))
    return Autoencoder(encoder=encoder, decoder=decoder, likelihood=likelihood, latent_dim=config.latent_dim)


def normal_prior_only(config: Config) -> None:
    """Validation of the autoencoder variants: their codes are matched to (and sampled from)
    N(0, I), so a learned prior would be silently ignored."""
    if config.model.prior != "normal":
        raise ConfigError(f"model.prior={config.model.prior!r} is not allowed with model.name="
                          f"{config.model.name!r}: its codes are matched to N(0, I); use 'normal'")


def elbo(config: Config, variant: Variant, total_steps: int) -> ELBO:
    """The (beta-weighted) ELBO with the config's KL schedule and free bits."""
    o = config.objective
    schedule = make_kl_schedule(o.kl_schedule, total_steps=total_steps, warmup_steps=o.kl_warmup_steps,
                                num_cycles=o.kl_cycles, ratio=o.kl_cycle_ratio)
    return ELBO(beta=variant.value(config, "objective.beta"), kl_schedule=schedule, free_bits=o.free_bits,
                free_bits_group=o.free_bits_group)
