"""Presets on mnist5k (5,000 MNIST digits, offline) and TFDS MNIST. Budgets are sized for a 2-core
CPU; each docstring gives the command and the result to expect (test ELBO in nats, from
`python -m experiments.run_presets`), and what the paper ran."""

import dataclasses

from vae.config import Config, DataConfig, ModelConfig, ObjectiveConfig, OptimConfig, TrainConfig
from vae.presets.registry import register

MNIST5K = DataConfig(name="mnist5k", binarize="dynamic")
MLP = ModelConfig(architecture="mlp", latent_dim=16, hidden=(512, 256), likelihood="bernoulli")
MNIST_TRAIN = TrainConfig(steps=6000, batch_size=128, eval_every=1000, log_every=100)
MNIST_OPTIM = OptimConfig(learning_rate=1e-3, schedule="cosine", warmup_steps=100, end_learning_rate_factor=0.1)


@register
def quickstart() -> Config:
    """MLP VAE (784-512-256, 16-d latent, Bernoulli) on offline mnist5k.

        vae train --preset quickstart

    Expected: test ELBO -105.0 nats, test IWAE log p(x) -99.6 nats (k = 100), 16 active units
    (seed 0, 6000 steps, one run of python -m experiments.run_presets, 2026-12-02).
    """
    return Config(name="quickstart", data=MNIST5K, model=MLP, optim=MNIST_OPTIM, train=MNIST_TRAIN)


@register
def vae_mnist5k() -> Config:
    """VAE (Kingma & Welling 2014), MLP 512-256, 32-d latent, Bernoulli, on mnist5k.

        vae train --preset vae_mnist5k

    Expected: test ELBO -104.0 nats, test IWAE log p(x) -97.8 nats (k = 100), 26 active units
    (seed 0, 6000 steps, one run of python -m experiments.run_presets, 2026-12-02).
    """
    return Config(name="vae_mnist5k", data=MNIST5K, model=dataclasses.replace(MLP, latent_dim=32), optim=MNIST_OPTIM,
                  train=MNIST_TRAIN)


@register
def iwae_mnist5k() -> Config:
    """IWAE (Burda et al. 2016) with k=5 importance samples, MLP, on mnist5k.

        vae train --preset iwae_mnist5k

    Expected: test ELBO -106.6 nats, test IWAE log p(x) -97.1 nats (k = 100), 32 active units
    (seed 0, 6000 steps, one run of python -m experiments.run_presets, 2026-12-02).
    """
    return Config(name="iwae_mnist5k", data=MNIST5K, model=dataclasses.replace(MLP, name="iwae", latent_dim=32),
                  objective=ObjectiveConfig(iwae_samples=5), optim=MNIST_OPTIM, train=MNIST_TRAIN)


@register
def cvae_mnist5k() -> Config:
    """Conditional VAE (Sohn et al. 2015) on digit labels, MLP, on mnist5k.

        vae train --preset cvae_mnist5k

    Expected: test ELBO -104.2 nats, test IWAE log p(x) -98.9 nats (k = 100), 14 active units
    (seed 0, 6000 steps, one run of python -m experiments.run_presets, 2026-12-02).
    """
    return Config(name="cvae_mnist5k", data=MNIST5K, model=dataclasses.replace(MLP, name="cvae"), optim=MNIST_OPTIM,
                  train=MNIST_TRAIN)


@register
def vamp_mnist5k() -> Config:
    """VAE with a VampPrior (Tomczak & Welling 2018) of 500 pseudo-inputs, MLP, on mnist5k.

        vae train --preset vamp_mnist5k

    Expected: test ELBO -104.0 nats, test IWAE log p(x) -98.8 nats (k = 100), 16 active units
    (seed 0, 6000 steps, one run of python -m experiments.run_presets, 2026-12-02).
    """
    return Config(name="vamp_mnist5k", data=MNIST5K, model=dataclasses.replace(MLP, prior="vamp", prior_components=500),
                  optim=MNIST_OPTIM, train=MNIST_TRAIN)


@register
def mog_mnist5k() -> Config:
    """VAE with a learned 10-component mixture-of-Gaussians prior, MLP, on mnist5k.

        vae train --preset mog_mnist5k

    Expected: test ELBO -104.0 nats, test IWAE log p(x) -98.6 nats (k = 100), 16 active units
    (seed 0, 6000 steps, one run of python -m experiments.run_presets, 2026-12-02).
    """
    return Config(name="mog_mnist5k", data=MNIST5K, model=dataclasses.replace(MLP, prior="mog", prior_components=10),
                  optim=MNIST_OPTIM, train=MNIST_TRAIN)


