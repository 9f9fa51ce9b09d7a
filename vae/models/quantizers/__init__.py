"""Quantizers of the discrete-latent family, one module each: a map from encoder outputs
z_e [..., D] to quantized vectors z_q [..., D] with integer codes, differentiable by a
straight-through estimator. `vq`: nearest codebook entry (Euclidean or cosine) and the rotation trick; `rvq`: residual
VQ (Zeghidour et al. 2021); `fsq`: finite scalar quantization (Mentzer et al. 2024); `lfq`:
lookup-free quantization with its entropy penalty (Yu et al. 2024); `codebook`: k-means
initialization, dead-code expiry and usage diagnostics."""

from vae.models.quantizers.codebook import codebook_usage, expire_dead_codes, kmeans_codebook, level_usage
from vae.models.quantizers.fsq import FSQ, round_ste
from vae.models.quantizers.lfq import LFQ
from vae.models.quantizers.rvq import residual_quantize
from vae.models.quantizers.vq import l2_normalize, nearest_code, rotation_trick, straight_through

__all__ = ["FSQ", "LFQ", "codebook_usage", "expire_dead_codes", "kmeans_codebook", "l2_normalize", "level_usage",
           "nearest_code", "residual_quantize", "rotation_trick", "round_ste", "straight_through"]
