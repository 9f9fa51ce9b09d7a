"""`wae`: the Wasserstein autoencoder with the MMD penalty (Tolstikhin et al. 2018, eq. 4 and
algorithm 2): deterministic encoder, lambda = 10, kernel imq (or rbf) with C = 2 d as in the
paper for a unit-variance prior. Leaves out: WAE-GAN, and the multi-scale IMQ sum of the
authors' code; the cost c is -log p(x|z) of the config's likelihood (the paper: squared error).
See `vae.objectives.autoencoders.WAE`."""

from vae.objectives import WAE
from vae.registry import Variant, register
from vae.variants.common import autoencoder, normal_prior_only


def _objective(config, *, dataset_size, total_steps):
    return WAE(weight=VARIANT.value(config, "objective.match_weight"), kernel=VARIANT.value(config, "objective.kernel"))


VARIANT = register(Variant(
    name="wae",
    build_model=lambda config, image_shape, num_classes: autoencoder(config, image_shape),
    build_objective=_objective,
    reads=("objective.match_weight", "objective.kernel"),
    defaults={"objective.match_weight": 10.0, "objective.kernel": "imq"},
    paper="Tolstikhin et al. 2018, Wasserstein Auto-Encoders, eq. 4 with the MMD penalty (algorithm 2)",
    summary="WAE-MMD (lambda = 10, IMQ kernel)",
    validate=normal_prior_only,
    has_density=False,
))
