"""`vae`: the VAE (Kingma & Welling 2014, eq. 3): a Gaussian posterior, the prior and likelihood
of the config, trained on the ELBO (beta = 1). Leaves out: the paper's Adagrad with weight decay
(the optimizer is the config's, Adam by default)."""

from vae.registry import Variant, register
from vae.variants.common import ELBO_READS, elbo, gaussian_vae

VARIANT = register(Variant(
    name="vae",
    build_model=lambda config, image_shape, num_classes: gaussian_vae(config, image_shape),
    build_objective=lambda config, *, dataset_size, total_steps: elbo(config, VARIANT, total_steps),
    reads=ELBO_READS,
    defaults={"objective.beta": 1.0},
    paper="Kingma & Welling 2014, Auto-Encoding Variational Bayes, eq. 3",
    summary="VAE",
))
