"""`hamiltonian_vae`: the Hamiltonian VAE (Caterini et al. 2018): a Gaussian q_0(z|x) whose
sample is moved by K = model.flow_length tempered leapfrog steps on U(z) = -log p(x, z), with
the quadratic tempering schedule, learned per-dimension step sizes and learned initial inverse
temperature beta_0; trained on the bound of `vae.models.hamiltonian` (the dynamics preserve
volume, the tempering contributes d/2 log beta_0), which is also what the IWAE estimate weighs.

Defaults that are this toolkit's, not checked against the paper: K = 5, step sizes initialized
at 0.01, beta_0 at 0.3. Leaves out: the paper's non-amortized and fixed-tempering variants and
its experiments beyond MNIST; DReG is not offered. The gradient of U goes through the decoder, so
a training step differentiates twice through it (cost grows with K). `rhvae` is the Riemannian
version (Chadebec et al. 2020)."""

from vae.models import build_likelihood, build_prior
from vae.models.hamiltonian import HamiltonianVAE
from vae.registry import Variant, register
from vae.variants.common import SCHEDULE_READS, elbo_without_free_bits, networks

DEFAULT_STEPS = 5


def _model(config, image_shape, num_classes):
    likelihood = build_likelihood(config)
    encoder, decoder = networks(config, image_shape, likelihood.param_channels(image_shape[-1]))
    return HamiltonianVAE(encoder=encoder, decoder=decoder, prior=build_prior(config, image_shape),
                          likelihood=likelihood, latent_dim=config.latent_dim,
                          leapfrog_steps=DEFAULT_STEPS if config.flow_length is None else config.flow_length)


VARIANT = register(Variant(
    name="hamiltonian_vae",
    build_model=_model,
    build_objective=lambda config, *, dataset_size, total_steps: elbo_without_free_bits(config, VARIANT, total_steps),
    reads=(*SCHEDULE_READS, "model.flow_length"),
    defaults={"objective.beta": 1.0},
    paper="Caterini et al. 2018, Hamiltonian Variational Auto-Encoder",
    summary=f"Hamiltonian VAE ({DEFAULT_STEPS} tempered leapfrog steps)",
))
