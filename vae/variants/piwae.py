"""`piwae`: the partially importance weighted autoencoder (Rainforth et al. 2018, sec. 4): on
one set of M x K samples the decoder follows the gradient of IWAE_{MK} and the encoder that of
MIWAE's ELBO_{M,K}; M = objective.outer_samples, K = objective.iwae_samples, M = K = 8 (the
paper's PIWAE(8, 8)). Gaussian posterior, so it reports the ELBO and an IWAE estimate.
Leaves out: the paper's gradient signal-to-noise measurements. See
`vae.objectives.multisample.PIWAE`."""

from vae.objectives import PIWAE
from vae.registry import Variant, register
from vae.variants.common import gaussian_vae


def _objective(config, *, dataset_size, total_steps):
    return PIWAE(outer=VARIANT.value(config, "objective.outer_samples"),
                 inner=VARIANT.value(config, "objective.iwae_samples"))


VARIANT = register(Variant(
    name="piwae",
    build_model=lambda config, image_shape, num_classes: gaussian_vae(config, image_shape),
    build_objective=_objective,
    reads=("objective.outer_samples", "objective.iwae_samples"),
    defaults={"objective.outer_samples": 8, "objective.iwae_samples": 8},
    paper="Rainforth et al. 2018, Tighter Variational Bounds are Not Necessarily Better, sec. 4 (PIWAE)",
    summary="PIWAE (M = 8, K = 8)",
))
