"""`cvae`: the conditional VAE (Sohn et al. 2015, eq. 4): q(z | x, y) sees one-hot labels as
image channels, p(x | z, y) sees them appended to z, the prior is p(z) (not p(z | y)).
Leaves out: the paper's conditional prior network."""

from vae.config import ConfigError
from vae.registry import Variant, register
from vae.variants.common import ELBO_READS, elbo, gaussian_vae


def _validate(config) -> None:
    if config.model.prior == "vamp":
        raise ConfigError("model.prior='vamp' is not supported with model.name='cvae'; use 'normal' or 'mog'")


VARIANT = register(Variant(
    name="cvae",
    build_model=lambda config, image_shape, num_classes: gaussian_vae(config, image_shape, num_classes,
                                                                      conditional=True),
    build_objective=lambda config, *, dataset_size, total_steps: elbo(config, VARIANT, total_steps),
    reads=ELBO_READS,
    defaults={"objective.beta": 1.0},
    paper="Sohn et al. 2015, Learning Structured Output Representation using Deep Conditional Generative Models, eq. 4",
    summary="conditional VAE",
    validate=_validate,
    conditional=True,
))
