"""Presets of the deterministic, distribution-matching, perceptual and adversarial variants on
mnist5k, all on the quickstart's terms (MLP 784-512-256, 16-d latent, Bernoulli likelihood,
dynamic binarization, 6,000 steps of batch 128, Adam with cosine decay) so that they compare with
each other and with `quickstart`. Objective hyperparameters are each variant's paper defaults
(see `vae/variants/`). Each docstring gives the result of one run (seed 0, 6,000 steps,
`python -m experiments.run_presets --zoo --evaluate --iwae-samples 1000`, 2026-12-02, evaluated
at the last step); the whole table and what the samples look like are in benchmarks/NOTES.md,
"Model zoo II".
"""

import dataclasses

from vae.config import Config, ObjectiveConfig
from vae.presets.mnist import MLP, MNIST5K, MNIST_OPTIM, MNIST_TRAIN
from vae.presets.registry import register


def mnist5k_preset(name: str, variant: str, objective: ObjectiveConfig | None = None) -> Config:
    """`variant` on the quickstart's terms (network, data, optimizer, budget), with `objective`."""
    return Config(name=name, data=MNIST5K, model=dataclasses.replace(MLP, name=variant),
                  objective=objective or ObjectiveConfig(), optim=MNIST_OPTIM, train=MNIST_TRAIN)


@register
def ae_mnist5k() -> Config:
    """Deterministic autoencoder (no density), MLP, on mnist5k.

        vae train --preset ae_mnist5k

    Expected: test recon 75.8 nats, MSE 22.9 per image; N(0, I) samples mostly not digits
    (fd_classifier 487, recall 0.03).
    """
    return mnist5k_preset("ae_mnist5k", "ae")


@register
def wae_mnist5k() -> Config:
    """WAE-MMD (Tolstikhin et al. 2018; lambda 10, IMQ kernel), MLP, on mnist5k.

        vae train --preset wae_mnist5k

    Expected: test recon 74.0 nats, MSE 22.6 per image, fd_classifier 213, precision 0.54,
    recall 0.61.
    """
    return mnist5k_preset("wae_mnist5k", "wae")


@register
def swae_mnist5k() -> Config:
    """Sliced-Wasserstein AE (Kolouri et al. 2019; 50 projections), MLP, on mnist5k.

        vae train --preset swae_mnist5k

    Expected: test recon 72.9 nats, MSE 22.2 per image, fd_classifier 176, precision 0.45,
    recall 0.74.
    """
    return mnist5k_preset("swae_mnist5k", "swae")


@register
def rae_l2_mnist5k() -> Config:
    """RAE with a decoder L2 penalty (Ghosh et al. 2020), MLP, on mnist5k; samples from N(0, I).

        vae train --preset rae_l2_mnist5k

    Expected: test recon 75.7 nats, MSE 22.9 per image; N(0, I) samples mostly not digits
    (fd_classifier 492, recall 0.02).
    """
    return mnist5k_preset("rae_l2_mnist5k", "rae_l2")


@register
def rae_gp_mnist5k() -> Config:
    """RAE with a decoder gradient penalty (Ghosh et al. 2020), MLP, on mnist5k; samples from N(0, I).

        vae train --preset rae_gp_mnist5k

    Expected: test recon 75.6 nats, MSE 22.8 per image; N(0, I) samples mostly not digits
    (fd_classifier 498, recall 0.03).
    """
    return mnist5k_preset("rae_gp_mnist5k", "rae_gp")


@register
def aae_mnist5k() -> Config:
    """Adversarial autoencoder (Makhzani et al. 2016), MLP, on mnist5k.

        vae train --preset aae_mnist5k

    Expected: test recon 73.6 nats, MSE 22.5 per image, fd_classifier 97, precision 0.52, recall
    0.78.
    """
    return mnist5k_preset("aae_mnist5k", "aae")


