"""`ladder_vae`: a two-level ladder VAE (Sønderby et al. 2016, sec. 2.2, eq. 18-19): latent_dim is the
top level, bottom_latent_dim the lower one; trained on the ELBO (KL warm-up via
objective.kl_schedule). Leaves out: batch normalization and hierarchies deeper than two
stochastic layers. See `vae.models.hierarchical`. It was called `hvae` before
session 7; that name now raises an error naming this variant and the Hamiltonian VAE."""

from vae.models import LadderVAE, StandardNormalPrior, build_likelihood
from vae.registry import Variant, register
from vae.variants.common import ELBO_READS, elbo, networks


def _model(config, image_shape, num_classes):
    likelihood = build_likelihood(config)
    encoder, decoder = networks(config, image_shape, likelihood.param_channels(image_shape[-1]),
                                latent_dim=config.bottom_latent_dim)
    return LadderVAE(encoder=encoder, decoder=decoder, prior=StandardNormalPrior(), likelihood=likelihood,
                     latent_dim=config.latent_dim, bottom_latent_dim=config.bottom_latent_dim)


VARIANT = register(Variant(
    name="ladder_vae",
    build_model=_model,
    build_objective=lambda config, *, dataset_size, total_steps: elbo(config, VARIANT, total_steps),
    reads=(*ELBO_READS, "model.bottom_latent_dim"),
    defaults={"objective.beta": 1.0},
    paper="Sønderby et al. 2016, Ladder Variational Autoencoders, sec. 2.2, eq. 18-19",
    summary="two-level ladder VAE",
))
