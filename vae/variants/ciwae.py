"""`ciwae`: the combination importance weighted autoencoder (Rainforth et al. 2018, sec. 4):
maximizes beta ELBO + (1 - beta) IWAE_K over the same K = objective.iwae_samples samples,
beta = objective.ciwae_beta; K = 64 (the paper's sample budget), beta = 0.5 (this toolkit's
choice from the paper's range of beta; not checked against its experiments). Gaussian
posterior, so it reports the ELBO and an IWAE estimate. See
`vae.objectives.multisample.CIWAE`."""

from vae.objectives import CIWAE
from vae.registry import Variant, register
from vae.variants.common import gaussian_vae


def _objective(config, *, dataset_size, total_steps):
    return CIWAE(samples=VARIANT.value(config, "objective.iwae_samples"), beta=config.objective.ciwae_beta)


VARIANT = register(Variant(
    name="ciwae",
    build_model=lambda config, image_shape, num_classes: gaussian_vae(config, image_shape),
    build_objective=_objective,
    reads=("objective.iwae_samples", "objective.ciwae_beta"),
    defaults={"objective.iwae_samples": 64},
    paper="Rainforth et al. 2018, Tighter Variational Bounds are Not Necessarily Better, sec. 4 (CIWAE)",
    summary="CIWAE (K = 64, beta = 0.5)",
))
