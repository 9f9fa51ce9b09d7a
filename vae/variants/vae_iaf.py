"""`vae_iaf`: a VAE with an inverse autoregressive flow posterior (Kingma et al. 2016): the
encoder outputs q_0's mean and variance and a context h; each step z' = mu + sigma * z with
[mu, log sigma] from a one-hidden-layer MADE of (z, h) (eq. 10), so log q(z_T|x) = log q_0(z_0|x)
- sum_t sum_i log sigma_t,i. Depth model.flow_length = 2, MADE width model.flow_hidden = 320
(a setting of the paper's MNIST table), the order of z reversed between steps; trained on the
ELBO, the IWAE estimate uses the same density.

Leaves out: the LSTM-type gated update (eq. 11-14; here eq. 10's affine update with log sigma
softly bounded to (-3, 3) and the MADE's output layer zero-initialized, so training starts from
the plain VAE), deeper MADEs and the paper's ResNet VAE. No closed-form KL (`kl` is a one-sample
estimate): free bits and DReG are not offered. See `vae.models.flows.IAFStep`."""

from vae.registry import Variant, register
from vae.variants.common import SCHEDULE_READS, elbo_without_free_bits, flow_vae

DEFAULT_LENGTH, DEFAULT_HIDDEN = 2, 320


def _model(config, image_shape, num_classes):
    return flow_vae(config, image_shape, flow="iaf",
                    length=DEFAULT_LENGTH if config.flow_length is None else config.flow_length,
                    hidden=DEFAULT_HIDDEN if config.flow_hidden is None else config.flow_hidden)


VARIANT = register(Variant(
    name="vae_iaf",
    build_model=_model,
    build_objective=lambda config, *, dataset_size, total_steps: elbo_without_free_bits(config, VARIANT, total_steps),
    reads=(*SCHEDULE_READS, "model.flow_length", "model.flow_hidden"),
    defaults={"objective.beta": 1.0},
    paper="Kingma et al. 2016, Improved Variational Inference with Inverse Autoregressive Flow, eq. 10",
    summary=f"inverse autoregressive flow posterior (depth {DEFAULT_LENGTH}, width {DEFAULT_HIDDEN})",
))
