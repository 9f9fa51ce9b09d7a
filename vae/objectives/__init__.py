"""Training objectives, one per model variant, behind one interface (see `base`).

    build_objective(model_config, objective_config, dataset_size, total_steps)
"""

from __future__ import annotations

from vae.config import ModelConfig, ObjectiveConfig
from vae.objectives.base import Objective, bits_per_dim, elbo_metrics, forward
from vae.objectives.disentangle import DIPVAE, BetaTCVAE, FactorVAE, tc_decomposition
from vae.objectives.elbo import ELBO, AnnealedVAE
from vae.objectives.iwae import IWAE
from vae.objectives.schedules import free_bits_kl, make_kl_schedule
from vae.objectives.vq import VQObjective

DEFAULT_BETA = {"beta_vae": 4.0, "beta_tcvae": 6.0}
DEFAULT_GAMMA = {"annealed_vae": 1000.0, "factor_vae": 35.0}


def build_objective(model: ModelConfig, config: ObjectiveConfig, *, dataset_size: int = 60_000,
                    total_steps: int = 10_000) -> Objective:
    """The objective of the variant `model.name`, with `config`'s hyperparameters (None: the
    variant's paper default). dataset_size feeds beta-TCVAE's estimator; total_steps the
    cyclical KL schedule."""
    name = model.name
    beta = config.beta if config.beta is not None else DEFAULT_BETA.get(name, 1.0)
    gamma = config.gamma if config.gamma is not None else DEFAULT_GAMMA.get(name, 1.0)
    schedule = make_kl_schedule(config.kl_schedule, total_steps=total_steps, warmup_steps=config.kl_warmup_steps,
                                num_cycles=config.kl_cycles, ratio=config.kl_cycle_ratio)
    if name in ("vae", "beta_vae", "cvae", "hvae"):
        return ELBO(beta=beta, kl_schedule=schedule, free_bits=config.free_bits, free_bits_group=config.free_bits_group)
    if name == "annealed_vae":
        return AnnealedVAE(gamma=gamma, c_max=config.capacity_max, c_steps=config.capacity_steps)
    if name == "beta_tcvae":
        return BetaTCVAE(beta=beta, dataset_size=dataset_size, estimator=config.tc_estimator)
    if name == "factor_vae":
        return FactorVAE(gamma=gamma, disc_learning_rate=config.disc_learning_rate)
    if name in ("dip_vae_i", "dip_vae_ii"):
        kind = name.rsplit("_", 1)[1]
        od = config.dip_lambda_od if config.dip_lambda_od is not None else 10.0
        d = config.dip_lambda_d if config.dip_lambda_d is not None else (10.0 * od if kind == "i" else od)
        return DIPVAE(kind=kind, lambda_od=od, lambda_d=d)
    if name == "iwae":
        return IWAE(num_samples=config.iwae_samples, dreg=config.dreg)
    if name == "vqvae":
        return VQObjective(commitment=config.vq_commitment, decay=config.vq_decay)
    raise ValueError(f"no objective for model.name={name!r}")


__all__ = [
    "Objective", "ELBO", "AnnealedVAE", "BetaTCVAE", "FactorVAE", "DIPVAE", "IWAE", "VQObjective",
    "build_objective", "bits_per_dim", "elbo_metrics", "forward", "free_bits_kl", "make_kl_schedule",
    "tc_decomposition",
]
