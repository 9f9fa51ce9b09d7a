"""`factor_vae`: FactorVAE (Kim & Mnih 2018, eq. 2), gamma = 35, a 6 x 1000 discriminator with its
own Adam in the same jitted step; see `vae.objectives.factor_vae`. Leaves out: the second minibatch
of the paper's algorithm 1 (the permuted codes come from the same batch)."""

from vae.objectives import FactorVAE
from vae.registry import Variant, register
from vae.variants.common import gaussian_vae


def _objective(config, *, dataset_size, total_steps):
    return FactorVAE(gamma=VARIANT.value(config, "objective.gamma"),
                     disc_learning_rate=config.objective.disc_learning_rate)


VARIANT = register(Variant(
    name="factor_vae",
    build_model=lambda config, image_shape, num_classes: gaussian_vae(config, image_shape),
    build_objective=_objective,
    reads=("objective.gamma", "objective.disc_learning_rate"),
    defaults={"objective.gamma": 35.0},
    paper="Kim & Mnih 2018, Disentangling by Factorising, eq. 2",
    summary="FactorVAE (gamma = 35)",
))
