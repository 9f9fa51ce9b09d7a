"""Paths through the latent space of an `Explorer`: interpolation, traversals, latent arithmetic
and the decoded 2-D manifold. `LatentPaths` is a base class of `Explorer`; its methods use only
the explorer's encode/decode and the statistics of its held data."""

from __future__ import annotations

import dataclasses
import statistics
from typing import Sequence

import numpy as np

from vae.explore.geometry import gaussian_grid, lerp, slerp

RANGE_MODES = ("std", "values", "quantile", "std_gaussian", "fitted_gaussian", "fixed_interval", "conf_interval",
               "minmax")
# disentanglement_lib's five traversal animations (visualize_model.py), as static rows of values
DLIB_MODES = RANGE_MODES[3:]
INTERPOLATION_METHODS = ("linear", "slerp")


@dataclasses.dataclass
class Traversal:
    """A latent traversal. codes [len(dims), num, d], images [len(dims), num, H, W, C];
    dims [len(dims)] the varied dimensions; values [len(dims), num] the values each took;
    kl [len(dims)] their mean KL (nats) on the explorer's data, or None without data (or for a
    point-mass posterior, which has no KL);
    base [d] the fixed code; column_labels: one label per column for figures;
    factors [len(dims)]: on data with ground-truth factors, (name, normalized MI) of the factor
    each dim carries most (Explorer.factor_dims), else None."""

    codes: np.ndarray
    images: np.ndarray
    dims: np.ndarray
    values: np.ndarray
    kl: np.ndarray | None
    base: np.ndarray
    range_mode: str
    column_labels: list[str]
    factors: list[tuple[str, float]] | None = None

    def row_labels(self) -> list[str]:
        """'z3 (KL 2.41)' per row ('z3' without data), with the factor the dim carries most when
        known: 'z3 (KL 2.41)\npos_x 0.62'."""
        labels = [f"z{int(d)}" for d in self.dims]
        if self.kl is not None:
            labels = [f"{label} (KL {float(k):.2f})" for label, k in zip(labels, self.kl)]
        if self.factors is not None:
            labels = [f"{label}\n{name} {mi:.2f}" for label, (name, mi) in zip(labels, self.factors)]
        return labels


@dataclasses.dataclass
class Manifold:
    """A decoded 2-D grid. images [gy, gx, H, W, C]: images[i, j] has z[dims[0]] = values_x[j]
    and z[dims[1]] = values_y[i] (both ascending); codes [gy, gx, d]."""

    images: np.ndarray
    codes: np.ndarray
    values_x: np.ndarray
    values_y: np.ndarray
    dims: tuple[int, int]


@dataclasses.dataclass
class Embedding:
    """A 2-D view of encoded data. coords [N, 2]; indices [N] rows of the explorer's data;
    labels [N] / factors [N, F] for colouring (None when the data has none); method used;
    axis_labels for the plot."""

    coords: np.ndarray
    indices: np.ndarray
    labels: np.ndarray | None
    factors: np.ndarray | None
    method: str
    axis_labels: tuple[str, str]


