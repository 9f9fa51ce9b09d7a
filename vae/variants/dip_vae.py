"""`dip_vae_i`, `dip_vae_ii`: DIP-VAE (Kumar et al. 2018, eq. 6 and 7), the two covariance
penalties of one paper. Defaults as in disentanglement_lib: lambda_od = 10; lambda_d =
10 x lambda_od for DIP-VAE-I and lambda_od for DIP-VAE-II. See `vae.objectives.dip_vae`. Leaves
out nothing of the penalties; the covariance is estimated on each minibatch."""

from vae.objectives import DIPVAE
from vae.registry import Variant, register
from vae.variants.common import gaussian_vae

READS = ("objective.dip_lambda_od", "objective.dip_lambda_d")


def _objective_of(kind: str):
    def build(config, *, dataset_size, total_steps):
        o = config.objective
        od = o.dip_lambda_od if o.dip_lambda_od is not None else 10.0
        d = o.dip_lambda_d if o.dip_lambda_d is not None else (10.0 * od if kind == "i" else od)
        return DIPVAE(kind=kind, lambda_od=od, lambda_d=d)

    return build


for _kind, _eq in (("i", "eq. 6"), ("ii", "eq. 7")):
    register(Variant(
        name=f"dip_vae_{_kind}",
        build_model=lambda config, image_shape, num_classes: gaussian_vae(config, image_shape),
        build_objective=_objective_of(_kind),
        reads=READS,
        defaults={"objective.dip_lambda_od": 10.0},
        paper=f"Kumar et al. 2018, Variational Inference of Disentangled Latent Concepts from Unlabeled "
              f"Observations, {_eq}",
        summary=f"DIP-VAE-{_kind.upper()}",
    ))
