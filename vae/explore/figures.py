"""Figures of an explorer, as matplotlib Figures: what `vae explore --figure KIND` draws and what
the training loop writes into RUN_DIR/figures/."""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np

from vae import plots
from vae.explore.explorer import Explorer

FIGURE_KINDS = ("samples", "reconstructions", "interpolation", "traversals", "manifold", "embedding", "curves",
                "analogies")
VECTOR_KINDS = ("embedding", "curves")   # the kinds that draw no decoded images: all vector data allow


def _check_images(explorer: Explorer, kind: str) -> None:
    """ValueError when the explorer holds vector data (DatasetInfo.vectors): `kind` draws images."""
    if getattr(explorer.info, "vectors", False):
        raise ValueError(f"figure kind={kind!r} draws images, but this model's data are vectors; allowed for vectors: "
                         f"{', '.join(VECTOR_KINDS)}")


def _pick_pairs(explorer: Explorer, num_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """num_pairs pairs of distinct held images, fixed by seed (different labels where possible)."""
    n = explorer.images.shape[0]
    rng = np.random.default_rng(seed)
    first = rng.choice(n, size=min(num_pairs, n), replace=False)
    second = []
    for i in first:
        pool = np.arange(n)
        if explorer.labels is not None and (explorer.labels != explorer.labels[i]).any():
            pool = pool[explorer.labels != explorer.labels[i]]
        pool = pool[pool != i] if pool.size > 1 else pool
        second.append(int(rng.choice(pool)))
    return first, np.asarray(second)


def _interpolation_figure(explorer: Explorer, steps: int, seed: int, num_pairs: int = 4, method: str = "linear"):
    if explorer.images is not None:
        ia, ib = _pick_pairs(explorer, num_pairs, seed)
        xa, xb = explorer.images[ia], explorer.images[ib]
        ya = None if explorer.labels is None else explorer.labels[ia]
        yb = None if explorer.labels is None else explorer.labels[ib]
        codes_a = explorer.encode(xa, ya)[0]
        codes_b = explorer.encode(xb, yb)[0]
        _, images = explorer.interpolate(codes_a, codes_b, steps=steps, method=method,
                                         y=ya if explorer.num_classes else None)
        originals = (xa, xb)
        title = f"{method.capitalize()} interpolation between posterior means of test images"
    else:
        rng = np.random.default_rng(seed)
        za = rng.standard_normal((num_pairs, explorer.latent_dim)).astype(np.float32)
        zb = rng.standard_normal((num_pairs, explorer.latent_dim)).astype(np.float32)
        _, images = explorer.interpolate(za, zb, steps=steps, method=method)
        originals = None
        title = f"{method.capitalize()} interpolation between prior samples"
    return plots.interpolation_strip(images, title=title, originals=originals, ts=np.linspace(0, 1, steps))


def _traversal_figure(explorer: Explorer, dims, steps: int, seed: int, max_dims: int = 10,
                      range_mode: str | None = None):
    base, what = None, "the zero code"
    if explorer.images is not None:
        base = int(np.random.default_rng(seed).integers(explorer.images.shape[0]))
        what = f"test image {base}"
    t = explorer.traverse(base, dims=dims, num=steps, num_dims=max_dims, range_mode=range_mode)
    spread = ("aggregate posterior" if explorer.images is not None else "prior")
    title = f"Latent traversals around {what}"
    if dims is None and t.kl is not None:
        title += " (dims with the most KL)"
    how = (f"mean ± 3 std of the {spread}" if t.range_mode == "std" else f"range_mode {t.range_mode}")
    return plots.traversal_grid(t.images, t.row_labels(), t.column_labels, title=title,
                                xlabel=f"value of the traversed dimension ({how})")


def _analogies_figure(explorer: Explorer, steps: int | None, seed: int):
    if explorer.num_classes:
        a = explorer.analogies(num=steps or 8, seed=seed)
        names = explorer.label_names() or [str(c) for c in range(explorer.num_classes)]
        return plots.traversal_grid(a.images, [f"row {r} (label {names[int(y)]})" for r, y in zip(a.rows, a.labels)],
                                    ["image", *names], title="Analogies: each image's style code decoded with "
                                    "every label (Kingma et al. 2014, fig. 5)", xlabel="label decoded with")
    if explorer.factors is None:
        raise ValueError("kind='analogies' needs a conditional model, or data with ground-truth factors (sprites) "
                         "for factor swaps")
    s = explorer.swap_factors(num=steps or 6, seed=seed)
    cols = ["a", "b", *[f"{f} of b ({', '.join(f'z{d}' for d in s.dims[f]) or 'no dim'})" for f in s.factors]]
    return plots.traversal_grid(s.images, [f"rows {a}, {b}" for a, b in s.pairs], cols,
                                title="Factor swaps: image a with the latent dims carrying each factor taken from b",
                                xlabel="column: which factor's dims come from b")


def _default_manifold_dims(explorer: Explorer, dims) -> tuple[int, int]:
    if dims is not None:
        dims = tuple(int(k) for k in dims)
        if len(dims) < 2:
            raise ValueError(f"the manifold needs two dims, got {dims}")
        return dims[0], dims[1]
    if explorer.latent_dim < 2:
        raise ValueError("the manifold needs a latent of at least 2 dims")
    if explorer.images is not None:
        top = explorer.rank_dims_by_kl()[0][:2]
        return int(top[0]), int(top[1])
    return 0, 1


def write_run_figures(explorer: Explorer, out_dir: str | os.PathLike, seed: int = 0) -> dict[str, str]:
    """Writes OUT_DIR/figures/traversals.png (the top-KL dims around one test image, μ ± 3σ of
    the aggregate posterior, 9 columns) and OUT_DIR/figures/interpolations.png (4 test-image
    pairs, linear interpolation in 10 steps, the images themselves at either end); returns
    {name: path}."""
    _check_images(explorer, "traversals")
    fig_dir = os.path.join(os.fspath(out_dir), "figures")
    return {
        "traversals": plots.save_figure(_traversal_figure(explorer, None, 9, seed, max_dims=8),
                                        os.path.join(fig_dir, "traversals.png")),
        "interpolations": plots.save_figure(_interpolation_figure(explorer, 10, seed),
                                            os.path.join(fig_dir, "interpolations.png")),
    }


def make_figure(explorer: Explorer | None, kind: str, *, dims: Sequence[int] | None = None, steps: int | None = None,
                seed: int = 0, run_dir: str | os.PathLike | None = None, sampler: str | None = None,
                range_mode: str | None = None):
    """One figure of `kind` (FIGURE_KINDS) as a matplotlib Figure:

    samples          64 prior samples (steps: how many, default 64), or samples of the fitted
                     `sampler` (its name in the run's samplers/; the figure's title says which)
    reconstructions  16 held images over their reconstructions
    interpolation    4 pairs of held images (prior samples without data), `steps` columns (10)
    traversals       `dims` (default: top 10 by KL) around one held image, `steps` columns (9),
                     values by `range_mode` (Explorer.traverse; default 'std')
    manifold         the decoded grid over two `dims` (default: top 2 by KL), steps x steps (15)
    embedding        2-D view of the held posterior means coloured by label ('auto' method;
                     steps: how many points, default 2000)
    curves           training curves from RUN_DIR/metrics.jsonl (run_dir, else explorer.run_dir;
                     explorer may be None)
    analogies        a conditional model: `steps` held images (8), each one's style decoded with
                     every label (Explorer.analogies); an unconditional model on data with
                     factors: `steps` pairs (6), the first with the dims of each factor taken
                     from the second (Explorer.swap_factors)
    """
    if kind not in FIGURE_KINDS:
        raise ValueError(f"unknown figure kind {kind!r}; allowed: {', '.join(FIGURE_KINDS)}")
    if kind == "curves":
        run_dir = run_dir if run_dir is not None else getattr(explorer, "run_dir", None)
        if run_dir is None:
            raise ValueError("kind='curves' needs run_dir (the run's metrics.jsonl)")
        path = os.path.join(os.fspath(run_dir), "metrics.jsonl")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{run_dir} has no training log: {path} is missing")
        return plots.training_curves(path, title=f"Training curves of {os.path.basename(os.path.abspath(run_dir))}")
    if explorer is None:
        raise ValueError(f"kind={kind!r} needs an Explorer")
    if range_mode is not None and kind != "traversals":
        raise ValueError(f"range_mode={range_mode!r} applies to kind='traversals' only, not {kind!r}")
    if sampler is not None and kind != "samples":
        raise ValueError(f"sampler={sampler!r} applies to kind='samples' only, not {kind!r}")
    if kind not in VECTOR_KINDS:
        _check_images(explorer, kind)
    if kind == "samples":
        num = steps or 64
        images = explorer.sample(num, seed=seed, sampler=sampler)
        source = "the prior" if sampler in (None, "normal") else f"the fitted sampler {sampler!r}"
        return plots.image_grid(images, ncols=int(math.ceil(math.sqrt(num))),
                                title=f"Samples from {source} (decoder means)")
    if kind == "reconstructions":
        explorer._require_data("kind='reconstructions'")
        n = explorer.images.shape[0]
        idx = np.linspace(0, n - 1, min(16, n)).astype(int)
        x = explorer.images[idx]
        recon = explorer.reconstruct(x, None if explorer.labels is None else explorer.labels[idx])
        half = max(1, idx.size // 2)
        rows, labels = [], []
        for start in range(0, idx.size, half):
            rows += [x[start:start + half], recon[start:start + half]]
            labels += ["data", "recon"]
        return plots.image_grid(np.concatenate(rows), ncols=half, title="Held-out images and reconstructions",
                                row_labels=labels)
    if kind == "interpolation":
        return _interpolation_figure(explorer, steps or 10, seed)
    if kind == "traversals":
        return _traversal_figure(explorer, dims, steps or 9, seed, range_mode=range_mode)
    if kind == "analogies":
        return _analogies_figure(explorer, steps, seed)
    if kind == "manifold":
        mdims = _default_manifold_dims(explorer, dims)
        m = explorer.manifold(mdims, grid=steps or 15)
        return plots.manifold_plot(m.images, m.values_x, m.values_y, m.dims,
                                   title=f"Decoded latent grid over z{m.dims[0]} and z{m.dims[1]} (others 0)")
    # embedding
    emb = explorer.embedding(num=steps or 2000, seed=seed)
    if emb.labels is not None:
        colour, categorical, names, colour_label = emb.labels, True, explorer.label_names(), "label"
    elif emb.factors is not None:
        colour, categorical, names, colour_label = emb.factors[:, 0], True, None, "factor 0"
    else:
        colour, categorical, names, colour_label = None, True, None, None
    return plots.embedding_scatter(emb.coords, colour, categorical=categorical, label_names=names,
                                   title=f"Posterior means of {emb.coords.shape[0]} held-out images ({emb.method})",
                                   axis_labels=emb.axis_labels, colour_label=colour_label)
