"""`pvae`: the Poincaré-ball VAE (Mathieu et al. 2019): latents on the Poincaré ball of
curvature -c (c = model.curvature, 0.7, one of the paper's MNIST values), a wrapped normal
posterior N^W(exp_0(mu(x)), diag(sigma^2(x))) and the wrapped normal prior N^W(0, I), trained on
the ELBO with the one-sample KL estimate log q(z|x) - log p(z) (there is no closed form). Both
densities are with respect to the ball's Riemannian volume, so the ELBO and the IWAE estimate
are bounds on log p(x) like any other variant's.

Leaves out: the gyroplane (hyperbolic) first decoder layer (the decoder reads log_0(z)), the
Riemannian normal, and learning c. Möbius operations are clipped at the ball's boundary. See
`vae.models.poincare`."""

from vae.models import build_likelihood
from vae.models.poincare import PoincareVAE
from vae.registry import Variant, register
from vae.variants.common import SCHEDULE_READS, elbo_without_free_bits, networks

DEFAULT_CURVATURE = 0.7


def _model(config, image_shape, num_classes):
    likelihood = build_likelihood(config)
    encoder, decoder = networks(config, image_shape, likelihood.param_channels(image_shape[-1]))
    c = DEFAULT_CURVATURE if config.curvature is None else config.curvature
    return PoincareVAE(encoder=encoder, decoder=decoder, likelihood=likelihood, latent_dim=config.latent_dim,
                       curvature=c)


VARIANT = register(Variant(
    name="pvae",
    build_model=_model,
    build_objective=lambda config, *, dataset_size, total_steps: elbo_without_free_bits(config, VARIANT, total_steps),
    reads=(*SCHEDULE_READS, "model.curvature"),
    defaults={"objective.beta": 1.0},
    paper="Mathieu et al. 2019, Continuous Hierarchical Representations with Poincaré Variational Auto-Encoders",
    summary=f"Poincaré ball latents, wrapped normal (c = {DEFAULT_CURVATURE})",
))
