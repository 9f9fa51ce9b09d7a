"""Image similarity measures used as reconstruction costs: SSIM and MS-SSIM (Wang et al. 2004;
Wang, Simoncelli & Bovik 2003) and the log-cosh loss (Chen et al. 2019).

Images: [batch, H, W, C] in [0, 1]. SSIM uses an 11 x 11 Gaussian window (sigma 1.5), K1 = 0.01,
K2 = 0.03 and data range 1, over the 'valid' region (no padding), per channel, then averaged:
the same numbers as `skimage.metrics.structural_similarity(..., gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=1)`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

# Wang, Simoncelli & Bovik 2003, sec. 3.2: the weights of the five scales, coarsest last.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW, SIGMA, K1, K2 = 11, 1.5, 0.01, 0.03


def _gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> jax.Array:
    x = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2.0
    g = jnp.exp(-(x**2) / (2.0 * sigma**2))
    return g / jnp.sum(g)


def _filter(x: jax.Array, window: jax.Array) -> jax.Array:
    """Separable 'valid' Gaussian filtering of every channel: [B, H, W, C] -> [B, H-s+1, W-s+1, C]."""
    b, h, w, c = x.shape
    planes = jnp.moveaxis(x, -1, 1).reshape(b * c, h, w, 1)
    size = window.shape[0]
    dn = ("NHWC", "HWIO", "NHWC")
    planes = jax.lax.conv_general_dilated(planes, window.reshape(size, 1, 1, 1), (1, 1), "VALID", dimension_numbers=dn)
    planes = jax.lax.conv_general_dilated(planes, window.reshape(1, size, 1, 1), (1, 1), "VALID", dimension_numbers=dn)
    return jnp.moveaxis(planes.reshape(b, c, *planes.shape[1:3]), 1, -1)


def ssim_components(x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(ssim, cs): means over the valid region and channels of the SSIM map and of its
    contrast-structure part, per image [batch]. x, y: [batch, H, W, C], H and W >= 11."""
    if min(x.shape[1:3]) < WINDOW:
        raise ValueError(f"SSIM needs images of at least {WINDOW}x{WINDOW} pixels; got {x.shape[1]}x{x.shape[2]}")
    window = _gaussian_window()
    c1, c2 = K1**2, K2**2
    mu_x, mu_y = _filter(x, window), _filter(y, window)
    sxx = _filter(x * x, window) - mu_x**2
    syy = _filter(y * y, window) - mu_y**2
    sxy = _filter(x * y, window) - mu_x * mu_y
    cs_map = (2.0 * sxy + c2) / (sxx + syy + c2)
    ssim_map = (2.0 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs_map
    return jnp.mean(ssim_map, axis=(1, 2, 3)), jnp.mean(cs_map, axis=(1, 2, 3))


def ssim(x: jax.Array, y: jax.Array) -> jax.Array:
    """The structural similarity index per image [batch] (Wang et al. 2004, eq. 13)."""
    return ssim_components(x, y)[0]


def max_scales(height: int, width: int) -> int:
    """How many MS-SSIM scales images of this size allow: each scale halves the image, and the
    coarsest must still hold the 11 x 11 window (at most 5, the paper's number)."""
    n = 0
    h, w = height, width
    while n < len(MS_SSIM_WEIGHTS) and min(h, w) >= WINDOW:
        n += 1
        h, w = h // 2, w // 2
    if n == 0:
        raise ValueError(f"MS-SSIM needs images of at least {WINDOW}x{WINDOW} pixels; got {height}x{width}")
    return n


def ms_ssim(x: jax.Array, y: jax.Array, num_scales: int | None = None) -> jax.Array:
    """Multi-scale SSIM per image [batch] (Wang, Simoncelli & Bovik 2003, eq. 7):

        MS-SSIM = l_M^{w_M} * prod_{j=1..M} cs_j^{w_j},

    with 2 x 2 average pooling between scales. num_scales: M (default: as many as the image
    size allows, at most 5; `max_scales`); with M < 5 the first M weights are renormalized to
    sum to 1 (small images such as 28 x 28 MNIST allow 2). The per-scale terms are clipped at
    1e-6 below, so negative correlations give a small positive value instead of NaN powers."""
    allowed = max_scales(x.shape[1], x.shape[2])
    m = allowed if num_scales is None else int(num_scales)
    if not 1 <= m <= allowed:
        raise ValueError(f"num_scales={num_scales} is not allowed for {x.shape[1]}x{x.shape[2]} images; "
                         f"choose 1..{allowed}")
    weights = jnp.asarray(MS_SSIM_WEIGHTS[:m]) / math.fsum(MS_SSIM_WEIGHTS[:m])
    log_value = jnp.zeros(x.shape[0])
    for j in range(m):
        s, cs = ssim_components(x, y)
        term = s if j == m - 1 else cs
        log_value = log_value + weights[j] * jnp.log(jnp.maximum(term, 1e-6))
        if j < m - 1:
            x, y = _pool(x), _pool(y)
    return jnp.exp(log_value)


def _pool(x: jax.Array) -> jax.Array:
    """2 x 2 average pooling (odd sizes drop their last row / column)."""
    b, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def log_cosh(t: jax.Array, a: float = 10.0) -> jax.Array:
    """1/a log cosh(a t), elementwise (Chen et al. 2019), computed as
    (|a t| + log1p(exp(-2 |a t|)) - log 2) / a so that large |t| does not overflow."""
    u = jnp.abs(a * t)
    return (u + jnp.log1p(jnp.exp(-2.0 * u)) - math.log(2.0)) / a
