"""vae: a variational-autoencoder research toolkit in JAX.

    vae.data      load(name, split): offline `mnist5k` and `sprites`, any TFDS image dataset
    vae.models    encoders, decoders, prior, likelihoods, the VAE module; build_model(config)
    vae.objectives  the ELBO and the objective interface
    vae.train     TrainState, optimizer, jitted train / eval steps
    vae.run       the training loop that writes a run directory (train, load_run)
    vae.explore   the latent-space explorer; vae.evaluate, vae.metrics, vae.quality, vae.synthesis
    vae.plots     matplotlib figures
"""

from vae import data
from vae.config import Config, DataConfig, ModelConfig, ObjectiveConfig, OptimConfig, TrainConfig
from vae.models import VAE, build_model
from vae.objectives import ELBO
from vae.presets import get_preset
from vae.train import TrainState, create_train_state, make_eval_step, make_optimizer, make_train_step

__version__ = "0.1.0"

__all__ = [
    "data", "Config", "DataConfig", "ModelConfig", "ObjectiveConfig", "OptimConfig", "TrainConfig", "VAE",
    "build_model", "ELBO", "get_preset", "TrainState", "create_train_state", "make_eval_step", "make_optimizer",
    "make_train_step", "__version__",
]
