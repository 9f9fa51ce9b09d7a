"""The five sections of a run's config, as frozen dataclasses that check their own values:
`DataConfig`, `ModelConfig`, `ObjectiveConfig`, `OptimConfig`, `TrainConfig`. `vae.config`
assembles them into a `Config` (and re-exports them); read each field's meaning here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from vae import registry
from vae.errors import ConfigError


def _check_choice(key: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}")


def _check_positive(key: str, value: Any, *, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{key}={value!r} is not allowed; it must be {bound}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which data, and how it is preprocessed.

    name: a built-in offline dataset (`mnist5k`, `sprites`), any TFDS image dataset name, or your
      own data: a folder of images (labels from sub-folder names) or an .npz / .npy file of
      images or of vectors [N, D] (`vae.data.files`; vectors train with architecture mlp, a
      gaussian likelihood and binarize none).
    binarize: `dynamic` resamples Bernoulli pixels every batch (test split: once, fixed seed),
      `static` samples them once with a fixed seed, `none` keeps intensities in [0, 1] (and is the
      only choice for real-valued vectors).
    data_dir: TFDS data directory (None: TFDS's default, ~/tensorflow_datasets).
    Your own data: test_path (a second folder or file for `test`; otherwise test_fraction of the
    data is held out, stratified by label, fixed by split_seed), image_size (H, W: resize at
    load) and channels (1 or 3: convert), values (`auto` infers what the values are: `8bit`
    levels k/255, `binary` or `continuous`; set it to override: `8bit` rounds values in [0, 1] to
    the levels, `binary` checks them, `continuous` takes them as given). Bits/dim add the 8-bit
    dequantization offset only when the values are 8bit or binary.
    """

    name: str = "mnist5k"
    train_split: str = "train"
    test_split: str = "test"
    binarize: str = "dynamic"
    data_dir: str | None = None
    test_path: str | None = None
    test_fraction: float = 0.1
    split_seed: int = 0
    image_size: tuple[int, ...] | None = None
    channels: int | None = None
    values: str = "auto"

    def __post_init__(self):
        _check_choice("data.binarize", self.binarize, ("dynamic", "static", "none"))
        _check_choice("data.values", self.values, ("auto", "8bit", "binary", "continuous"))
        if not self.name:
            raise ConfigError("data.name must name a dataset, e.g. 'mnist5k' or 'sprites'")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"data.test_fraction={self.test_fraction!r} must be in (0, 1)")
        if self.image_size is not None and (len(self.image_size) not in (1, 2) or min(self.image_size) < 1):
            raise ConfigError(f"data.image_size={self.image_size!r} is not allowed; give H,W (or one size for both)")
        if self.channels is not None and self.channels not in (1, 3):
            raise ConfigError(f"data.channels={self.channels!r} is not allowed; choose 1 or 3")


