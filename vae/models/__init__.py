"""Models: networks, distributions and the VAE that composes them; `build_model` from a config."""

from __future__ import annotations

from vae.config import ModelConfig
from vae.models.distributions import (
    BernoulliLikelihood,
    DiagonalGaussian,
    GaussianLikelihood,
    StandardNormalPrior,
)
from vae.models.networks import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder
from vae.models.vae import VAE, VAEOutput


def build_model(config: ModelConfig, image_shape: tuple[int, int, int]) -> VAE:
    """The VAE a ModelConfig describes, sized for images of `image_shape` (H, W, C)."""
    image_shape = tuple(int(s) for s in image_shape)
    if config.architecture == "mlp":
        encoder = MLPEncoder(config.latent_dim, hidden=config.hidden)
        decoder = MLPDecoder(image_shape, hidden=tuple(reversed(config.hidden)))
    else:
        encoder = ConvEncoder(config.latent_dim, channels=config.channels, kernel_size=config.kernel_size,
                              hidden=config.hidden[0] if config.hidden else None)
        decoder = ConvDecoder(image_shape, channels=tuple(reversed(config.channels)), kernel_size=config.kernel_size,
                              hidden=config.hidden[0] if config.hidden else None)
    if config.likelihood == "bernoulli":
        likelihood = BernoulliLikelihood()
    else:
        likelihood = GaussianLikelihood(sigma=config.sigma)
    return VAE(encoder=encoder, decoder=decoder, prior=StandardNormalPrior(), likelihood=likelihood,
               latent_dim=config.latent_dim)


__all__ = [
    "VAE", "VAEOutput", "build_model", "DiagonalGaussian", "StandardNormalPrior", "BernoulliLikelihood",
    "GaussianLikelihood", "MLPEncoder", "MLPDecoder", "ConvEncoder", "ConvDecoder",
]
