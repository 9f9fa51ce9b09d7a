"""Quantizers of the discrete-latent family, one module each: a map from encoder outputs
z_e [..., D] to quantized vectors z_q [..., D] with integer codes, differentiable by a
straight-through estimator. `fsq`: finite scalar quantization (Mentzer et al. 2024)."""

from vae.models.quantizers.fsq import FSQ, round_ste

__all__ = ["FSQ", "round_ste"]
