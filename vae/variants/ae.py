"""`ae`: the deterministic autoencoder, z = E(x), trained on -log p(x | D(z)) alone: the baseline
every regularized autoencoder is compared to. No density (no ELBO or IWAE); samples decode
z ~ N(0, I), which its codes were never matched to (a fitted density samples it better)."""

from vae.objectives import AE
from vae.registry import Variant, register
from vae.variants.common import autoencoder, normal_prior_only

VARIANT = register(Variant(
    name="ae",
    build_model=lambda config, image_shape, num_classes: autoencoder(config, image_shape),
    build_objective=lambda config, *, dataset_size, total_steps: AE(),
    paper="the deterministic autoencoder (e.g. Hinton & Salakhutdinov 2006); the baseline of Ghosh et al. 2020",
    summary="autoencoder (deterministic)",
    validate=normal_prior_only,
    has_density=False,
))
