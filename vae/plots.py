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


# ----------------------------------------------------------------------------- latent-space figures


def _as_images(images, ndim: int, what: str) -> np.ndarray:
    """Checks [..., H, W, C] with C 1 or 3 and `ndim` axes; returns float32 clipped to [0, 1]."""
    images = np.asarray(images, np.float32)
    if images.ndim != ndim or images.shape[-1] not in (1, 3):
        raise ValueError(f"{what} must have {ndim} axes ending in H, W, C with C = 1 or 3; got shape {images.shape}")
    return np.clip(images, 0.0, 1.0)


def _show(ax, canvas: np.ndarray) -> None:
    if canvas.shape[-1] == 1:
        ax.imshow(canvas[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(canvas, interpolation="nearest")
    for spine in ax.spines.values():
        spine.set_visible(False)


def _wrap(text: str | None, width_inches: float, fontsize: float = 12.0) -> str | None:
    """Breaks a title into lines that fit `width_inches` at `fontsize` points."""
    if not text:
        return text
    import textwrap

    chars = max(16, int(width_inches * 72.0 / (0.55 * fontsize)))
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


def _format_value(v) -> str:
    if isinstance(v, str):
        return v
    v = float(v)
    return "0" if abs(v) < 5e-13 else f"{v:.2g}" if abs(v) < 0.01 or abs(v) >= 100 else f"{v:.2f}"


def _thin(n: int, max_ticks: int) -> list[int]:
    """Indices of at most max_ticks evenly spread ticks out of n (always the first and last)."""
    if n <= max_ticks:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, max_ticks).round().astype(int).tolist()))


def traversal_grid(images, row_labels: Sequence[str] | None = None, col_values=None, title: str | None = None,
                   xlabel: str | None = "value of the traversed dimension", cell_inches: float = 0.6) -> Figure:
    """Latent traversals: one row per traversed dimension. images: [rows, cols, H, W, C].

    row_labels: one per row, e.g. 'z3 (KL 2.41)'. col_values: [cols] numbers or strings shared
    by every row (shown under the last row), or [rows, cols] numbers, one set per row (shown
    under each row)."""
    images = _as_images(images, 5, "traversal images")
    rows, cols, h, w, _ = images.shape
    if row_labels is not None and len(row_labels) != rows:
        raise ValueError(f"{len(row_labels)} row labels for {rows} rows")
    per_row = None
    shared = None
    if col_values is not None:
        arr = np.asarray(col_values, dtype=object)
        if arr.ndim == 2:
            if arr.shape != (rows, cols):
                raise ValueError(f"col_values must be [cols={cols}] or [rows={rows}, cols={cols}], got {arr.shape}")
            per_row = [[_format_value(v) for v in r] for r in arr]
        elif arr.ndim == 1 and arr.shape[0] == cols:
            shared = [_format_value(v) for v in arr]
        else:
            raise ValueError(f"col_values must be [cols={cols}] or [rows={rows}, cols={cols}], got {arr.shape}")
    label_w = 1.3 if row_labels else 0.2
    tick_h = 0.25 if per_row else 0.0
    fig = Figure(figsize=(max(3.0, cols * cell_inches + label_w), rows * (cell_inches + tick_h) + 0.9 +
                          (0.3 if xlabel else 0.0)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, 1, squeeze=False)[:, 0])
    centres = [j * (w + 1) + w / 2 - 0.5 for j in range(cols)]
    for r, ax in enumerate(axes):
        _show(ax, _tile(images[r], cols))
        ax.set_yticks([])
        if row_labels is not None:
            ax.set_ylabel(row_labels[r], rotation=0, ha="right", va="center", fontsize=9)
        labels = per_row[r] if per_row else (shared if shared and r == rows - 1 else None)
        if labels:
            keep = _thin(cols, 11)
            ax.set_xticks([centres[j] for j in keep], labels=[labels[j] for j in keep], fontsize=8)
            ax.tick_params(axis="x", length=2, pad=2)
        else:
            ax.set_xticks([])
    if xlabel and col_values is not None:
        axes[-1].set_xlabel(_wrap(xlabel, fig.get_figwidth(), 10))
    if title:
        fig.suptitle(_wrap(title, fig.get_figwidth()))
    return fig


