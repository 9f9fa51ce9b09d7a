"""`rhvae`: the Riemannian Hamiltonian VAE (Chadebec et al. 2020): the Hamiltonian VAE with a
learned Riemannian metric G(z) as the dynamics' mass matrix, G^{-1}(z) = sum_n L_n L_n^T
exp(-|z - c_n|^2 / T^2) + lambda I over the batch's posterior means c_n (eq. 9), K =
model.flow_length generalized-leapfrog steps (default 3) with tempering; trained on the bound of
`vae.models.riemannian`, which is also what the IWAE estimate weighs.

Defaults are those of the authors' code (pythae's RHVAE): 3 leapfrog steps of size 1e-3,
sqrt(beta_0) = 0.3, T = 1.5, lambda = 0.01, 3 fixed-point iterations, a one-hidden-layer (400)
metric network; they are fields of `RiemannianHamiltonianVAE`, not config keys. Differs from
that code: the bound keeps log N(rho_0; 0, G(z_0) / beta_0) and the tempering's d/2 log beta_0
(the code's training loss drops them). Leaves out: the metric over all training centroids kept
after training (the batch in hand defines it, in evaluation too) and the Riemannian sampler of
the follow-up paper; DReG is not offered. A training step differentiates twice through the
decoder (K + 1 gradients of log p(x, z) per step)."""

from vae.models import build_likelihood, build_prior
from vae.models.riemannian import RiemannianHamiltonianVAE
from vae.registry import Variant, register
from vae.variants.common import SCHEDULE_READS, elbo_without_free_bits, networks

DEFAULT_STEPS = 3


def _model(config, image_shape, num_classes):
    likelihood = build_likelihood(config)
    encoder, decoder = networks(config, image_shape, likelihood.param_channels(image_shape[-1]))
    return RiemannianHamiltonianVAE(encoder=encoder, decoder=decoder, prior=build_prior(config, image_shape),
                                    likelihood=likelihood, latent_dim=config.latent_dim,
                                    leapfrog_steps=DEFAULT_STEPS if config.flow_length is None else config.flow_length)


VARIANT = register(Variant(
    name="rhvae",
    build_model=_model,
    build_objective=lambda config, *, dataset_size, total_steps: elbo_without_free_bits(config, VARIANT, total_steps),
    reads=(*SCHEDULE_READS, "model.flow_length"),
    defaults={"objective.beta": 1.0},
    paper="Chadebec et al. 2020, Geometry-Aware Hamiltonian Variational Auto-Encoder",
    summary=f"Riemannian Hamiltonian VAE ({DEFAULT_STEPS} generalized leapfrog steps, learned metric)",
))
