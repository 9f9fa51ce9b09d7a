"""`miwae`: the multiply importance weighted autoencoder (Rainforth et al. 2018, sec. 4):
maximizes ELBO_{M,K} = (1/M) sum_m log (1/K) sum_k w_{m,k}, M = objective.outer_samples outer
groups of K = objective.iwae_samples samples; M = K = 8 (one of the paper's MK = 64 settings).
Gaussian posterior, so it reports the ELBO and an IWAE estimate. Leaves out: the paper's
gradient signal-to-noise measurements. See `vae.objectives.multisample.MIWAE`."""

from vae.objectives import MIWAE
from vae.registry import Variant, register
from vae.variants.common import gaussian_vae


def _objective(config, *, dataset_size, total_steps):
    return MIWAE(outer=VARIANT.value(config, "objective.outer_samples"),
                 inner=VARIANT.value(config, "objective.iwae_samples"))


VARIANT = register(Variant(
    name="miwae",
    build_model=lambda config, image_shape, num_classes: gaussian_vae(config, image_shape),
    build_objective=_objective,
    reads=("objective.outer_samples", "objective.iwae_samples"),
    defaults={"objective.outer_samples": 8, "objective.iwae_samples": 8},
    paper="Rainforth et al. 2018, Tighter Variational Bounds are Not Necessarily Better, sec. 4 (MIWAE)",
    summary="MIWAE (M = 8, K = 8)",
))