def interpolation_strip(images, title: str | None = None, originals=None, ts=None,
                        cell_inches: float = 0.6) -> Figure:
    """Interpolations: images [steps, H, W, C] (one path) or [pairs, steps, H, W, C], one row
    per pair. originals: optional (images_a, images_b), [pairs, H, W, C] each, shown at either
    end of each row beyond a gap. ts: [steps] interpolation weights for the column labels."""
    images = np.asarray(images, np.float32)
    if images.ndim == 4:
        images = images[None]
    images = _as_images(images, 5, "interpolation images")
    pairs, steps, h, w, c = images.shape
    tick_labels = [_format_value(t) for t in ts] if ts is not None else [str(j) for j in range(steps)]
    canvas = _tile(images.reshape(-1, h, w, c), steps)                          # [rows, steps] of cells
    centres = [j * (w + 1) + w / 2 - 0.5 for j in range(steps)]
    if originals is not None:
        a, b = (_as_images(np.asarray(o).reshape(pairs, h, w, c), 4, "originals") for o in originals)
        sep = max(3, w // 4)
        ends = [_tile(e, 1) for e in (a, b)]
        white = np.ones((canvas.shape[0], sep, c), np.float32)
        canvas = np.concatenate([ends[0], white, canvas, white, ends[1]], axis=1)
        shift = w + sep
        centres = [w / 2 - 0.5] + [x + shift for x in centres] + [canvas.shape[1] - w / 2 - 0.5]
    ncols = len(centres)
    fig = Figure(figsize=(max(3.0, ncols * cell_inches + (0.9 if pairs > 1 else 0.3)), pairs * cell_inches + 1.2),
                 layout="constrained")
    ax = fig.subplots()
    _show(ax, canvas)
    if originals is not None:
        keep = [0] + [1 + j for j in _thin(steps, 11)] + [ncols - 1]
        labels = ["x_a"] + [tick_labels[j - 1] for j in keep[1:-1]] + ["x_b"]
        ax.set_xlabel(_wrap("interpolation weight t (outer columns: the images themselves)", fig.get_figwidth(), 10))
    else:
        keep = _thin(steps, 11)
        labels = [tick_labels[j] for j in keep]
        ax.set_xlabel("interpolation weight t" if ts is not None else "step")
    ax.set_xticks([centres[j] for j in keep], labels=labels, fontsize=8)
    ax.tick_params(axis="x", length=2)
    if pairs > 1:
        ax.set_yticks([i * (h + 1) + h / 2 - 0.5 for i in range(pairs)], labels=[f"pair {i + 1}" for i in range(pairs)],
                      fontsize=8)
        ax.tick_params(axis="y", length=0)
    else:
        ax.set_yticks([])
    if title:
        ax.set_title(_wrap(title, fig.get_figwidth()))
    return fig


def manifold_plot(images, values_x, values_y, dims: Sequence[int] = (0, 1), title: str | None = None,
                  cell_inches: float = 0.45) -> Figure:
    """A decoded 2-D latent grid. images: [gy, gx, H, W, C] with images[i, j] decoded at
    z[dims[0]] = values_x[j], z[dims[1]] = values_y[i]; drawn with z[dims[1]] growing upward."""
    images = _as_images(images, 5, "manifold images")
    gy, gx, h, w, c = images.shape
    values_x, values_y = np.asarray(values_x), np.asarray(values_y)
    if values_x.shape != (gx,) or values_y.shape != (gy,):
        raise ValueError(f"values_x / values_y must have {gx} / {gy} entries, got {values_x.shape} / {values_y.shape}")
    canvas = _tile(images[::-1].reshape(-1, h, w, c), gx, pad=0)
    side = max(3.5, min(8.0, max(gx, gy) * cell_inches))
    fig = Figure(figsize=(side * gx / max(gx, gy) + 1.0, side * gy / max(gx, gy) + 0.9), layout="constrained")
    ax = fig.subplots()
    _show(ax, canvas)
    keep_x, keep_y = _thin(gx, 8), _thin(gy, 8)
    ax.set_xticks([j * w + w / 2 - 0.5 for j in keep_x], labels=[f"{values_x[j]:.2f}" for j in keep_x], fontsize=8)
    ax.set_yticks([(gy - 1 - i) * h + h / 2 - 0.5 for i in keep_y], labels=[f"{values_y[i]:.2f}" for i in keep_y],
                  fontsize=8)
    ax.set_xlabel(f"z{dims[0]}")
    ax.set_ylabel(f"z{dims[1]}")
    ax.set_title(_wrap(title or f"Decoded grid over z{dims[0]} and z{dims[1]}", fig.get_figwidth()))
    return fig


def embedding_scatter(coords, colour_values=None, categorical: bool = True, label_names: Sequence[str] | None = None,
                      title: str | None = None, axis_labels: tuple[str, str] = ("dim 1", "dim 2"),
                      colour_label: str | None = None, point_size: float = 6.0) -> Figure:
    """A 2-D scatter of embedded points. coords: [N, 2]. colour_values: [N] class ids
    (categorical, with a legend naming them through label_names) or continuous values (with a
    colour bar); None draws every point alike. More than 20 classes get a colour bar."""
    coords = np.asarray(coords, np.float64)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"coords must be [N, 2], got shape {coords.shape}")
    fig = Figure(figsize=(6.4, 5.0), layout="constrained")
    ax = fig.subplots()
    if colour_values is None:
        ax.scatter(coords[:, 0], coords[:, 1], s=point_size, alpha=0.7, linewidths=0)
    else:
        colour_values = np.asarray(colour_values)
        if colour_values.shape[0] != coords.shape[0]:
            raise ValueError(f"{colour_values.shape[0]} colour values for {coords.shape[0]} points")
        classes = np.unique(colour_values) if categorical else None
        if categorical and classes.size <= 20:
            cmap = matplotlib.colormaps["tab10" if classes.size <= 10 else "tab20"]
            for i, cls in enumerate(classes):
                sel = colour_values == cls
                name = str(cls)
                if label_names is not None and np.issubdtype(classes.dtype, np.integer) and 0 <= int(cls) < len(label_names):
                    name = str(label_names[int(cls)])
                ax.scatter(coords[sel, 0], coords[sel, 1], s=point_size, alpha=0.7, linewidths=0, color=cmap(i),
                           label=name)
            fig.legend(loc="outside right upper", title=colour_label, markerscale=2.5, frameon=False, fontsize=9)
        else:
            sc = ax.scatter(coords[:, 0], coords[:, 1], c=colour_values.astype(np.float64), s=point_size, alpha=0.8,
                            linewidths=0, cmap="viridis")
            fig.colorbar(sc, ax=ax, label=colour_label or "")
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    if title:
        ax.set_title(_wrap(title, 5.0))
    return fig


