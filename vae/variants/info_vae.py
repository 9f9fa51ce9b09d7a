"""`info_vae`: InfoVAE with the MMD divergence (Zhao et al. 2019, eq. 6): the ELBO's KL weighted
by 1 - alpha plus (alpha + lambda - 1) MMD^2(q(z), p(z)); alpha = 0, lambda = 1000 (this
toolkit's defaults, not checked against the paper's experiments), RBF kernel with C = 2 d.
Gaussian posterior, so it has an ELBO and an IWAE estimate. Leaves out: the paper's other
divergences (adversarial, Stein). See `vae.objectives.reconstruction.InfoVAE`."""

from vae.objectives import InfoVAE
from vae.registry import Variant, register
from vae.variants.common import gaussian_vae


def _objective(config, *, dataset_size, total_steps):
    return InfoVAE(alpha=config.objective.info_alpha, lam=VARIANT.value(config, "objective.match_weight"),
                   kernel=VARIANT.value(config, "objective.kernel"))


VARIANT = register(Variant(
    name="info_vae",
    build_model=lambda config, image_shape, num_classes: gaussian_vae(config, image_shape),
    build_objective=_objective,
    reads=("objective.info_alpha", "objective.match_weight", "objective.kernel"),
    defaults={"objective.match_weight": 1000.0, "objective.kernel": "rbf"},
    paper="Zhao et al. 2019, InfoVAE: Balancing Learning and Inference in Variational Autoencoders, eq. 6",
    summary="InfoVAE / MMD-VAE (alpha = 0, lambda = 1000)",
))
