"""`aae`: the adversarial autoencoder (Makhzani et al. 2016, sec. 2): deterministic encoder, a
discriminator of two 1000-unit layers on the codes against N(0, I), trained with its own Adam
in the same jitted step (`objective.disc_learning_rate`); the encoder's adversarial term is
weighted by `objective.match_weight` (1). Leaves out: the paper's SGD-with-momentum phases
and its supervised / semi-supervised variants. See `vae.objectives.adversarial.AAE`."""

from vae.objectives import AAE
from vae.registry import Variant, register
from vae.variants.common import autoencoder, normal_prior_only


def _objective(config, *, dataset_size, total_steps):
    return AAE(weight=VARIANT.value(config, "objective.match_weight"),
               disc_learning_rate=config.objective.disc_learning_rate)


VARIANT = register(Variant(
    name="aae",
    build_model=lambda config, image_shape, num_classes: autoencoder(config, image_shape),
    build_objective=_objective,
    reads=("objective.match_weight", "objective.disc_learning_rate"),
    defaults={"objective.match_weight": 1.0},
    paper="Makhzani et al. 2016, Adversarial Autoencoders, sec. 2 (eq. 1 on the codes)",
    summary="adversarial autoencoder",
    validate=normal_prior_only,
    has_density=False,
))
