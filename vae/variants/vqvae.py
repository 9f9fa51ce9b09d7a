"""`vqvae`: VQ-VAE (van den Oord et al. 2017, eq. 3): `latent_dim / code_dim` codes from a codebook
of `num_codes`, straight-through gradients, EMA codebook (appendix A.1, decay 0.99),
commitment 0.25. Leaves out: the autoregressive prior over codes (samples draw codes
uniformly). See `vae.models.vqvae` and `vae.objectives.vq`."""

from vae.config import ConfigError
from vae.models import VQVAE, build_likelihood
from vae.objectives import VQObjective
from vae.registry import Variant, register
from vae.variants.common import networks


def _model(config, image_shape, num_classes):
    likelihood = build_likelihood(config)
    encoder, decoder = networks(config, image_shape, likelihood.param_channels(image_shape[-1]))
    return VQVAE(encoder=encoder, decoder=decoder, likelihood=likelihood, latent_dim=config.latent_dim,
                 num_codes=config.num_codes, code_dim=config.code_dim)


def _validate(config) -> None:
    m = config.model
    if m.latent_dim % m.code_dim:
        raise ConfigError(f"model.latent_dim={m.latent_dim} must be a multiple of model.code_dim={m.code_dim} "
                          f"for vqvae")


VARIANT = register(Variant(
    name="vqvae",
    build_model=_model,
    build_objective=lambda config, *, dataset_size, total_steps: VQObjective(
        commitment=config.objective.vq_commitment, decay=config.objective.vq_decay),
    reads=("model.num_codes", "model.code_dim", "objective.vq_commitment", "objective.vq_decay"),
    paper="van den Oord et al. 2017, Neural Discrete Representation Learning, eq. 3 and appendix A.1",
    summary="VQ-VAE (EMA codebook)",
    validate=_validate,
))
