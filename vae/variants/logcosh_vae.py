"""`logcosh_vae`: the VAE with a log-cosh reconstruction cost (Chen et al. 2019):
sum over pixels of 1/a log cosh(a (x - x_hat)) with a = `objective.logcosh_a` (10), plus
beta KL (beta = 1). The reported ELBO is the bound under the config's likelihood. See
`vae.objectives.reconstruction.PerceptualVAE`."""

from vae.objectives import PerceptualVAE
from vae.registry import Variant, register
from vae.variants.common import gaussian_vae


def _objective(config, *, dataset_size, total_steps):
    return PerceptualVAE(cost="logcosh", beta=VARIANT.value(config, "objective.beta"),
                         logcosh_a=config.objective.logcosh_a)


VARIANT = register(Variant(
    name="logcosh_vae",
    build_model=lambda config, image_shape, num_classes: gaussian_vae(config, image_shape),
    build_objective=_objective,
    reads=("objective.beta", "objective.logcosh_a"),
    defaults={"objective.beta": 1.0},
    paper="Chen et al. 2019, Log Hyperbolic Cosine Loss Improves Variational Auto-Encoder (the log-cosh loss)",
    summary="log-cosh reconstruction VAE (a = 10)",
))
