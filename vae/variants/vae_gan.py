"""`vae_gan`: VAE-GAN (Larsen et al. 2016, algorithm 1): the reconstruction error measured in a
discriminator's features, the encoder trained on KL + feature error, the decoder on
gamma * feature error + the GAN term, the discriminator (its own Adam,
`objective.disc_learning_rate`) on real vs reconstructed vs sampled images, all in one jitted
step; gamma = `objective.gan_gamma` (10, this toolkit's default, not the paper's: on this
toolkit's feature scale 1e-6 and 0.01 let the discriminator win and the posterior collapse;
benchmarks/NOTES.md, "Model zoo II"). Leaves out: batch normalization and the paper's equilibrium heuristics. See
`vae.objectives.adversarial.VAEGAN`."""

from vae.objectives import VAEGAN
from vae.registry import Variant, register
from vae.variants.common import gaussian_vae


def _objective(config, *, dataset_size, total_steps):
    o = config.objective
    return VAEGAN(gamma=o.gan_gamma, disc_learning_rate=o.disc_learning_rate,
                  **({"disc_channels": o.disc_channels} if o.disc_channels else {}))


VARIANT = register(Variant(
    name="vae_gan",
    build_model=lambda config, image_shape, num_classes: gaussian_vae(config, image_shape),
    build_objective=_objective,
    reads=("objective.gan_gamma", "objective.disc_learning_rate", "objective.disc_channels"),
    paper="Larsen et al. 2016, Autoencoding beyond pixels using a learned similarity metric, algorithm 1",
    summary="VAE-GAN (learned similarity)",
))
