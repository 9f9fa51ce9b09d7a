"""Style and content apart: analogies of a conditional model and factor swaps of an unconditional
one. `StyleContent` is a base class of `Explorer`; its methods use only the explorer's
encode/decode, its held data and `factor_dims`."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np


@dataclasses.dataclass
class Analogies:
    """images [rows, num_classes + 1, H, W, C]: column 0 the held image, column 1 + c its style
    code decoded with label c; rows [rows] the data rows used; labels [rows] their own labels."""

    images: np.ndarray
    rows: np.ndarray
    labels: np.ndarray


@dataclasses.dataclass
class FactorSwap:
    """images [pairs, 2 + len(factors), H, W, C]: columns a, b, then a's code with the dims that
    carry each factor taken from b's code (one column per factor); pairs [pairs, 2] the data rows;
    dims {factor name: [dims]} the latent dims swapped for each factor."""

    images: np.ndarray
    pairs: np.ndarray
    factors: list[str]
    dims: dict[str, list[int]]


class StyleContent:
    """Mixin of `Explorer` (needs encode, decode, images, labels, num_classes, factor_dims)."""

    def _data_rows(self, rows, num: int, seed: int) -> np.ndarray:
        n = self.images.shape[0]
        if rows is None:
            return np.sort(np.random.default_rng(seed).choice(n, size=min(num, n), replace=False))
        rows = np.atleast_1d(np.asarray(rows, np.int64))
        if rows.ndim != 1 or rows.size == 0 or rows.min() < 0 or rows.max() >= n:
            raise ValueError(f"rows must be indices in 0..{n - 1}, got {rows.tolist()}")
        return rows

    def analogies(self, rows: Sequence[int] | None = None, num: int = 8, seed: int = 0) -> Analogies:
        """Kingma et al. 2014 (semi-supervised learning with deep generative models), fig. 5: each
        held image's style code z = mean of q(z | x, y) with its own label y, decoded with every
        label: p(x | z, y') for y' = 0..K-1. rows: which data rows (default: `num` drawn with `seed`).
        Needs a conditional model (ValueError otherwise) and held data with labels."""
        if not self.num_classes:
            raise ValueError("analogies need a conditional model (one with labels, e.g. cvae); for an unconditional "
                             "model swap the dims that carry chosen factors: swap_factors()")
        self._require_data("analogies")
        if self.labels is None:
            raise ValueError("analogies need the held data's labels (each image is encoded with its own label)")
        rows = self._data_rows(rows, num, seed)
        labels = np.asarray(self.labels)[rows].astype(np.int32)
        z = self.encode(self.images[rows], labels)[0]
        k = self.num_classes
        codes = np.repeat(z, k, axis=0)
        decoded = self.decode(codes, np.tile(np.arange(k, dtype=np.int32), rows.size))
        decoded = decoded.reshape(rows.size, k, *decoded.shape[1:])
        images = np.concatenate([self.images[rows][:, None], decoded], axis=1)
        return Analogies(images=images, rows=rows, labels=labels)

    def swap_factors(self, factors: Sequence[str] | None = None, pairs=None, num: int = 6, seed: int = 0,
                     min_mi: float = 0.0) -> FactorSwap:
        """Swaps, between two held images a and b, the latent dims that carry chosen ground-truth
        factors: for each factor f, decode a's posterior mean with the dims assigned to f replaced
        by b's. A dim is assigned to the factor it carries most (normalized MI, `factor_dims`) and
        dropped when that MI is below `min_mi`; a factor no dim is assigned to has an empty swap
        (the column repeats a's reconstruction). factors: names (default: all);
        pairs: [P, 2] data rows (default: `num` random pairs drawn with `seed`). Needs held data
        with factors (sprites)."""
        self._require_data("swap_factors")
        info = self.factor_dims()
        names = list(info["factor_names"])
        factors = list(names if factors is None else factors)
        unknown = [f for f in factors if f not in names]
        if unknown:
            raise ValueError(f"unknown factors {unknown}; this data's factors: {', '.join(names)}")
        mi = info["normalized_mi"]
        owner = np.argmax(mi, axis=1)
        dims = {f: [int(d) for d in range(mi.shape[0]) if names[owner[d]] == f and mi[d, owner[d]] >= min_mi]
                for f in factors}
        n = self.images.shape[0]
        if pairs is None:
            rng = np.random.default_rng(seed)
            pairs = np.stack([rng.choice(n, size=2, replace=False) for _ in range(num)])
        pairs = np.asarray(pairs, np.int64)
        if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.min() < 0 or pairs.max() >= n:
            raise ValueError(f"pairs must be [P, 2] indices in 0..{n - 1}, got shape {pairs.shape}")
        za = self.encode(self.images[pairs[:, 0]])[0]
        zb = self.encode(self.images[pairs[:, 1]])[0]
        codes = np.repeat(za[:, None], len(factors), axis=1)
        for j, f in enumerate(factors):
            codes[:, j, dims[f]] = zb[:, dims[f]]
        swapped = self.decode(codes)
        images = np.concatenate([self.images[pairs[:, 0]][:, None], self.images[pairs[:, 1]][:, None], swapped],
                                axis=1)
        return FactorSwap(images=images, pairs=pairs, factors=factors, dims=dims)
