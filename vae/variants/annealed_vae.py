"""`annealed_vae`: controlled capacity increase (Burgess et al. 2018, eq. 8), gamma = 1000 and
C rising to 25 nats over 100,000 steps (the paper's dSprites setting); see
`vae.objectives.elbo.AnnealedVAE`. Leaves out nothing of eq. 8; the KL inside |.| is the batch
mean, as in disentanglement_lib."""

from vae.objectives import AnnealedVAE
from vae.registry import Variant, register
from vae.variants.common import gaussian_vae


def _objective(config, *, dataset_size, total_steps):
    value = lambda key: VARIANT.value(config, f"objective.{key}")  # noqa: E731
    return AnnealedVAE(gamma=value("gamma"), c_max=value("capacity_max"), c_steps=value("capacity_steps"))


VARIANT = register(Variant(
    name="annealed_vae",
    build_model=lambda config, image_shape, num_classes: gaussian_vae(config, image_shape),
    build_objective=_objective,
    reads=("objective.gamma", "objective.capacity_max", "objective.capacity_steps"),
    defaults={"objective.gamma": 1000.0, "objective.capacity_max": 25.0, "objective.capacity_steps": 100_000},
    paper="Burgess et al. 2018, Understanding disentangling in beta-VAE, eq. 8",
    summary="AnnealedVAE (controlled capacity)",
))
