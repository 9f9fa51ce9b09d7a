"""Training objectives, one module per loss, behind one interface (`base.Objective`).

    elbo               ELBO / beta-VAE (Kingma & Welling 2014; Higgins et al. 2017), AnnealedVAE (Burgess 2018)
    total_correlation  beta-TCVAE and the minibatch TC decomposition (Chen et al. 2018)
    factor_vae         FactorVAE with its discriminator (Kim & Mnih 2018)
    dip_vae            DIP-VAE-I / II (Kumar et al. 2018)
    iwae               IWAE with optional DReG gradients (Burda et al. 2016; Tucker et al. 2019)
    gumbel             categorical latents: the Gumbel-softmax ELBO (Jang et al. 2017), JointVAE (Dupont 2018)
    multisample        MIWAE, CIWAE, PIWAE (Rainforth et al. 2018)
    vq                 VQ-VAE with EMA codebook (van den Oord et al. 2017)
    autoencoders       AE, WAE-MMD (Tolstikhin 2018), SWAE (Kolouri 2019), RAE-L2/GP (Ghosh 2020)
    reconstruction     InfoVAE (Zhao 2019), log-cosh / MS-SSIM / feature-perceptual VAEs
    adversarial        AAE (Makhzani 2016), VAE-GAN (Larsen 2016)
    patchgan           the adaptive PatchGAN term for any objective (Esser et al. 2021)
    divergences, similarity, discriminators   MMD and sliced Wasserstein; SSIM, MS-SSIM, log-cosh; discriminators
    schedules          KL schedules and free bits

Which objective a `model.name` trains with is declared by its variant (`vae/variants/`).
"""

from __future__ import annotations

from vae.objectives.adversarial import AAE, VAEGAN
from vae.objectives.autoencoders import AE, RAE, SWAE, WAE, autoencoder_metrics, decoder_gradient_penalty
from vae.objectives.base import Objective, bits_per_dim, elbo_metrics, forward
from vae.objectives.dip_vae import DIPVAE, dip_covariance
from vae.objectives.elbo import ELBO, AnnealedVAE
from vae.objectives.factor_vae import FactorVAE, permute_dims
from vae.objectives.divergences import mmd, sliced_wasserstein
from vae.objectives.gumbel import GumbelSoftmaxELBO, JointVAEObjective, gumbel_temperature
from vae.objectives.iwae import IWAE
from vae.objectives.multisample import CIWAE, MIWAE, PIWAE, ciwae_bound, iwae_bound, miwae_bound
from vae.objectives.patchgan import AdversarialTerm
from vae.objectives.reconstruction import InfoVAE, PerceptualVAE
from vae.objectives.schedules import free_bits_kl, make_kl_schedule
from vae.objectives.total_correlation import BetaTCVAE, tc_decomposition
from vae.objectives.vq import VQObjective

__all__ = [
    "Objective", "ELBO", "AnnealedVAE", "BetaTCVAE", "FactorVAE", "DIPVAE", "IWAE", "VQObjective",
    "bits_per_dim", "elbo_metrics", "forward", "free_bits_kl", "make_kl_schedule", "tc_decomposition",
    "dip_covariance", "permute_dims", "AE", "WAE", "SWAE", "RAE", "AAE", "VAEGAN", "InfoVAE",
    "PerceptualVAE", "AdversarialTerm", "autoencoder_metrics", "decoder_gradient_penalty", "mmd", "sliced_wasserstein",
    "GumbelSoftmaxELBO", "JointVAEObjective", "gumbel_temperature", "MIWAE", "CIWAE", "PIWAE", "iwae_bound", "miwae_bound", "ciwae_bound",
]
