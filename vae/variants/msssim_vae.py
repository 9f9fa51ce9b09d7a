"""`msssim_vae`: the VAE with an MS-SSIM reconstruction cost (Snell et al. 2017): number of pixels
times 1 - MS-SSIM(x, x_hat) (Wang et al. 2003: 11 x 11 Gaussian window, the five scales' weights,
as many scales as the image holds, `objective.ssim_scales`), plus beta KL (beta = 1). 28 x 28
images hold 2 scales, 64 x 64 hold 3. The reported ELBO is the bound under the config's
likelihood. See `vae.objectives.similarity.ms_ssim`."""

from vae.objectives import PerceptualVAE
from vae.registry import Variant, register
from vae.variants.common import gaussian_vae


def _objective(config, *, dataset_size, total_steps):
    return PerceptualVAE(cost="msssim", beta=VARIANT.value(config, "objective.beta"),
                         ssim_scales=config.objective.ssim_scales)


VARIANT = register(Variant(
    name="msssim_vae",
    build_model=lambda config, image_shape, num_classes: gaussian_vae(config, image_shape),
    build_objective=_objective,
    reads=("objective.beta", "objective.ssim_scales"),
    defaults={"objective.beta": 1.0},
    paper="Snell et al. 2017, Learning to Generate Images with Perceptual Similarity Metrics (MS-SSIM loss)",
    summary="MS-SSIM reconstruction VAE",
))