def _read_records(metrics) -> list[dict]:
    if isinstance(metrics, (str, os.PathLike)):
        import json

        with open(metrics) as f:
            return [json.loads(line) for line in f if line.strip()]
    return list(metrics)


def training_curves(metrics, title: str | None = "Training curves") -> Figure:
    """Loss, ELBO, reconstruction (−log p(x|z)) and KL against step, train and test lines.
    metrics: a metrics.jsonl path or its records (dicts with step, split and the metrics).
    The y-range leaves out the first 5 % of steps when there are enough points, so the early
    transient does not flatten the rest."""
    records = _read_records(metrics)
    panels = [("loss", "loss (nats)"), ("elbo", "ELBO (nats)"), ("recon", "reconstruction −log p(x|z) (nats)"),
              ("kl", "KL (nats)")]
    fig = Figure(figsize=(8.5, 6.0), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True).ravel()
    max_step = max((r.get("step", 0) for r in records), default=0)
    for ax, (key, label) in zip(axes, panels):
        shown = []
        for split, style in (("train", dict(lw=1.4)), ("test", dict(lw=1.4, ls="--", marker="o", ms=3))):
            pts = sorted((r["step"], r[key]) for r in records
                         if r.get("split") == split and r.get(key) is not None and np.isfinite(r[key]))
            if not pts:
                continue
            steps, vals = np.array(pts, np.float64).T
            ax.plot(steps, vals, label=split, **style)
            shown.append((steps, vals))
        if shown:
            late = np.concatenate([v[s >= 0.05 * max_step] for s, v in shown])
            if late.size >= 4 and np.ptp(late) > 0:
                lo, hi = late.min(), late.max()
                ax.set_ylim(lo - 0.08 * (hi - lo), hi + 0.08 * (hi - lo))
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, f"no '{key}' in the log", ha="center", va="center", transform=ax.transAxes)
        ax.set_ylabel(label, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[2:]:
        ax.set_xlabel("step")
    if title:
        fig.suptitle(_wrap(title, fig.get_figwidth()))
    return fig


def traversal_animation(images, path: str | os.PathLike, fps: int = 5, row_labels: Sequence[str] | None = None,
                        col_values=None, title: str | None = None, dpi: int = 100) -> str:
    """An animated GIF of traversals: images [rows, cols, H, W, C]; each frame shows every row
    (traversed dimension) at one column, sweeping the columns forward and back. Written with
    matplotlib.animation's PillowWriter; returns the path."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    images = _as_images(images, 5, "traversal images")
    rows, cols, h, w, c = images.shape
    lines = -(-rows // 5)
    per_line = -(-rows // lines)
    frames_idx = list(range(cols)) + list(range(cols - 2, 0, -1))
    fig = Figure(figsize=(max(3.0, per_line * 1.3), lines * 1.5 + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(lines, per_line, squeeze=False).ravel())
    shows = []
    for r, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if r >= rows:
            ax.set_axis_off()
            continue
        first = images[r, 0]
        if c == 1:
            shows.append(ax.imshow(first[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest"))
        else:
            shows.append(ax.imshow(first, interpolation="nearest"))
        ax.set_xlabel(row_labels[r] if row_labels is not None else f"row {r}", fontsize=8)
    heading = fig.suptitle(title or "")
    labels = None
    if col_values is not None:
        arr = np.asarray(col_values, dtype=object)
        labels = [_format_value(v) for v in (arr if arr.ndim == 1 else arr[0])]

    def update(j):
        for r, im in enumerate(shows):
            im.set_data(images[r, j, ..., 0] if c == 1 else images[r, j])
        text = f"column {j + 1}/{cols}" + (f"  ({labels[j]})" if labels else "")
        heading.set_text(f"{title}: {text}" if title else text)
        return shows

    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    anim = FuncAnimation(fig, update, frames=frames_idx, blit=False)
    anim.save(path, writer=PillowWriter(fps=fps), dpi=dpi)
    return path
