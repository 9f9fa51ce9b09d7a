"""Models: networks, distributions, priors, likelihoods and the model classes behind one written
interface (`base.LatentVariableModel`). Which model a `model.name` builds is declared by its
variant (`vae/variants/`; `vae.build_model`)."""

from __future__ import annotations

from vae.config import ModelConfig
from vae.models.bits import bits_per_dim_convention, takes_8bit_offset
from vae.models.distributions import (
    BernoulliLikelihood,
    Categorical256,
    DiagonalGaussian,
    DiscretizedLogisticMixture,
    GaussianLikelihood,
    PointMass,
    StandardNormalPrior,
    bits_per_dim,
)
from vae.models.autoencoder import Autoencoder, NoDensityError
from vae.models.base import LatentVariableModel, VAEOutput
from vae.models.categorical import CategoricalPosterior, CategoricalVAE
from vae.models.flows import FlowPosterior, FlowVAE
from vae.models.hamiltonian import HamiltonianVAE
from vae.models.joint import JointPosterior, JointVAE
from vae.models.poincare import PoincareVAE, WrappedNormal
from vae.models.riemannian import RiemannianHamiltonianVAE
from vae.models.spherical import PowerSpherical, SphericalVAE, VonMisesFisher
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
from vae.models.vae import VAE
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


def for_data(model, values: str, vectors: bool = False):
    """`model` with its likelihood told what the data are: values, the data's kind as the model
    sees them ('8bit', 'binary' or 'continuous'; binarized data are 'binary'), and whether they
    are vectors. A Gaussian likelihood then reports bits/dim with the 8-bit dequantization offset
    on 8-bit or binary data only, and clips its mean to [0, 1] for images only. Parameters are
    unchanged (the likelihood keeps its place in the tree); other likelihoods and models without
    a `likelihood` field come back as they are."""
    likelihood = getattr(model, "likelihood", None)
    if not isinstance(likelihood, GaussianLikelihood):
        return model
    return model.clone(likelihood=likelihood.clone(levels_8bit=values != "continuous", unit_range=not vectors))


def build_prior(config: ModelConfig, image_shape):
    if config.prior == "mog":
        return MixtureOfGaussiansPrior(num_components=config.prior_components, latent_dim=config.latent_dim)
    if config.prior == "vamp":
        return VampPrior(image_shape=image_shape, num_components=config.prior_components)
    return StandardNormalPrior()


__all__ = [
    "LatentVariableModel", "VAE", "FlowVAE", "FlowPosterior", "CategoricalVAE", "CategoricalPosterior", "JointVAE",
    "JointPosterior", "SphericalVAE", "VonMisesFisher", "PowerSpherical",
    "PoincareVAE", "WrappedNormal", "HamiltonianVAE", "RiemannianHamiltonianVAE",
    "Autoencoder", "NoDensityError", "VAEOutput", "LadderVAE", "VQVAE", "build_likelihood", "build_prior",
    "DiagonalGaussian", "PointMass",
    "StandardNormalPrior", "MixtureOfGaussiansPrior", "VampPrior", "BernoulliLikelihood", "GaussianLikelihood",
    "DiscretizedLogisticMixture", "Categorical256", "bits_per_dim", "takes_8bit_offset", "bits_per_dim_convention",
    "for_data",
    "MLPEncoder", "MLPDecoder", "ConvEncoder", "ConvDecoder", "BurgessEncoder", "BurgessDecoder", "ResNetEncoder",
    "ResNetDecoder", "build_networks",
]
