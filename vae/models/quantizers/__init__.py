"""Quantizers of the discrete-latent family, one module each: a map from encoder outputs
z_e [..., D] to quantized vectors z_q [..., D] with integer codes, differentiable by a
straight-through estimator. `fsq`: finite scalar quantization (Mentzer et al. 2024); `lfq`:
lookup-free quantization with its entropy penalty (Yu et al. 2024)."""

from vae.models.quantizers.fsq import FSQ, round_ste
from vae.models.quantizers.lfq import LFQ

__all__ = ["FSQ", "LFQ", "round_ste"]
