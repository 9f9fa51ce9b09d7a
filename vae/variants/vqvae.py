"""`vqvae`: VQ-VAE (van den Oord et al. 2017, eq. 3): `latent_dim / code size` codes, straight-through
gradients (or the rotation trick), EMA codebook (appendix A.1, decay 0.99), commitment 0.25; the
quantizer is `model.quantizer` (vq, rvq, fsq, lfq; see `vae.models.vqvae`), with k-means
initialization and dead-code expiry as options; `model.code_map` gives the paper's 2-D map of
codes from fully convolutional networks (sec. 4.1; `vae.models.map_nets`). Leaves out: the autoregressive prior over codes
inside the model (samples draw codes uniformly; `vae fit-sampler --sampler code_prior` fits one).
See `vae.models.vqvae` and `vae.objectives.vq`."""

from vae.config import ConfigError
from vae.models import VQVAE, build_likelihood
from vae.models.map_nets import ConvMapDecoder, ConvMapEncoder, map_shape
from vae.models.networks import get_activation
from vae.objectives import VQObjective
from vae.registry import Variant, register
from vae.variants.common import networks


def _code_size(m) -> int:
    return len(m.fsq_levels) if m.quantizer == "fsq" else m.code_dim


def _map_networks(config, image_shape, out_channels):
    """The paper's fully convolutional networks and the code map's (h, w); latent_dim must be
    h * w * code size (checked here: the image size is known only now)."""
    code, (h, w) = _code_size(config), map_shape(image_shape, len(config.channels))
    if config.latent_dim != h * w * code:
        raise ConfigError(f"model.latent_dim={config.latent_dim} must equal the code map's h * w * code size = "
                          f"{h} * {w} * {code} = {h * w * code} for model.code_map on {image_shape[0]}x"
                          f"{image_shape[1]} images with {len(config.channels)} strided layers (model.channels)")
    act = get_activation(config.activation)
    channels = tuple(config.channels)
    return (ConvMapEncoder(code, channels=channels, kernel_size=config.kernel_size, activation=act),
            ConvMapDecoder((*image_shape[:2], out_channels), code, channels=channels[::-1],
                           kernel_size=config.kernel_size, activation=act), (h, w))


def _model(config, image_shape, num_classes):
    likelihood = build_likelihood(config)
    out_channels = likelihood.param_channels(image_shape[-1])
    if config.code_map:
        encoder, decoder, code_map = _map_networks(config, image_shape, out_channels)
    else:
        (encoder, decoder), code_map = networks(config, image_shape, out_channels), None
    return VQVAE(encoder=encoder, decoder=decoder, likelihood=likelihood, latent_dim=config.latent_dim,
                 num_codes=config.num_codes, code_dim=config.code_dim, quantizer=config.quantizer,
                 cosine=config.codebook_cosine, gradient=config.vq_gradient, codebook_dim=config.codebook_dim,
                 rvq_depth=config.rvq_depth, fsq_levels=tuple(config.fsq_levels), code_map=code_map)


def _objective(config, *, dataset_size, total_steps):
    o = config.objective
    return VQObjective(commitment=o.vq_commitment, decay=o.vq_decay, kmeans_init=o.vq_kmeans_init,
                       dead_code_steps=o.vq_dead_code_steps, entropy_weight=o.lfq_entropy_weight,
                       diversity_gamma=o.lfq_diversity_gamma, lfq_temperature=o.lfq_temperature)


def _validate(config) -> None:
    m, o = config.model, config.objective
    code = _code_size(m)
    if m.code_map and m.architecture != "conv":
        raise ConfigError(f"model.code_map needs model.architecture=conv (the paper's fully convolutional "
                          f"networks), not {m.architecture!r}")
    what = f"len(model.fsq_levels)={code}" if m.quantizer == "fsq" else f"model.code_dim={code}"
    if m.latent_dim % code:
        raise ConfigError(f"model.latent_dim={m.latent_dim} must be a multiple of {what} for vqvae")
    if m.vq_gradient == "rotation" and m.quantizer != "vq":
        raise ConfigError(f"model.vq_gradient=rotation applies to model.quantizer=vq, not {m.quantizer!r}")
    if m.codebook_cosine and m.quantizer != "vq":
        raise ConfigError(f"model.codebook_cosine applies to model.quantizer=vq, not {m.quantizer!r}")
    if m.codebook_dim is not None and m.quantizer not in ("vq", "rvq"):
        raise ConfigError(f"model.codebook_dim applies to model.quantizer=vq or rvq, not {m.quantizer!r}")
    if m.quantizer == "lfq" and m.code_dim > 16:
        raise ConfigError(f"model.code_dim={m.code_dim} is too many LFQ bits per code (2^{m.code_dim} codes); "
                          f"at most 16")
    if (o.vq_kmeans_init or o.vq_dead_code_steps) and m.quantizer not in ("vq", "rvq"):
        raise ConfigError(f"objective.vq_kmeans_init / vq_dead_code_steps apply to a learned codebook "
                          f"(model.quantizer=vq or rvq), not {m.quantizer!r}")
    rows = config.train.batch_size * (m.latent_dim // code)
    if (o.vq_kmeans_init or o.vq_dead_code_steps) and rows < m.num_codes:
        raise ConfigError(f"objective.vq_kmeans_init / vq_dead_code_steps draw codes from one batch's encoder "
                          f"outputs: train.batch_size * codes per image = {rows} must be >= model.num_codes="
                          f"{m.num_codes}")


VARIANT = register(Variant(
    name="vqvae",
    build_model=_model,
    build_objective=_objective,
    reads=("model.num_codes", "model.code_dim", "model.code_map", "model.quantizer", "model.codebook_cosine",
           "model.vq_gradient", "model.codebook_dim", "model.rvq_depth", "model.fsq_levels", "objective.vq_commitment",
           "objective.vq_decay", "objective.vq_kmeans_init", "objective.vq_dead_code_steps",
           "objective.lfq_entropy_weight", "objective.lfq_diversity_gamma", "objective.lfq_temperature"),
    paper="van den Oord et al. 2017, Neural Discrete Representation Learning, eq. 3 and appendix A.1",
    summary="VQ-VAE (EMA codebook; quantizers vq, rvq, fsq, lfq)",
    validate=_validate,
))
