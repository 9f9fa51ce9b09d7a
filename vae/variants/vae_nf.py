"""`vae_nf`: a VAE whose posterior is a normalizing flow of planar (Rezende & Mohamed 2015,
eq. 10) or radial (eq. 14) steps on a Gaussian q_0, trained on the ELBO with the flow's
log-determinant, log q(z_K|x) = log q_0(z_0|x) - sum_k log |det df_k/dz| (eq. 7, 15); the IWAE
estimate uses the same density. model.flow = planar | radial, K = model.flow_length = 10 (one of
the paper's K in 2..80); the steps' parameters are output by the encoder for each x (amortized).

No closed-form KL: `kl` is the one-sample estimate log q(z_K|x) - log p(z_K), so free bits
(which need a KL per latent) and DReG (which needs log q at any z) are not offered. Leaves out:
the paper's deep latent Gaussian models and its K = 80 runs. See `vae.models.flows`."""

from vae.registry import Variant, register
from vae.variants.common import SCHEDULE_READS, elbo_without_free_bits, flow_vae

DEFAULT_LENGTH = 10


def _model(config, image_shape, num_classes):
    length = DEFAULT_LENGTH if config.flow_length is None else config.flow_length
    return flow_vae(config, image_shape, flow=config.flow, length=length)


VARIANT = register(Variant(
    name="vae_nf",
    build_model=_model,
    build_objective=lambda config, *, dataset_size, total_steps: elbo_without_free_bits(config, VARIANT, total_steps),
    reads=(*SCHEDULE_READS, "model.flow", "model.flow_length"),
    defaults={"objective.beta": 1.0},
    paper="Rezende & Mohamed 2015, Variational Inference with Normalizing Flows, eq. 7, 10, 14, 15",
    summary=f"planar / radial flow posterior (K = {DEFAULT_LENGTH})",
))
