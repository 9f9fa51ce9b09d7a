"""`beta_tcvae`: beta-TCVAE (Chen et al. 2018, eq. 4 with alpha = gamma = 1), beta = 6, the
total correlation estimated per minibatch (weighted or stratified sampling); see
`vae.objectives.total_correlation`. Leaves out: separate weights alpha and gamma on the index-code
MI and the dimension-wise KL (both 1, as in the paper's experiments)."""

from vae.objectives import BetaTCVAE
from vae.registry import Variant, register
from vae.variants.common import gaussian_vae


def _objective(config, *, dataset_size, total_steps):
    return BetaTCVAE(beta=VARIANT.value(config, "objective.beta"), dataset_size=dataset_size,
                     estimator=config.objective.tc_estimator)


VARIANT = register(Variant(
    name="beta_tcvae",
    build_model=lambda config, image_shape, num_classes: gaussian_vae(config, image_shape),
    build_objective=_objective,
    reads=("objective.beta", "objective.tc_estimator"),
    defaults={"objective.beta": 6.0},
    paper="Chen et al. 2018, Isolating Sources of Disentanglement in VAEs, eq. 4",
    summary="beta-TCVAE (beta = 6)",
))
