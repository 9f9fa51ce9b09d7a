"""`categorical_vae`: a VAE with N = model.latent_dim categorical latents of K = model.categories
classes and a uniform prior, trained through the Gumbel-softmax relaxation (Jang et al. 2017,
eq. 1-2; the concrete distribution of Maddison et al. 2017): the reconstruction term sees the
relaxed draw at temperature tau(t) = max(0.5, exp(-1e-5 t)) (the paper's schedule, updated
every step), the KL is KL(q || uniform) in closed form (objective.categorical_kl=relaxed uses
the concrete densities' one-sample estimate instead). The paper's MNIST model has N = 30, K = 10.
The reported ELBO and the IWAE estimate use exact one-hot draws, so they bound log p(x) of the
discrete model. Leaves out: the straight-through variant (hard forward pass), learned
temperatures, and the paper's semi-supervised classifier. See `vae.models.categorical`."""

from vae.models import build_likelihood
from vae.models.categorical import CategoricalVAE
from vae.objectives.gumbel import GumbelSoftmaxELBO
from vae.registry import Variant, register
from vae.variants.common import networks


def _model(config, image_shape, num_classes):
    likelihood = build_likelihood(config)
    n_logits = config.latent_dim * config.categories
    encoder, decoder = networks(config, image_shape, likelihood.param_channels(image_shape[-1]),
                                latent_dim=(n_logits + 1) // 2)
    return CategoricalVAE(encoder=encoder, decoder=decoder, likelihood=likelihood, num_variables=config.latent_dim,
                          categories=config.categories)


def _objective(config, *, dataset_size, total_steps):
    o = config.objective
    return GumbelSoftmaxELBO(beta=VARIANT.value(config, "objective.beta"),
                             initial_temperature=VARIANT.value(config, "objective.temperature"),
                             min_temperature=o.min_temperature, anneal_rate=o.anneal_rate, kl=o.categorical_kl)


VARIANT = register(Variant(
    name="categorical_vae",
    build_model=_model,
    build_objective=_objective,
    reads=("model.categories", "objective.beta", "objective.temperature", "objective.min_temperature",
           "objective.anneal_rate", "objective.categorical_kl"),
    defaults={"objective.beta": 1.0, "objective.temperature": 1.0},
    paper="Jang et al. 2017, Categorical Reparameterization with Gumbel-Softmax, eq. 1-2; "
          "Maddison et al. 2017, The Concrete Distribution",
    summary="categorical latents, Gumbel-softmax (N x K one-hot)",
))