@register
def vqvae_mnist5k() -> Config:
    """VQ-VAE (van den Oord et al. 2017): 4 codes of 8 dims from 512, EMA codebook, MLP, on mnist5k.

        vae train --preset vqvae_mnist5k

    Expected: test ELBO -116.2 nats, test IWAE log p(x) -116.2 nats (k = 100), 32 active units
    (seed 0, 6000 steps, one run of python -m experiments.run_presets, 2026-12-02).
    """
    return Config(name="vqvae_mnist5k", data=MNIST5K,
                  model=dataclasses.replace(MLP, name="vqvae", latent_dim=32, code_dim=8, num_codes=512),
                  optim=MNIST_OPTIM, train=MNIST_TRAIN)



@register
def vqvae_map_mnist5k() -> Config:
    """VQ-VAE with the paper's 2-D map of codes (van den Oord et al. 2017, sec. 4.1): fully
    convolutional encoder and decoder (two stride-2 4x4 convolutions, two residual blocks), a 7 x 7
    map of codes of 8 dims from 64, EMA codebook, dead codes replaced after 100 steps unused, on
    mnist5k. Sample it with a gated PixelCNN over the map, fitted after training:

        vae train --preset vqvae_map_mnist5k
        vae fit-sampler runs/vqvae_map_mnist5k --sampler pixelcnn

    Scaled down from the paper (256 channels, K = 512, D = 64, 250,000 steps) to this budget
    (channels 32, 64; 6,000 steps of batch 128), Bernoulli likelihood on binarized digits.
    Expected: test reconstruction -log p(x|z_q) 21.3 nats, test ELBO -225.0 nats (the bound counts
    KL = 49 ln 64 = 203.8 nats), all 64 codes used (perplexity 56); samples from the fitted
    pixelcnn: fd_classifier 80.0 against 472.8 with uniform codes (seed 0, 6000 steps, 720 s
    with other jobs running; python -m experiments.sampler_study, 2026-12-03; benchmarks/NOTES.md).
    """
    return Config(name="vqvae_map_mnist5k", data=MNIST5K,
                  model=ModelConfig(name="vqvae", architecture="conv", channels=(32, 64), code_map=True,
                                    latent_dim=7 * 7 * 8, code_dim=8, num_codes=64, likelihood="bernoulli"),
                  objective=ObjectiveConfig(vq_dead_code_steps=100),
                  optim=MNIST_OPTIM, train=MNIST_TRAIN)

@register
def ladder_vae_mnist5k() -> Config:
    """Two-level ladder VAE (Sønderby et al. 2016), 32-d bottom and 16-d top latents, KL warm-up, on mnist5k.

        vae train --preset ladder_vae_mnist5k

    Expected: test ELBO -103.2 nats, test IWAE log p(x) -97.6 nats (k = 100), 15 active units
    (seed 0, 6000 steps, one run of python -m experiments.run_presets, 2026-12-02, as `hvae_mnist5k`).
    """
    return Config(name="ladder_vae_mnist5k", data=MNIST5K,
                  model=dataclasses.replace(MLP, name="ladder_vae", latent_dim=16, bottom_latent_dim=32),
                  objective=ObjectiveConfig(kl_schedule="linear", kl_warmup_steps=1000),
                  optim=MNIST_OPTIM, train=MNIST_TRAIN)


@register
def mnist_iwae_burda() -> Config:
    """Burda et al. (2016) MNIST IWAE: 200-200 tanh MLP, 50-d latent, k=5, batch 20, Adam eps 1e-4,
    lr 1e-3 * 10^(-i/7) for 3^i epochs (i=0..7, 3,280 epochs); needs TFDS `mnist` (network or prepared).

        vae train --preset mnist_iwae_burda

    Expected: not run here (TFDS `mnist` and 3,280 epochs); Burda et al. 2016, table 1 report
    a test NLL of 85.54 nats for this setting (IWAE, k = 5, one stochastic layer).
    """
    steps_per_epoch = 60_000 // 20
    epochs, boundaries = 0, []
    for i in range(7):
        epochs += 3**i
        boundaries.append(epochs * steps_per_epoch)
    total = sum(3**i for i in range(8)) * steps_per_epoch
    return Config(
        name="mnist_iwae_burda",
        data=DataConfig(name="mnist", binarize="dynamic"),
        model=ModelConfig(name="iwae", architecture="mlp", latent_dim=50, hidden=(200, 200), activation="tanh"),
        objective=ObjectiveConfig(iwae_samples=5),
        optim=OptimConfig(learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-4, schedule="piecewise",
                          boundaries=tuple(boundaries), scales=(10 ** (-1 / 7),) * 7),
        train=TrainConfig(steps=total, batch_size=20, eval_every=steps_per_epoch * 10, log_every=1000,
                          eval_batch_size=1000, final_iwae_samples=5000),
    )
