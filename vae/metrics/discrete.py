"""Histogram discretization and plug-in information estimates (in nats) shared by the
information-based disentanglement metrics (MIG, modularity) and the latent explorer."""

from __future__ import annotations

import numpy as np

NUM_BINS = 20


def histogram_discretize(codes: np.ndarray, num_bins: int = NUM_BINS) -> np.ndarray:
    """Each column of codes [N, d] binned into `num_bins` equal-width bins over its own
    [min, max], as disentanglement_lib `_histogram_discretize`:
    `np.digitize(x, np.histogram(x, num_bins)[1][:-1])`, labels 1..num_bins [N, d] int64.
    A constant column falls into a single bin."""
    codes = np.asarray(codes, dtype=np.float64)
    out = np.zeros(codes.shape, dtype=np.int64)
    for i in range(codes.shape[1]):
        edges = np.histogram(codes[:, i], bins=num_bins)[1]
        out[:, i] = np.digitize(codes[:, i], edges[:-1])
    return out


def discrete_mutual_info(discrete_codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Plug-in mutual information I(code_i; factor_j) in nats (sklearn mutual_info_score):
    discrete_codes [N, d], factors [N, K] -> [d, K]. A constant code has MI 0."""
    from sklearn.metrics import mutual_info_score

    d, k = discrete_codes.shape[1], factors.shape[1]
    m = np.zeros((d, k), dtype=np.float64)
    for i in range(d):
        for j in range(k):
            m[i, j] = mutual_info_score(factors[:, j], discrete_codes[:, i])
    return m


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """Plug-in entropy H(factor_j) in nats of each column of factors [N, K] -> [K]
    (as disentanglement_lib: mutual_info_score(y, y))."""
    from sklearn.metrics import mutual_info_score

    return np.array([mutual_info_score(factors[:, j], factors[:, j]) for j in range(factors.shape[1])],
                    dtype=np.float64)


def _top_two_gap(matrix: np.ndarray) -> np.ndarray:
    """Per column of matrix [d, K]: largest minus second largest entry (minus 0 when d = 1)."""
    s = np.sort(matrix, axis=0)[::-1]
    second = s[1] if s.shape[0] > 1 else np.zeros(s.shape[1])
    return s[0] - second
