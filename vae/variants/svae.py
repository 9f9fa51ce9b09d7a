"""`svae`: the hyperspherical VAE (Davidson et al. 2018): latents on the unit sphere
S^{m-1} (m = model.latent_dim) with a von Mises-Fisher posterior vMF(mu(x), kappa(x)) and the
uniform prior, trained on the ELBO with the closed-form KL(vMF || U) = kappa A_m(kappa) +
log C_m(kappa) + log |S^{m-1}|; samples by Wood's rejection sampler, reparameterized through
the accepted proposal. model.spherical=power_spherical swaps in the power spherical posterior
(De Cao & Aziz 2020), sampled without rejection. The log Bessel function behind C_m and A_m
stays finite for large kappa and m (`vae.models.spherical.log_bessel_iv`).

Leaves out: the correction term g_cor of the rejection sampler's gradient (Davidson et al.'s
g_rep alone is used, so the encoder's kappa gradient is biased), and the paper's experiments
beyond MNIST. Equation numbers of both papers were not re-checked offline: the formulas are
written out in `vae.models.spherical`."""

from vae.config import ConfigError
from vae.models import build_likelihood
from vae.models.spherical import SphericalVAE
from vae.registry import Variant, register
from vae.variants.common import SCHEDULE_READS, elbo_without_free_bits, networks


def _model(config, image_shape, num_classes):
    likelihood = build_likelihood(config)
    encoder, decoder = networks(config, image_shape, likelihood.param_channels(image_shape[-1]))
    return SphericalVAE(encoder=encoder, decoder=decoder, likelihood=likelihood, latent_dim=config.latent_dim,
                        distribution=config.spherical)


def _validate(config):
    if config.model.latent_dim < 2:
        raise ConfigError(f"model.latent_dim={config.model.latent_dim} is not allowed with svae: the sphere "
                          "S^{m-1} needs m >= 2")


VARIANT = register(Variant(
    name="svae",
    build_model=_model,
    build_objective=lambda config, *, dataset_size, total_steps: elbo_without_free_bits(config, VARIANT, total_steps),
    reads=(*SCHEDULE_READS, "model.spherical"),
    defaults={"objective.beta": 1.0},
    validate=_validate,
    paper="Davidson et al. 2018, Hyperspherical Variational Auto-Encoders; De Cao & Aziz 2020, The Power Spherical "
          "distribution",
    summary="hyperspherical latents (vMF / power spherical, uniform prior)",
))
