"""Figures. Every function returns a matplotlib Figure and never calls plt.show()."""

from __future__ import annotations

import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def _tile(images: np.ndarray, ncols: int, pad: int = 1) -> np.ndarray:
    """images: [N, H, W, C] in [0, 1] -> one [rows*(H+pad)-pad, ncols*(W+pad)-pad, C] canvas (padding white)."""
    n, h, w, c = images.shape
    nrows = -(-n // ncols)
    canvas = np.ones((nrows * (h + pad) - pad, ncols * (w + pad) - pad, c), np.float32)
    for i in range(n):
        r, col = divmod(i, ncols)
        canvas[r * (h + pad):r * (h + pad) + h, col * (w + pad):col * (w + pad) + w] = images[i]
    return canvas


def image_grid(images: np.ndarray, ncols: int = 8, title: str | None = None,
               row_labels: Sequence[str] | None = None, cell_inches: float = 0.7) -> Figure:
    """A grid of images. images: [N, H, W, C] in [0, 1], grayscale (C=1) or colour (C=3)."""
    images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be [N, H, W, 1 or 3], got shape {images.shape}")
    ncols = max(1, min(ncols, images.shape[0]))
    nrows = -(-images.shape[0] // ncols)
    canvas = _tile(images, ncols)
    fig = Figure(figsize=(max(2.5, ncols * cell_inches + (1.0 if row_labels else 0.2)), nrows * cell_inches + 0.6),
                 layout="constrained")
    ax = fig.subplots()
    if canvas.shape[-1] == 1:
        ax.imshow(canvas[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(canvas, interpolation="nearest")
    ax.set_xticks([])
    if row_labels:
        h = images.shape[1] + 1
        ax.set_yticks([i * h + h / 2 - 1 for i in range(len(row_labels))], labels=list(row_labels))
        ax.tick_params(axis="y", length=0)
    else:
        ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 150) -> str:
    """Writes `fig` as PNG (parent folders created) and returns the path."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
