"""`rae_l2`, `rae_gp`: regularized autoencoders (Ghosh et al. 2020, eq. 11): the reconstruction
cost, beta/2 ||z||^2 on the codes, and lambda times the decoder's squared weights (L2) or its
gradient penalty (GP); beta = 1e-4, lambda = 1e-7 (pythae's defaults; the paper grid-searches
them). They are meant to be sampled from an ex-post density fitted to the codes (the paper's
GMM: `vae fit-sampler RUN --sampler gmm`, then `--sampler gmm`); without one they sample
z ~ N(0, I), which their codes were never matched to. Leaves out: RAE-SN (spectral normalization). See `vae.objectives.autoencoders.RAE`."""

from vae.objectives import RAE
from vae import registry
from vae.registry import Variant, register
from vae.variants.common import autoencoder, normal_prior_only

READS = ("objective.latent_weight", "objective.decoder_weight")
DEFAULTS = {"objective.latent_weight": 1e-4, "objective.decoder_weight": 1e-7}
PAPER = "Ghosh et al. 2020, From Variational to Deterministic Autoencoders, eq. 11"


def _variant(name: str, regularizer: str, summary: str) -> Variant:
    def objective(config, *, dataset_size, total_steps):
        variant = registry.get(name)
        return RAE(regularizer=regularizer, latent_weight=variant.value(config, "objective.latent_weight"),
                   decoder_weight=variant.value(config, "objective.decoder_weight"))

    return register(Variant(
        name=name,
        build_model=lambda config, image_shape, num_classes: autoencoder(config, image_shape),
        build_objective=objective, reads=READS, defaults=DEFAULTS, paper=PAPER, summary=summary,
        validate=normal_prior_only, has_density=False,
    ))


RAE_L2 = _variant("rae_l2", "l2", "RAE, decoder L2 penalty")
RAE_GP = _variant("rae_gp", "gp", "RAE, decoder gradient penalty")