@register
def info_vae_mnist5k() -> Config:
    """InfoVAE / MMD-VAE (Zhao et al. 2019; alpha 0, lambda 1000), MLP, on mnist5k.

        vae train --preset info_vae_mnist5k

    Expected: test ELBO -119.3 nats, IWAE NLL 114.2 (k = 1000), fd_classifier 120, precision
    0.81, recall 0.50.
    """
    return mnist5k_preset("info_vae_mnist5k", "info_vae")


@register
def logcosh_vae_mnist5k() -> Config:
    """VAE with a log-cosh reconstruction cost (Chen et al. 2019; a = 10), MLP, on mnist5k.

        vae train --preset logcosh_vae_mnist5k

    Expected: test ELBO -251.5 nats (its loss is not the Bernoulli ELBO), IWAE NLL 177.3 (k =
    1000), fd_classifier 78, precision 0.61, recall 0.78.
    """
    return mnist5k_preset("logcosh_vae_mnist5k", "logcosh_vae")


@register
def msssim_vae_mnist5k() -> Config:
    """VAE with an MS-SSIM reconstruction cost (Snell et al. 2017; 2 scales at 28x28), MLP, on mnist5k.

        vae train --preset msssim_vae_mnist5k

    Expected: test ELBO -133.7 nats, IWAE NLL 122.1 (k = 1000), fd_classifier 159, precision
    0.59, recall 0.62.
    """
    return mnist5k_preset("msssim_vae_mnist5k", "msssim_vae")


@register
def dfc_vae_mnist5k() -> Config:
    """DFC-VAE (Hou et al. 2017) in the features of the dataset classifier, MLP, on mnist5k.

        vae train --preset dfc_vae_mnist5k

    Trains the dataset classifier first (1,500 steps, cached in RUN_DIR/classifier/).

    Expected: test ELBO -116.3 nats, IWAE NLL 108.7 (k = 1000), fd_classifier 155, precision
    0.60, recall 0.65.
    """
    return mnist5k_preset("dfc_vae_mnist5k", "dfc_vae")


@register
def vae_gan_mnist5k() -> Config:
    """VAE-GAN (Larsen et al. 2016), MLP encoder/decoder, conv discriminator, on mnist5k.

        vae train --preset vae_gan_mnist5k

    The discriminator's convolutions are narrowed to 16-32-64 for this CPU (the default 32-64-128
    costs 3.4x per step here; benchmarks/NOTES.md, "Model zoo II").

    Expected (gamma = 10): test ELBO -398.1 nats, IWAE NLL 275.6 (k = 1000), fd_classifier 116,
    precision 0.85, recall 0.27, 7 active units; speckled, mostly recognizable digits. The old
    default gamma = 1e-6 collapsed (benchmarks/NOTES.md, "Model zoo II").
    """
    return mnist5k_preset("vae_gan_mnist5k", "vae_gan", ObjectiveConfig(disc_channels=(16, 32, 64)))


@register
def vae_patchgan_mnist5k() -> Config:
    """VAE plus the adaptive PatchGAN term (Esser et al. 2021) from step 3000, MLP, on mnist5k.

        vae train --preset vae_patchgan_mnist5k

    The PatchGAN's convolutions are narrowed to 16-32-64 for this CPU (64-128-256 costs 9x per
    step here; benchmarks/NOTES.md, "Model zoo II").

    Expected: test ELBO -142.7 nats, IWAE NLL 127.8 (k = 1000), fd_classifier 120, precision
    0.58, recall 0.80 (the VAE alone: 98.7, 135, 0.63, 0.73).
    """
    return mnist5k_preset("vae_patchgan_mnist5k", "vae", ObjectiveConfig(adversarial="patchgan", adversarial_start=3000,
                                                                  disc_channels=(16, 32, 64)))


# Every preset of this module, by name (for experiments.run_presets --zoo and the tests).
PRESETS = tuple(sorted(name for name, fn in list(globals().items())
                       if getattr(fn, "__module__", "") == __name__ and name.endswith("_mnist5k")))
