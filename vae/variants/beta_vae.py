"""`beta_vae`: beta-VAE (Higgins et al. 2017, eq. 4): the ELBO with the KL weighted by beta = 4
(the paper's dSprites setting). Leaves out: nothing of the objective; the paper's networks are
the `burgess` architecture."""

from vae.registry import Variant, register
from vae.variants.common import ELBO_READS, elbo, gaussian_vae

VARIANT = register(Variant(
    name="beta_vae",
    build_model=lambda config, image_shape, num_classes: gaussian_vae(config, image_shape),
    build_objective=lambda config, *, dataset_size, total_steps: elbo(config, VARIANT, total_steps),
    reads=ELBO_READS,
    defaults={"objective.beta": 4.0},
    paper="Higgins et al. 2017, beta-VAE, eq. 4",
    summary="beta-VAE (beta = 4)",
))
