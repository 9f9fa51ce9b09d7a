"""Presets: each function returns a full Config; `vae train --preset NAME` runs it and
`--set section.field=value` overrides any field."""

from vae.config import Config, DataConfig, ModelConfig, ObjectiveConfig, OptimConfig, TrainConfig
from vae.presets import register


@register
def quickstart() -> Config:
    """MLP VAE (784-512-256, 16-d latent, Bernoulli) on offline mnist5k; under 3 minutes on 2 CPU cores."""
    return Config(
        name="quickstart",
        data=DataConfig(name="mnist5k", binarize="dynamic"),
        model=ModelConfig(architecture="mlp", latent_dim=16, hidden=(512, 256), likelihood="bernoulli"),
        objective=ObjectiveConfig(name="elbo", beta=1.0),
        optim=OptimConfig(optimizer="adam", learning_rate=1e-3, schedule="cosine", warmup_steps=100,
                          end_learning_rate_factor=0.1),
        train=TrainConfig(steps=6000, batch_size=128, eval_every=1000, log_every=100),
    )


@register
def conv_sprites() -> Config:
    """Convolutional VAE (10-d latent, Bernoulli) on the offline procedural sprites dataset."""
    return Config(
        name="conv_sprites",
        data=DataConfig(name="sprites", binarize="none"),
        model=ModelConfig(architecture="conv", latent_dim=10, channels=(32, 32, 64, 64), hidden=(256,),
                          likelihood="bernoulli"),
        optim=OptimConfig(learning_rate=5e-4, warmup_steps=100),
        train=TrainConfig(steps=3000, batch_size=64, eval_every=1000, eval_batch_size=250),
    )
