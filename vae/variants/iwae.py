"""`iwae`: the importance-weighted autoencoder (Burda et al. 2016, eq. 8) with k = 5 samples,
optionally with DReG encoder gradients (Tucker et al. 2019, eq. 5); see `vae.objectives.iwae`.
Leaves out: the paper's two-stochastic-layer model (one latent layer here; `ladder_vae` has two)."""

from vae.objectives import IWAE
from vae.registry import Variant, register
from vae.variants.common import gaussian_vae

VARIANT = register(Variant(
    name="iwae",
    build_model=lambda config, image_shape, num_classes: gaussian_vae(config, image_shape),
    build_objective=lambda config, *, dataset_size, total_steps: IWAE(
        num_samples=VARIANT.value(config, "objective.iwae_samples"), dreg=config.objective.dreg),
    reads=("objective.iwae_samples", "objective.dreg"),
    defaults={"objective.iwae_samples": 5},
    paper="Burda et al. 2016, Importance Weighted Autoencoders, eq. 8; DReG: Tucker et al. 2019, eq. 5",
    summary="IWAE (k = 5)",
))
