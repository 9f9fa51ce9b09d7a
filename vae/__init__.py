"""vae: a variational-autoencoder research toolkit in JAX.

Floors, each importing only the ones above it in this list:

    config, registry, errors, parallel, memory, checkpoint, plots, version   the ground floor
    vae.data, vae.models          datasets and pipelines; networks, distributions, the model classes
    vae.objectives, vae.variants  one loss per module; each variant declared once and registered
    vae.step                      TrainState, optimizer, the jitted train / eval steps
    vae.trained, vae.metrics, vae.explore   tools for trained models: load_run, batched inference,
                                  estimators, sampling, the dataset classifier; metrics; the explorer
    vae.run                       the training loop and its run directory
    vae.evaluate, vae.quality, vae.synthesis, vae.presets, vae.cli   commands
"""

from vae import data
from vae.config import Config, DataConfig, ModelConfig, ObjectiveConfig, OptimConfig, TrainConfig
from vae.models import VAE, LatentVariableModel, VAEOutput
from vae.objectives import ELBO, Objective
from vae.presets import get_preset
from vae.registry import Variant
from vae.registry import register as register_variant
from vae.step import TrainState, create_train_state, make_eval_step, make_optimizer, make_train_step
from vae.variants import build_model, build_objective
from vae.version import __version__

__all__ = [
    "data", "Config", "DataConfig", "ModelConfig", "ObjectiveConfig", "OptimConfig", "TrainConfig", "VAE",
    "LatentVariableModel", "VAEOutput", "build_model", "build_objective", "ELBO", "Objective", "Variant",
    "register_variant", "get_preset", "TrainState", "create_train_state", "make_eval_step", "make_optimizer",
    "make_train_step", "__version__",
]