class LatentPaths:
    """Interpolation, traversals, attribute vectors and the manifold (see `Explorer`)."""

    # ------------------------------------------------------------------ interpolation

    def interpolate(self, a, b, steps: int = 8, method: str = "linear", y=None) -> tuple[np.ndarray, np.ndarray]:
        """Decodes the path from a to b. a, b: images [H, W, C] (encoded to posterior means) or
        codes [d]; or batches [P, H, W, C] / [P, d] of pairs. method: 'linear' or 'slerp'.

        Returns (codes [steps, d], images [steps, H, W, C]), with a leading [P] axis for
        batches; the first and last codes are a's and b's, so the end images are their
        reconstructions."""
        if method not in INTERPOLATION_METHODS:
            raise ValueError(f"method={method!r} is not allowed; choose one of {', '.join(INTERPOLATION_METHODS)}")
        if steps < 2:
            raise ValueError(f"steps={steps} must be >= 2")
        ca, single_a = self._as_codes(a, y)
        cb, single_b = self._as_codes(b, y)
        if ca.shape != cb.shape:
            raise ValueError(f"a and b give codes of different shapes {ca.shape} and {cb.shape}")
        t = np.linspace(0.0, 1.0, steps)
        fn = slerp if method == "slerp" else lerp
        codes = np.stack([fn(u, v, t) for u, v in zip(ca, cb)]).astype(np.float32)     # [P, steps, d]
        ys = None if y is None or not self.num_classes else np.repeat(self._y(len(ca), y), steps)
        images = self.decode(codes.reshape(-1, self.latent_dim), ys).reshape(*codes.shape[:2], *self.image_shape)
        if single_a and single_b:
            return codes[0], images[0]
        return codes, images

    # ------------------------------------------------------------------ traversals

    def traverse(self, base=None, dims: Sequence[int] | None = None, values=None, num: int = 9,
                 range_mode: str | None = None, span: float = 3.0, *, num_dims: int = 10,
                 quantiles: tuple[float, float] = (0.025, 0.975), relative: bool = False, y=None) -> Traversal:
        """Varies each dim of `dims` on its own around a base code, the others held at the base.

        base: an image [H, W, C] (its posterior mean), a code [d], an int (that row of the
          data) or None (the zero code, the prior mean).
        dims: which dimensions (default: the `num_dims` of highest KL on the data, see
          rank_dims_by_kl; without data the first `num_dims`).
        range_mode (default 'values' when `values` is given, else 'std'):
          'std': `num` values evenly spaced over mean ± span·std of the *aggregate posterior*
            of that dim on the data when the explorer has data, of the *prior* otherwise;
          'quantile': the aggregate posterior means' quantiles of that dim on the data, evenly
            spaced in probability over `quantiles` (2.5 % .. 97.5 % by default);
          'values': `values` as given: [num] shared by every dim, or [len(dims), num];
          disentanglement_lib's five animation ranges, as `num` evenly spaced values (static
          rows, not its cycles that start at the base's value; loc, scale: the aggregate
          posterior's mean and sqrt(Var[mu] + E[sigma^2]) of the dim, needing data):
            'std_gaussian'    standard normal quantiles at probabilities evenly spaced over
                              `quantiles` (its ends: the normal's 0 and 1 quantiles are infinite),
            'fitted_gaussian' the same quantiles of N(loc, scale^2),
            'fixed_interval'  [-2, 2],
            'conf_interval'   [loc - 2 scale, loc + 2 scale],
            'minmax'          [min, max] of the posterior means on the data.
        relative: add the values to the base's own coordinate instead of setting it to them
          (for 'std' the range is then base ± span·std).
        """
        mode = range_mode or ("values" if values is not None else "std")
        if mode not in RANGE_MODES:
            raise ValueError(f"range_mode={mode!r} is not allowed; choose one of {', '.join(RANGE_MODES)}")
        if values is not None and mode != "values":
            raise ValueError(f"values were given but range_mode={mode!r}; use range_mode='values'")
        d = self.latent_dim
        y = self._label_of_base(base, y)
        kl_all = None
        if self.images is not None and not self.latent_diagnostics().get("point_mass"):
            kl_all = np.asarray(self.latent_diagnostics()["kl_per_dim"])
        if dims is None:
            dims = self.rank_dims_by_kl()[0][:num_dims] if self.images is not None else np.arange(min(d, num_dims))
        dims = np.atleast_1d(np.asarray(dims, np.int64))
        if dims.ndim != 1 or dims.size == 0 or dims.min() < 0 or dims.max() >= d:
            raise ValueError(f"dims must be indices in 0..{d - 1}, got {dims.tolist()}")
        base_code = self._base_code(base, y).astype(np.float64)
        column_labels: list[str]
        if mode == "values":
            if values is None:
                raise ValueError("range_mode='values' needs values=[...]")
            vals = np.asarray(values, np.float64)
            if vals.ndim == 1:
                column_labels = [f"{v:.2g}" for v in vals]
                vals = np.broadcast_to(vals, (dims.size, vals.size)).copy()
            elif vals.ndim == 2 and vals.shape[0] == dims.size:
                column_labels = [str(j) for j in range(vals.shape[1])]
            else:
                raise ValueError(f"values must be [num] or [len(dims)={dims.size}, num], got shape {vals.shape}")
            if relative:
                vals = vals + base_code[dims, None]
        elif mode == "std":
            if num < 2:
                raise ValueError(f"num={num} must be >= 2")
            centre, std = self.aggregate_posterior_stats() if self.images is not None else self.prior_stats()
            offsets = np.linspace(-span, span, num)
            centre = base_code[dims] if relative else np.asarray(centre)[dims]
            vals = centre[:, None] + offsets[None, :] * np.asarray(std)[dims, None]
            centre_name = "base" if relative else "μ"
            column_labels = [f"{o:+.3g}σ" if abs(o) > 1e-12 else centre_name for o in offsets]
        elif mode in DLIB_MODES:
            vals, column_labels = self._dlib_range(mode, dims, num, quantiles)
        else:  # quantile
            self._require_data("range_mode='quantile'")
            if num < 2:
                raise ValueError(f"num={num} must be >= 2")
            lo, hi = quantiles
            if not 0.0 <= lo < hi <= 1.0:
                raise ValueError(f"quantiles must satisfy 0 <= low < high <= 1, got {quantiles}")
            probs = np.linspace(lo, hi, num)
            means = self.posterior()[0]
            vals = np.stack([np.quantile(means[:, k], probs) for k in dims])
            if relative:
                vals = vals - np.median(means[:, dims], axis=0)[:, None] + base_code[dims, None]
            column_labels = [f"{100 * p:.3g}%" for p in probs]
        codes = np.broadcast_to(base_code, (dims.size, vals.shape[1], d)).copy()
        for r, k in enumerate(dims):
            codes[r, :, k] = vals[r]
        codes = codes.astype(np.float32)
        images = self.decode(codes.reshape(-1, d), y).reshape(*codes.shape[:2], *self.image_shape)
        factors = None
        if self.images is not None and self.factors is not None:
            info = self.factor_dims()
            best = np.argmax(info["normalized_mi"][dims], axis=1)
            factors = [(info["factor_names"][j], float(info["normalized_mi"][k, j])) for k, j in zip(dims, best)]
        return Traversal(codes=codes, images=images, dims=dims, values=vals,
                         kl=None if kl_all is None else kl_all[dims], base=base_code.astype(np.float32),
                         range_mode=mode, column_labels=column_labels, factors=factors)

    def _dlib_range(self, mode: str, dims: np.ndarray, num: int, quantiles: tuple[float, float]):
        """([len(dims), num] values, column labels) of one of disentanglement_lib's ranges."""
        if num < 2:
            raise ValueError(f"num={num} must be >= 2")
        lo, hi = quantiles
        if not 0.0 < lo < hi < 1.0:
            raise ValueError(f"quantiles must satisfy 0 < low < high < 1 for range_mode={mode!r}, got {quantiles}")
        probs = np.linspace(lo, hi, num)
        if mode == "fixed_interval":
            return np.broadcast_to(np.linspace(-2.0, 2.0, num), (dims.size, num)).copy(), \
                [f"{v:.2g}" for v in np.linspace(-2.0, 2.0, num)]
        if mode == "std_gaussian":
            vals = np.array([statistics.NormalDist().inv_cdf(float(p)) for p in probs])
            return np.broadcast_to(vals, (dims.size, num)).copy(), [f"{100 * p:.3g}%" for p in probs]
        self._require_data(f"range_mode={mode!r}")
        loc, scale = (np.asarray(a, np.float64)[dims] for a in self.aggregate_posterior_stats())
        if mode == "fitted_gaussian":
            vals = np.array([[statistics.NormalDist(float(m), float(s)).inv_cdf(float(p)) for p in probs]
                             for m, s in zip(loc, np.maximum(scale, 1e-12))])
            return vals, [f"{100 * p:.3g}%" for p in probs]
        if mode == "conf_interval":
            steps = np.linspace(-2.0, 2.0, num)
            return loc[:, None] + steps[None, :] * scale[:, None], [f"{o:+.2g}σ" for o in steps]
        means = self.posterior()[0][:, dims]
        return np.linspace(means.min(0), means.max(0), num, axis=1), ["min"] + [""] * (num - 2) + ["max"]

    # ------------------------------------------------------------------ latent arithmetic

    def attribute_vector(self, x_a, x_b, y_a=None, y_b=None) -> np.ndarray:
        """Mean posterior code of group b minus that of group a: [d]. x_a, x_b: images
        [N, H, W, C] (or codes [N, d])."""
        ca, _ = self._as_codes(x_a, y_a)
        cb, _ = self._as_codes(x_b, y_b)
        return (cb.astype(np.float64).mean(0) - ca.astype(np.float64).mean(0)).astype(np.float32)

    def _group(self, value, factor) -> np.ndarray:
        self._require_data("attribute_vector_from_labels")
        if factor is None:
            if self.labels is None:
                raise ValueError("the explorer's data has no labels; pass factor=... or use attribute_vector")
            column, what = self.labels, "label"
        else:
            if self.factors is None:
                raise ValueError("the explorer's data has no ground-truth factors")
            names = tuple(getattr(self.info, "factor_names", ()) or ())
            if isinstance(factor, str):
                if factor not in names:
                    raise ValueError(f"unknown factor {factor!r}; factors are {', '.join(names) or 'unnamed'}")
                factor = names.index(factor)
            if not 0 <= int(factor) < self.factors.shape[1]:
                raise ValueError(f"factor={factor} must be in 0..{self.factors.shape[1] - 1}")
            column = self.factors[:, int(factor)]
            what = f"factor {names[int(factor)] if names else int(factor)!r}"
        mask = column == value
        if not mask.any():
            raise ValueError(f"no example has {what} == {value!r}; values present: {sorted(set(column.tolist()))[:20]}")
        return mask

    def attribute_vector_from_labels(self, label_a, label_b, factor: int | str | None = None) -> np.ndarray:
        """attribute_vector between the held examples with label `label_a` and those with
        `label_b` (or, with `factor`, ground-truth factor value indices of that factor, e.g.
        factor='shape' or factor=0 on sprites): [d]."""
        mean = self.posterior()[0].astype(np.float64)
        ma, mb = self._group(label_a, factor), self._group(label_b, factor)
        return (mean[mb].mean(0) - mean[ma].mean(0)).astype(np.float32)

    def apply_attribute(self, x_or_code, vector: np.ndarray, scales: Sequence[float] = (0.0, 0.5, 1.0, 1.5, 2.0),
                        y=None) -> tuple[np.ndarray, np.ndarray]:
        """Latent arithmetic: decode code + s·vector for each s in `scales`.

        x_or_code: an image [H, W, C] or code [d] (or batches [N, ...]). Returns (codes [S, d],
        images [S, H, W, C]), with a leading [N] axis for batches."""
        codes, single = self._as_codes(x_or_code, y)
        vector = np.asarray(vector, np.float32)
        if vector.shape != (self.latent_dim,):
            raise ValueError(f"vector must have shape ({self.latent_dim},), got {vector.shape}")
        s = np.asarray(scales, np.float32).reshape(-1)
        out = codes[:, None, :] + s[None, :, None] * vector[None, None, :]                # [N, S, d]
        ys = None if y is None or not self.num_classes else np.repeat(self._y(len(codes), y), s.size)
        images = self.decode(out.reshape(-1, self.latent_dim), ys).reshape(*out.shape[:2], *self.image_shape)
        return (out[0], images[0]) if single else (out, images)

    # ------------------------------------------------------------------ manifold

    def manifold(self, dims: Sequence[int] = (0, 1), grid: int = 15, base=None,
                 probs: tuple[float, float] = (0.05, 0.95), y=None) -> Manifold:
        """Decodes a grid over two dims at the standard normal's inverse CDF of `grid` evenly
        spaced probabilities in `probs` (Kingma & Welling 2014, fig. 4); the other dims stay at
        the base code (default 0). Returns a Manifold with images [grid, grid, H, W, C]."""
        dims = tuple(int(k) for k in dims)
        if len(dims) != 2 or dims[0] == dims[1] or min(dims) < 0 or max(dims) >= self.latent_dim:
            raise ValueError(f"dims must be two different indices in 0..{self.latent_dim - 1}, got {dims}")
        if grid < 2:
            raise ValueError(f"grid={grid} must be >= 2")
        values = gaussian_grid(grid, *probs)
        y = self._label_of_base(base, y)
        base_code = self._base_code(base, y)
        codes = np.broadcast_to(base_code, (grid, grid, self.latent_dim)).copy()
        codes[:, :, dims[0]] = values[None, :]
        codes[:, :, dims[1]] = values[:, None]
        codes = codes.astype(np.float32)
        images = self.decode(codes.reshape(-1, self.latent_dim), y).reshape(grid, grid, *self.image_shape)
        return Manifold(images=images, codes=codes, values_x=values.copy(), values_y=values.copy(), dims=dims)

    # ------------------------------------------------------------------ embedding
