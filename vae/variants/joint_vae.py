"""`joint_vae`: JointVAE (Dupont 2018, sec. 3), model.latent_dim continuous Gaussian latents and
model.num_discrete categorical latents of model.categories classes, with separate capacities
on the continuous and the discrete KL: gamma = 30 (objective.gamma), 5 nats each
(objective.capacity_max, objective.disc_capacity) reached over 25,000 steps
(objective.capacity_steps), the discrete one capped at sum log K, Gumbel-softmax temperature
0.67 (objective.temperature) — the paper's MNIST setting, whose latent is 10 continuous + one
10-way discrete. The reported ELBO and IWAE use exact one-hot draws. Leaves out: several
discrete latents of different sizes (all have K classes here) and the paper's conv networks.
See `vae.models.joint` and `vae.objectives.gumbel.JointVAEObjective`."""

import math

from vae.models import build_likelihood
from vae.models.joint import JointVAE
from vae.objectives.gumbel import JointVAEObjective
from vae.registry import Variant, register
from vae.variants.common import networks


def _model(config, image_shape, num_classes):
    likelihood = build_likelihood(config)
    n_logits = config.num_discrete * config.categories
    encoder, decoder = networks(config, image_shape, likelihood.param_channels(image_shape[-1]),
                                latent_dim=config.latent_dim + (n_logits + 1) // 2)
    return JointVAE(encoder=encoder, decoder=decoder, likelihood=likelihood, continuous_dim=config.latent_dim,
                    num_discrete=config.num_discrete, categories=config.categories)


def _objective(config, *, dataset_size, total_steps):
    value = lambda key: VARIANT.value(config, f"objective.{key}")  # noqa: E731
    return JointVAEObjective(gamma=value("gamma"), cont_capacity=value("capacity_max"),
                             disc_capacity=value("disc_capacity"), capacity_steps=value("capacity_steps"),
                             temperature=value("temperature"),
                             max_disc_capacity=config.model.num_discrete * math.log(config.model.categories))


VARIANT = register(Variant(
    name="joint_vae",
    build_model=_model,
    build_objective=_objective,
    reads=("model.categories", "model.num_discrete", "objective.gamma", "objective.capacity_max",
           "objective.disc_capacity", "objective.capacity_steps", "objective.temperature"),
    defaults={"objective.gamma": 30.0, "objective.capacity_max": 5.0, "objective.disc_capacity": 5.0,
              "objective.capacity_steps": 25_000, "objective.temperature": 0.67},
    paper="Dupont 2018, Learning Disentangled Joint Continuous and Discrete Representations, sec. 3",
    summary="JointVAE (continuous + discrete, capacities)",
))
