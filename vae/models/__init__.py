"""Models: networks, distributions, priors and the VAE variants; `build_model` from a config."""

from __future__ import annotations

from vae.config import ModelConfig
from vae.models import networks as _networks
from vae.models.distributions import (
    BernoulliLikelihood,
    Categorical256,
    DiagonalGaussian,
    DiscretizedLogisticMixture,
    GaussianLikelihood,
    StandardNormalPrior,
    bits_per_dim,
)
from vae.models.hierarchical import LadderVAE
from vae.models.networks import (
    BurgessDecoder,
    BurgessEncoder,
    ConvDecoder,
    ConvEncoder,
    MLPDecoder,
    MLPEncoder,
    ResNetDecoder,
    ResNetEncoder,
    build_networks,
)
from vae.models.priors import MixtureOfGaussiansPrior, VampPrior
from vae.models.vae import VAE, VAEOutput
from vae.models.vqvae import VQVAE


def build_likelihood(config: ModelConfig):
    """The likelihood module a ModelConfig names."""
    if config.likelihood == "bernoulli":
        return BernoulliLikelihood()
    if config.likelihood == "gaussian":
        return GaussianLikelihood(sigma=config.sigma, learn_sigma=config.learn_sigma)
    if config.likelihood == "logistic_mixture":
        return DiscretizedLogisticMixture(num_mixtures=config.num_mixtures)
    return Categorical256()


def build_prior(config: ModelConfig, image_shape):
    if config.prior == "mog":
        return MixtureOfGaussiansPrior(num_components=config.prior_components, latent_dim=config.latent_dim)
    if config.prior == "vamp":
        return VampPrior(image_shape=image_shape, num_components=config.prior_components)
    return StandardNormalPrior()


def build_model(config: ModelConfig, image_shape: tuple[int, int, int], num_classes: int | None = None):
    """The model a ModelConfig describes, sized for images of `image_shape` (H, W, C).

    num_classes: the label count, needed by `cvae` (conditions on one-hot labels).
    """
    image_shape = tuple(int(s) for s in image_shape)
    likelihood = build_likelihood(config)
    out_channels = likelihood.param_channels(image_shape[-1])
    conditional = config.name == "cvae"
    if conditional and not num_classes:
        raise ValueError("model.name='cvae' needs a labelled dataset (num_classes)")
    n_cls = int(num_classes) if conditional else 0
    enc_shape = (*image_shape[:2], image_shape[2] + n_cls)
    enc_latent = config.bottom_latent_dim if config.name == "hvae" else config.latent_dim
    encoder, decoder = _networks.build_networks(
        config.architecture, enc_latent, enc_shape, out_channels, hidden=config.hidden, channels=config.channels,
        kernel_size=config.kernel_size, activation=config.activation)
    if config.name == "vqvae":
        return VQVAE(encoder=encoder, decoder=decoder, likelihood=likelihood, latent_dim=config.latent_dim,
                     num_codes=config.num_codes, code_dim=config.code_dim)
    if config.name == "hvae":
        return LadderVAE(encoder=encoder, decoder=decoder, prior=StandardNormalPrior(), likelihood=likelihood,
                         latent_dim=config.latent_dim, bottom_latent_dim=config.bottom_latent_dim)
    if conditional and config.prior == "vamp":
        raise ValueError("model.prior='vamp' is not supported with model.name='cvae'")
    return VAE(encoder=encoder, decoder=decoder, prior=build_prior(config, image_shape), likelihood=likelihood,
               latent_dim=config.latent_dim, num_classes=n_cls)


__all__ = [
    "VAE", "VAEOutput", "LadderVAE", "VQVAE", "build_model", "build_likelihood", "build_prior", "DiagonalGaussian",
    "StandardNormalPrior", "MixtureOfGaussiansPrior", "VampPrior", "BernoulliLikelihood", "GaussianLikelihood",
    "DiscretizedLogisticMixture", "Categorical256", "bits_per_dim",
    "MLPEncoder", "MLPDecoder", "ConvEncoder", "ConvDecoder", "BurgessEncoder", "BurgessDecoder", "ResNetEncoder",
    "ResNetDecoder", "build_networks",
]
