"""`swae`: the sliced-Wasserstein autoencoder (Kolouri et al. 2019, eq. 14): deterministic
encoder, SW_2^2 between the codes and N(0, I) draws over `objective.num_projections` random
directions (50, as in the paper), weight lambda = 10 (this toolkit's default; the paper tunes it).
Leaves out: the paper's uniform-disk and ring priors (N(0, I) only). See
`vae.objectives.autoencoders.SWAE`."""

from vae.objectives import SWAE
from vae.registry import Variant, register
from vae.variants.common import autoencoder, normal_prior_only


def _objective(config, *, dataset_size, total_steps):
    return SWAE(weight=VARIANT.value(config, "objective.match_weight"),
                num_projections=config.objective.num_projections)


VARIANT = register(Variant(
    name="swae",
    build_model=lambda config, image_shape, num_classes: autoencoder(config, image_shape),
    build_objective=_objective,
    reads=("objective.match_weight", "objective.num_projections"),
    defaults={"objective.match_weight": 10.0},
    paper="Kolouri et al. 2019, Sliced-Wasserstein Autoencoder: An Embarrassingly Simple Generative Model, eq. 14",
    summary="sliced-Wasserstein AE (50 projections)",
    validate=normal_prior_only,
    has_density=False,
))