def model_names() -> tuple[str, ...]:
    """Every `model.name` a config accepts: the registered variants (`vae.registry`)."""
    return registry.names()


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The model variant, its networks, latent, prior and likelihood.

    name: the variant (and so the objective), any registered name (`vae.config.model_names()`):
      vae, beta_vae, annealed_vae, beta_tcvae, factor_vae, dip_vae_i, dip_vae_ii, iwae, cvae
      (conditional on labels), vqvae, ladder_vae (two-level ladder VAE; latent_dim is the top level,
      bottom_latent_dim the lower one); see `vae/variants/`.
    architecture: `mlp` (dense layers of `hidden` units), `conv` (stride-2 convolutions with
      `channels` filters and mirrored transposed convolutions), `burgess` (the 64x64 conv net
      of Burgess et al. 2018 as in disentanglement_lib; ignores hidden/channels/kernel_size),
      `resnet` (a small residual conv net; `channels` are its stage widths, `hidden` its dense layers).
    prior: `normal` (standard normal), `mog` (mixture of `prior_components` Gaussians) or
      `vamp` (VampPrior with `prior_components` pseudo-inputs).
    activation: the hidden-layer nonlinearity of the networks.
    likelihood: `bernoulli`, `gaussian` (fixed `sigma`, or learned: learn_sigma global|pixel),
      `logistic_mixture` (discretized, `num_mixtures` components; 8-bit data), `categorical`
      (256-way per sub-pixel; 8-bit data).
    num_codes / code_dim: the VQ-VAE codebook (latent_dim must be a multiple of the code size).
      quantizer: vqvae's `vq` (nearest codebook vector), `rvq` (rvq_depth residual codebooks), `fsq`
      (finite scalar quantization on the grid fsq_levels; the code size is len(fsq_levels)) or
      `lfq` (lookup-free, the signs of code_dim channels). codebook_cosine: vq's cosine-similarity
      codebook; vq_gradient: vq's `straight_through` or `rotation` (the rotation trick);
      codebook_dim: vq / rvq look codes up in this lower dimension (None: code_dim). code_map:
      vqvae's latent is a 2-D map of codes, one per position of a fully convolutional encoder's
      last feature map (the paper's networks; architecture conv, `channels` its strided layers);
      latent_dim must then equal h * w * code size.
    flow: vae_nf's steps, `planar` or `radial`; flow_length: the number of flow steps (None: the
      variant's default: vae_nf 10, vae_iaf 2, hamiltonian_vae's leapfrog steps 5, rhvae's 3); flow_hidden:
      vae_iaf's MADE width (None: 320).
    categories: K, the classes of each of categorical_vae's latent_dim categorical variables (10);
      joint_vae: latent_dim continuous dims and num_discrete K-way categorical variables (1).
    spherical: svae's posterior on the sphere S^{latent_dim - 1}, `vmf` (von Mises-Fisher) or
      `power_spherical`. curvature: c of pvae's Poincaré ball, curvature -c (None: 0.7).
    latent_scales / groups_per_scale / group_channels / cells_per_group: nvae's hierarchy, its
      resolutions, latent groups per resolution, channels per group and residual cells per group
      in each tower (None: NVAE's MNIST values 2 / 10 / 20 / 1); nvae's widths are `channels`
      (one per resolution from the full one down to the latent scales', each step a halving).
    """

    name: str = "vae"
    architecture: str = "mlp"
    latent_dim: int = 16
    hidden: tuple[int, ...] = (512, 256)
    channels: tuple[int, ...] = (32, 64)
    kernel_size: int = 4
    activation: str = "relu"
    likelihood: str = "bernoulli"
    sigma: float = 1.0
    learn_sigma: str = "none"
    num_mixtures: int = 10
    prior: str = "normal"
    prior_components: int = 10
    bottom_latent_dim: int = 32
    num_codes: int = 512
    code_dim: int = 8
    quantizer: str = "vq"
    codebook_cosine: bool = False
    vq_gradient: str = "straight_through"
    codebook_dim: int | None = None
    rvq_depth: int = 4
    fsq_levels: tuple[int, ...] = (8, 5, 5, 5)
    code_map: bool = False
    flow: str = "planar"
    flow_length: int | None = None
    flow_hidden: int | None = None
    categories: int = 10
    num_discrete: int = 1
    spherical: str = "vmf"
    curvature: float | None = None
    latent_scales: int | None = None
    groups_per_scale: int | None = None
    group_channels: int | None = None
    cells_per_group: int | None = None

    def __post_init__(self):
        registry.get(self.name)  # a ConfigError naming the registered variants
        _check_choice("model.architecture", self.architecture, ("mlp", "conv", "burgess", "resnet"))
        _check_choice("model.likelihood", self.likelihood, ("bernoulli", "gaussian", "logistic_mixture", "categorical"))
        _check_choice("model.activation", self.activation, ("relu", "tanh", "elu", "leaky_relu", "silu"))
        _check_choice("model.learn_sigma", self.learn_sigma, ("none", "global", "pixel"))
        _check_choice("model.prior", self.prior, ("normal", "mog", "vamp"))
        _check_choice("model.flow", self.flow, ("planar", "radial"))
        _check_choice("model.spherical", self.spherical, ("vmf", "power_spherical"))
        _check_choice("model.quantizer", self.quantizer, ("vq", "rvq", "fsq", "lfq"))
        _check_choice("model.vq_gradient", self.vq_gradient, ("straight_through", "rotation"))
        if not self.fsq_levels or any(v < 2 for v in self.fsq_levels):
            raise ConfigError(f"model.fsq_levels={self.fsq_levels!r} is not allowed; it must be a non-empty list of "
                              f"ints >= 2")
        for key in ("flow_length", "flow_hidden", "curvature", "latent_scales", "groups_per_scale", "group_channels",
                    "cells_per_group", "codebook_dim"):
            if getattr(self, key) is not None:
                _check_positive(f"model.{key}", getattr(self, key))
        for key in ("latent_dim", "kernel_size", "sigma", "num_mixtures", "prior_components", "bottom_latent_dim",
                    "num_codes", "code_dim", "categories", "num_discrete", "rvq_depth"):
            _check_positive(f"model.{key}", getattr(self, key))
        for key, sizes in (("model.hidden", self.hidden), ("model.channels", self.channels)):
            if not sizes or any(s <= 0 for s in sizes):
                raise ConfigError(f"{key}={sizes!r} is not allowed; it must be a non-empty list of positive ints")


@dataclasses.dataclass(frozen=True)
class ObjectiveConfig:
    """Hyperparameters of the objectives; each model variant reads the ones it needs.

    beta: KL weight (None: the variant's paper default: 1 for vae, 4 for beta_vae (Higgins 2017),
      6 for beta_tcvae (Chen 2018)). kl_schedule: constant | linear (warm-up over
      kl_warmup_steps) | cyclical (kl_cycles cycles, rising for kl_cycle_ratio of each; Fu 2019).
    free_bits: nats per group of free_bits_group latent dims (Kingma 2016); 0 disables.
    gamma: AnnealedVAE (1000) / FactorVAE (35) weight (None: the variant's default);
      capacity_max / capacity_steps: the capacity C(t) of annealed_vae (25 nats over 100,000 steps)
      and of joint_vae's continuous KL (5 nats over 25,000 steps); disc_capacity: joint_vae's
      discrete capacity (5 nats, capped at the discrete latents' log K).
    tc_estimator: beta_tcvae's mws | mss. dip_lambda_od / dip_lambda_d: DIP-VAE weights (None:
      10 / 100 for DIP-VAE-I, 10 / 10 for DIP-VAE-II). iwae_samples / dreg: IWAE's k and the DReG
      gradient; iwae_samples is also the inner K of miwae / piwae and the K of ciwae, and
      outer_samples their M (None: the variant's default: iwae k 5; miwae / piwae M = K = 8;
      ciwae K 64). ciwae_beta: CIWAE's weight of the ELBO (0.5). disc_learning_rate: FactorVAE
      discriminator. temperature / min_temperature / anneal_rate: categorical_vae's Gumbel-softmax
      schedule max(min, temperature exp(-rate t)) (1, 0.5, 1e-5; joint_vae: a fixed 0.67);
      categorical_kl: its KL, `discrete` (closed form) or `relaxed` (the concrete densities'
      one-sample estimate). vq_commitment / vq_decay: VQ-VAE
      commitment weight (0.25) and EMA decay of the codebook (0.99; 0 trains it by gradient);
      vq_kmeans_init: the codebook by k-means of the first batch's encoder outputs; vq_dead_code_steps:
      replace codes unused for this many steps (0: never); lfq_entropy_weight / lfq_diversity_gamma /
      lfq_temperature: LFQ's entropy penalty (0.1, 1, 0.01).
    kernel: imq | rbf, the MMD kernel of wae (default imq) and info_vae (default rbf).
      match_weight: the weight of the code-matching term (None: the variant's default: wae 10,
      swae 10, info_vae's lambda 1000, aae 1). info_alpha: InfoVAE's alpha (0).
      num_projections: swae's random directions (50). latent_weight / decoder_weight: RAE's beta
      on 1/2 ||z||^2 (1e-4) and lambda on the decoder regularizer (1e-7).
    logcosh_a: logcosh_vae's a (10). ssim_scales: msssim_vae's scales (None: as many as fit, <= 5).
      feature_weight: dfc_vae's weight of the feature reconstruction (0.5). gan_gamma: vae_gan's
      gamma (10). disc_learning_rate also sets aae's and vae_gan's discriminator.
    adversarial: `patchgan` adds the adaptive PatchGAN term of Esser et al. 2021 to any variant
      (`none` by default), from step adversarial_start on, scaled by adversarial_weight; its
      discriminator's Adam uses disc_learning_rate. disc_channels: the conv widths of vae_gan's
      and the PatchGAN term's image discriminators (empty: (32, 64, 128) and (64, 128, 256)).
    """

    beta: float | None = None
    kl_schedule: str = "constant"
    kl_warmup_steps: int = 0
    kl_cycles: int = 4
    kl_cycle_ratio: float = 0.5
    free_bits: float = 0.0
    free_bits_group: int = 1
    gamma: float | None = None
    capacity_max: float | None = None
    capacity_steps: int | None = None
    disc_capacity: float | None = None
    tc_estimator: str = "mws"
    dip_lambda_od: float | None = None
    dip_lambda_d: float | None = None
    iwae_samples: int | None = None
    outer_samples: int | None = None
    ciwae_beta: float = 0.5
    temperature: float | None = None
    min_temperature: float = 0.5
    anneal_rate: float = 1e-5
    categorical_kl: str = "discrete"
    dreg: bool = False
    disc_learning_rate: float = 1e-4
    vq_commitment: float = 0.25
    vq_decay: float = 0.99
    vq_kmeans_init: bool = False
    vq_dead_code_steps: int = 0
    lfq_entropy_weight: float = 0.1
    lfq_diversity_gamma: float = 1.0
    lfq_temperature: float = 0.01
    kernel: str | None = None
    match_weight: float | None = None
    info_alpha: float = 0.0
    num_projections: int = 50
    latent_weight: float | None = None
    decoder_weight: float | None = None
    logcosh_a: float = 10.0
    ssim_scales: int | None = None
    feature_weight: float = 0.5
    gan_gamma: float = 10.0
    adversarial: str = "none"
    adversarial_start: int = 0
    adversarial_weight: float = 1.0
    disc_channels: tuple[int, ...] = ()

    def __post_init__(self):
        _check_choice("objective.kl_schedule", self.kl_schedule, ("constant", "linear", "cyclical"))
        _check_choice("objective.adversarial", self.adversarial, ("none", "patchgan"))
        _check_choice("objective.categorical_kl", self.categorical_kl, ("discrete", "relaxed"))
        _check_positive("objective.min_temperature", self.min_temperature)
        for key in ("temperature", "capacity_steps"):
            if getattr(self, key) is not None:
                _check_positive(f"objective.{key}", getattr(self, key))
        for key in ("capacity_max", "disc_capacity"):
            if getattr(self, key) is not None:
                _check_positive(f"objective.{key}", getattr(self, key), allow_zero=True)
        _check_positive("objective.anneal_rate", self.anneal_rate, allow_zero=True)
        if self.kernel is not None:
            _check_choice("objective.kernel", self.kernel, ("imq", "rbf"))
        for key in ("match_weight", "latent_weight", "decoder_weight", "ssim_scales", "iwae_samples", "outer_samples"):
            if getattr(self, key) is not None:
                _check_positive(f"objective.{key}", getattr(self, key),
                                allow_zero=key not in ("ssim_scales", "iwae_samples", "outer_samples"))
        for key in ("info_alpha", "feature_weight", "gan_gamma", "adversarial_start", "adversarial_weight"):
            _check_positive(f"objective.{key}", getattr(self, key), allow_zero=True)
        if any(c <= 0 for c in self.disc_channels):
            raise ConfigError(f"objective.disc_channels={self.disc_channels!r} is not allowed; use positive ints")
        for key in ("num_projections", "logcosh_a"):
            _check_positive(f"objective.{key}", getattr(self, key))
        _check_choice("objective.tc_estimator", self.tc_estimator, ("mws", "mss"))
        if self.beta is not None:
            _check_positive("objective.beta", self.beta)
        for key in ("gamma", "dip_lambda_od", "dip_lambda_d"):
            if getattr(self, key) is not None:
                _check_positive(f"objective.{key}", getattr(self, key), allow_zero=True)
        for key in ("kl_warmup_steps", "free_bits", "vq_commitment", "vq_dead_code_steps", "lfq_entropy_weight",
                    "lfq_diversity_gamma"):
            _check_positive(f"objective.{key}", getattr(self, key), allow_zero=True)
        for key in ("kl_cycles", "free_bits_group", "disc_learning_rate", "lfq_temperature"):
            _check_positive(f"objective.{key}", getattr(self, key))
        if not 0 < self.kl_cycle_ratio <= 1:
            raise ConfigError(f"objective.kl_cycle_ratio={self.kl_cycle_ratio!r} must be in (0, 1]")
        if not 0 <= self.ciwae_beta <= 1:
            raise ConfigError(f"objective.ciwae_beta={self.ciwae_beta!r} must be in [0, 1]")
        if not 0 <= self.vq_decay < 1:
            raise ConfigError(f"objective.vq_decay={self.vq_decay!r} must be in [0, 1)")


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """Optimizer (optax): adam or adamw, with linear warm-up into a constant, cosine or
    piecewise-constant schedule (`piecewise`: the rate is multiplied by scales[i] at step
    boundaries[i], e.g. the stepwise decay of Burda et al. 2016)."""

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    schedule: str = "constant"
    boundaries: tuple[int, ...] = ()
    scales: tuple[float, ...] = ()
    eps: float = 1e-8
    warmup_steps: int = 0
    end_learning_rate_factor: float = 0.0
    weight_decay: float = 1e-4
    b1: float = 0.9
    b2: float = 0.999
    clip_norm: float | None = None

    def __post_init__(self):
        _check_choice("optim.optimizer", self.optimizer, ("adam", "adamw"))
        _check_choice("optim.schedule", self.schedule, ("constant", "cosine", "piecewise"))
        _check_positive("optim.eps", self.eps)
        if len(self.boundaries) != len(self.scales):
            raise ConfigError(f"optim.boundaries ({len(self.boundaries)} values) and optim.scales "
                              f"({len(self.scales)} values) must have the same length")
        _check_positive("optim.learning_rate", self.learning_rate)
        _check_positive("optim.warmup_steps", self.warmup_steps, allow_zero=True)
        _check_positive("optim.weight_decay", self.weight_decay, allow_zero=True)
        if not 0 <= self.end_learning_rate_factor <= 1:
            raise ConfigError(f"optim.end_learning_rate_factor={self.end_learning_rate_factor!r} must be in [0, 1]")
        for key in ("b1", "b2"):
            value = getattr(self, key)
            if not 0 <= value < 1:
                raise ConfigError(f"optim.{key}={value!r} is not allowed; it must be in [0, 1)")
        if self.clip_norm is not None:
            _check_positive("optim.clip_norm", self.clip_norm)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Loop settings. Steps count optimizer updates; evaluation and checkpoints happen every `eval_every`.

    final_iwae_samples: k of the importance-weighted log p(x) estimate on the test split at the
    end of the run (0 skips it; `vae.evaluate` gives final numbers with larger k).
    devices: how many local devices train data-parallel (0: all); shard_params splits params and
    optimizer state over them too. on_nonfinite: `stop` (default) ends the run at a NaN/Inf loss
    or gradient, keeping the last good checkpoint; `skip` drops such updates and counts them.
    batch_splits: the train step evaluates the objective on this many equal parts of each batch
    (each with its own key; loss and metrics are their means), which lets XLA:CPU run them side
    by side on its cores. 0 (default, auto): on the CPU backend when one device trains, the
    objective is per-example (the ELBO without free bits, IWAE) and batch_size is even, 4 for the
    burgess and resnet architectures when batch_size / 4 is a whole number >= 16, else 2 (and 2
    for conv); 1 otherwise. An explicit n > 1 needs such an objective
    and a batch_size divisible by n (and by n x devices when several train).
    batch_in_step: `on` gathers (and binarizes) each batch inside the train step's program, `off`
    in a small program of its own; `auto` (default) is `on` except in multi-process runs, whose
    batches are assembled on the host (a second program per step costs more than gathering inside
    the step: benchmarks/NOTES.md, "pipeline").
    compute_dtype: the encoder's and decoder's arithmetic in the train step, `float32`, `bfloat16` or
    `float16` (params, optimizer state, likelihoods and KLs stay float32; evaluation runs in
    float32; `vae.models.precision`).
    loggers: where metrics go besides RUN_DIR/metrics.jsonl (always written): `tensorboard` (event
    files in RUN_DIR/tensorboard/, the default), `wandb`, `mlflow` (when installed); `jsonl` names
    the file itself.
    """

    steps: int = 3000
    batch_size: int = 128
    eval_every: int = 500
    eval_batch_size: int = 500
    log_every: int = 100
    keep_checkpoints: int = 2
    num_samples: int = 64
    final_iwae_samples: int = 100
    devices: int = 0
    shard_params: bool = False
    on_nonfinite: str = "stop"
    batch_in_step: str = "auto"
    batch_splits: int = 0
    progress: bool = True
    loggers: tuple[str, ...] = ("jsonl", "tensorboard")
    compute_dtype: str = "float32"

    def __post_init__(self):
        for name in self.loggers:
            _check_choice("train.loggers", name, ("jsonl", "tensorboard", "wandb", "mlflow"))
        _check_choice("train.compute_dtype", self.compute_dtype, ("float32", "bfloat16", "float16"))
        for key in ("steps", "batch_size", "eval_every", "eval_batch_size", "log_every", "keep_checkpoints", "num_samples"):
            _check_positive(f"train.{key}", getattr(self, key))
        _check_positive("train.final_iwae_samples", self.final_iwae_samples, allow_zero=True)
        _check_positive("train.devices", self.devices, allow_zero=True)
        _check_choice("train.on_nonfinite", self.on_nonfinite, ("stop", "skip"))
        _check_choice("train.batch_in_step", self.batch_in_step, ("auto", "on", "off"))
        if not isinstance(self.batch_splits, int) or isinstance(self.batch_splits, bool) or self.batch_splits < 0:
            raise ConfigError(f"train.batch_splits={self.batch_splits!r} is not allowed; it must be an int >= 0 "
                              "(0: auto)")
        if self.batch_splits > 1 and self.batch_size % self.batch_splits:
            raise ConfigError(f"train.batch_splits={self.batch_splits} does not divide train.batch_size="
                              f"{self.batch_size}; choose a divisor of it, or 0 (auto) or 1")
