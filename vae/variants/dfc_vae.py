"""`dfc_vae`: the deep-feature-consistent VAE (Hou et al. 2017, eq. 3-5): the reconstruction
term is 1/2 ||phi_l(x) - phi_l(x_hat)||^2 summed over feature layers l, weighted by
`objective.feature_weight` (the paper's beta = 0.5), plus the KL (alpha = 1).

The paper's phi is an ImageNet VGG-19 (relu1_1, relu2_1, relu3_1). Offline there are no such
weights, so phi here is the convolutional stack of the toolkit's own dataset classifier
(`vae.models.classifier_net.ConvFeatures`: two 3x3 conv layers), trained on the run's training
split before the first step (`vae.run` does it; 1,500 steps, cached in RUN_DIR/classifier/, the
same classifier the sample-quality metrics use) and frozen. The dataset must have labels.
Each layer's error is summed over its elements (the paper averages), so that the term is on
the scale of a per-image log-likelihood next to a KL in nats. The reported ELBO is the bound
under the config's likelihood.

Any other feature function: register a variant whose objective is
`dfc_objective(feature_fn, feature_init)`, with feature_fn(feature_params, x [B, H, W, C]) ->
list of arrays [B, ...] and feature_init(rng, image_shape) -> feature_params (kept frozen in
the train state's extra; return {} for a function without parameters).
"""

import jax.numpy as jnp

from vae.models.classifier_net import DEFAULT_CHANNELS, ConvFeatures
from vae.objectives import PerceptualVAE
from vae.registry import Variant, register
from vae.variants.common import gaussian_vae


def dfc_objective(feature_fn, feature_init=None, *, beta: float = 1.0, feature_weight: float = 0.5,
                  trained_features: str | None = None) -> PerceptualVAE:
    """A DFC-VAE objective over any feature function (see the module docstring)."""
    return PerceptualVAE(cost="features", beta=beta, feature_weight=feature_weight, feature_fn=feature_fn,
                         feature_init=feature_init, trained_features=trained_features)


def classifier_features(channels=DEFAULT_CHANNELS):
    """(feature_fn, feature_init) of the dataset classifier's conv stack."""
    net = ConvFeatures(tuple(channels))

    def feature_fn(params, x):
        return net.apply({"params": params}, x)

    def feature_init(rng, image_shape):
        return net.init(rng, jnp.zeros((1, *image_shape)))["params"]

    return feature_fn, feature_init


def _objective(config, *, dataset_size, total_steps):
    feature_fn, feature_init = classifier_features()
    return dfc_objective(feature_fn, feature_init, beta=VARIANT.value(config, "objective.beta"),
                         feature_weight=config.objective.feature_weight, trained_features="classifier")


VARIANT = register(Variant(
    name="dfc_vae",
    build_model=lambda config, image_shape, num_classes: gaussian_vae(config, image_shape),
    build_objective=_objective,
    reads=("objective.beta", "objective.feature_weight"),
    defaults={"objective.beta": 1.0},
    paper="Hou et al. 2017, Deep Feature Consistent Variational Autoencoder, eq. 3-5",
    summary="DFC-VAE (features of the dataset classifier)",
))
