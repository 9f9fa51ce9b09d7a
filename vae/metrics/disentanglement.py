"""Supervised disentanglement metrics on data with ground-truth factors.

Six scores, each following its paper and the defaults of disentanglement_lib (Locatello et al.
2019, "Challenging Common Assumptions in the Unsupervised Learning of Disentangled
Representations", ICML; the gin files of `config/unsupervised_study_v1/metric_configs`):

    metric                 function                  disentanglement_lib defaults kept here
    BetaVAE score          beta_vae_score            batch_size=64, num_train=10000, num_eval=5000
    FactorVAE score        factor_vae_score          batch_size=64, num_train=10000, num_eval=5000,
                                                     num_variance_estimate=10000, prune threshold 0.05
    MIG                    mig                       num_train=10000, 20-bin histogram discretization
    DCI                    dci                       num_train=10000, num_test=5000, default GBT
    SAP                    sap                       num_train=10000, num_test=5000, continuous=False
    modularity/explicit.   modularity_explicitness   num_train=10000, num_test=5000, 20 bins

Interfaces
----------
* A representation is a function `represent(images [N, H, W, C] float32) -> [N, d]` (here the
  encoder mean, see `encoder_mean_fn`). It is called on chunks of at most `chunk_size` images
  (4096 by default, a memory bound that does not change any number for a deterministic
  representation); its output is used in float64 and must be finite.
* A ground truth (`GroundTruth`, e.g. `vae.data.sprites.Sprites`) has `factor_sizes`,
  `sample_factors(num, rng)`, `sample_with_fixed_factor(num, factor_index, rng)` and
  `render(factors)`. Factors are integer *indices* and are used as the discrete class labels of
  every classifier and every mutual information.
* Every metric takes `seed` and is deterministic: all sampling draws from
  `np.random.default_rng(seed)`, and every scikit-learn estimator gets `random_state=seed`.
  (disentanglement_lib draws from `np.random.RandomState(seed)` in another order, so the sampled
  points, not the definitions, differ from it.) Every result is a dict of plain floats / ints /
  lists plus `settings`: how it was computed (seed, point counts, batch size, bins, classifier,
  scikit-learn version, representation size, wall time, convergence warnings).
* No returned number is NaN: dead (constant) latent dimensions and zero entropies are handled
  by the safe divisions described per metric.

Deviations from disentanglement_lib, all deliberate
---------------------------------------------------
1. scikit-learn versions. disentanglement_lib ran with scikit-learn 0.20, whose
   `LogisticRegression()` meant `solver='liblinear', multi_class='ovr'` (C=1, L2, tol=1e-4,
   max_iter=100). Current scikit-learn removed `multi_class` and refuses liblinear for >2
   classes, so the BetaVAE score and explicitness use
   `OneVsRestClassifier(LogisticRegression(solver='liblinear'))`: the same one-vs-rest liblinear
   models and the same normalized one-vs-rest probabilities.
   SAP's `LinearSVC(C=0.01, class_weight='balanced')` is solved in the primal (`dual=False`,
   what current scikit-learn's `dual='auto'` picks for one feature) rather than the 0.20 dual:
   the objective (L2-regularized squared hinge, strictly convex) and hence its optimum are the
   same; the dual solver is ~30x slower on one feature (1.8 s vs 0.07 s for 10,000 points and
   40 classes).
2. Determinism: scikit-learn estimators get `random_state=seed` (disentanglement_lib leaves the
   gradient-boosted trees unseeded, which permutes features at random at every split).
3. FactorVAE `num_active_dims` is the number of active dimensions; disentanglement_lib reports
   `len(active_dims)`, the length of the boolean mask, i.e. always the latent size.
4. Safe divisions where disentanglement_lib gives NaN or fails: MIG gap of a factor with zero
   entropy in the sample is 0; with a single latent dimension the MIG/SAP gap is to 0;
   explicitness standardizes a constant dimension by 1 instead of 0; modularity with a single
   factor is 1 for an informative code; DCI with one factor (or one code) has per-code
   disentanglement (per-factor completeness) 1.
5. Explicitness AUC: disentanglement_lib binarizes the labels with a MultiLabelBinarizer fitted
   on each split, which misaligns (or fails) when a factor value is missing from a split; here
   each class column of `predict_proba` is scored against the indicator of that same class, and
   the macro average is over the classes that have both positives and negatives in the split.
6. Sampling is chunked for speed (many BetaVAE/FactorVAE points rendered and represented per
   call), which draws the same random variables per point in the same order as a point-by-point
   loop; disentanglement_lib's `batch_size=16` for MIG/DCI/SAP/modularity sampling is only a
   chunk size and has no counterpart here.
"""

from __future__ import annotations

import inspect
import math
import time
import warnings
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

Representation = Callable[[np.ndarray], np.ndarray]

CHUNK_SIZE = 4096
NUM_BINS = 20
DEFAULT_METRICS = ("beta_vae", "factor_vae", "mig", "dci", "sap", "modularity")
_ENTROPY_EPS = 1e-11  # disentanglement_lib's smoothing of DCI importance distributions


@runtime_checkable
class GroundTruth(Protocol):
    """Data with known generative factors (integer indices); `vae.data.sprites.Sprites` is one.

    factor_sizes: number of values of each factor (K factors).
    sample_factors(num, rng) -> [num, K] ints, factors drawn independently and uniformly.
    sample_with_fixed_factor(num, factor_index, rng) -> [num, K] ints, column `factor_index`
        holding one random value shared by all rows, the other columns as sample_factors.
    render(factors [N, K]) -> observations [N, ...] that a representation function accepts.
    `rng` is a `np.random.Generator`.
    """

    factor_sizes: Sequence[int]

    def sample_factors(self, num: int, rng: np.random.Generator) -> np.ndarray: ...

    def sample_with_fixed_factor(self, num: int, factor_index: int, rng: np.random.Generator) -> np.ndarray: ...

    def render(self, factors: np.ndarray) -> np.ndarray: ...


def encoder_mean_fn(model, params, batch_size: int = 256) -> Representation:
    """The representation `images [N, H, W, C] -> E_q[z | x]` [N, d] float64 of a trained VAE,
    computed with `vae.evaluate.encode_split` in batches of `batch_size`."""
    from vae.evaluate import encode_split

    def represent(images: np.ndarray) -> np.ndarray:
        means, _ = encode_split(model, params, np.asarray(images, dtype=np.float32), batch_size=batch_size)
        return np.asarray(means, dtype=np.float64)

    return represent


# ----------------------------------------------------------------------------------------------
# shared helpers


def _sk_seed(seed: int) -> int:
    return int(seed) % (2**32)


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


def _num_factors(ground_truth: GroundTruth) -> int:
    sizes = tuple(int(s) for s in ground_truth.factor_sizes)
    if not sizes:
        raise ValueError("the ground truth has no factors")
    if min(sizes) < 2:
        raise ValueError(f"every factor needs at least 2 values, got factor_sizes={sizes}")
    return len(sizes)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def _represent(represent: Representation, ground_truth: GroundTruth, factors: np.ndarray,
               chunk_size: int) -> np.ndarray:
    """Renders `factors` [N, K] and represents them, `chunk_size` images per call: [N, d] float64."""
    out = []
    for start in range(0, factors.shape[0], chunk_size):
        chunk = factors[start:start + chunk_size]
        codes = np.asarray(represent(ground_truth.render(chunk)), dtype=np.float64)
        if codes.ndim != 2 or codes.shape[0] != chunk.shape[0]:
            raise ValueError(f"the representation must return [N, d] for N={chunk.shape[0]} observations, "
                             f"got shape {codes.shape}")
        out.append(codes)
    codes = np.concatenate(out)
    if not np.all(np.isfinite(codes)):
        raise ValueError("the representation returned non-finite values (NaN or inf)")
    return codes


def _sample_codes(represent: Representation, ground_truth: GroundTruth, num: int,
                  rng: np.random.Generator, chunk_size: int) -> tuple[np.ndarray, np.ndarray]:
    """`num` points with independent uniform factors: codes [num, d] float64, factors [num, K] int64."""
    factors = np.array(ground_truth.sample_factors(int(num), rng), dtype=np.int64)
    return _represent(represent, ground_truth, factors, chunk_size), factors


def _check_labels(factors: np.ndarray, where: str) -> None:
    for k in range(factors.shape[1]):
        if np.unique(factors[:, k]).size < 2:
            raise ValueError(f"factor {k} takes a single value in the {factors.shape[0]} {where} points; "
                             "use more points")


def _fit(estimator, x: np.ndarray, y: np.ndarray, counter: list[int]):
    """estimator.fit(x, y), counting ConvergenceWarnings in counter[0] instead of printing them."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator.fit(x, y)
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            counter[0] += 1
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return estimator


def _liblinear_logistic(seed: int):
    """scikit-learn 0.20's `LogisticRegression()`: one-vs-rest liblinear, C=1, L2, tol=1e-4."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    return OneVsRestClassifier(LogisticRegression(solver="liblinear", C=1.0, tol=1e-4, max_iter=100,
                                                  random_state=_sk_seed(seed)))


_LOGISTIC_DESCRIPTION = ("OneVsRestClassifier(LogisticRegression(solver='liblinear', C=1.0, tol=1e-4, "
                         "max_iter=100)) == scikit-learn 0.20 LogisticRegression()")


def _settings(metric: str, citation: str, seed: int, represent_dim: int, num_factors: int,
              start: float, warnings_count: int, **extra: Any) -> dict[str, Any]:
    out = {"metric": metric, "citation": citation, "seed": int(seed)}
    out.update(extra)
    out.update({"representation_dim": int(represent_dim), "num_factors": int(num_factors),
                "convergence_warnings": int(warnings_count), "sklearn_version": _sklearn_version(),
                "seconds": round(time.perf_counter() - start, 3)})
    return out


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


# ----------------------------------------------------------------------------------------------
# BetaVAE


def beta_vae_score(represent: Representation, ground_truth: GroundTruth, *, seed: int = 0,
                   batch_size: int = 64, num_train: int = 10000, num_eval: int = 5000,
                   chunk_size: int = CHUNK_SIZE) -> dict[str, Any]:
    """BetaVAE disentanglement score (Higgins et al. 2017, "beta-VAE: Learning Basic Visual
    Concepts with a Constrained Variational Framework", ICLR; disentanglement_lib
    `beta_vae.compute_beta_vae_sklearn`).

    One point: a factor y ~ U{1..K}; L = batch_size pairs of factor vectors (v1_l, v2_l) drawn
    independently except [v1_l]_y = [v2_l]_y; feature
        z_diff = (1/L) sum_l |r(x(v1_l)) - r(x(v2_l))|          (mean over pairs, per dimension)
    A linear classifier predicts y from z_diff; the score is its accuracy.
    Defaults (disentanglement_lib): batch_size=64, num_train=10000, num_eval=5000 points; the
    classifier is scikit-learn 0.20's LogisticRegression() (see the module notes). The eval
    points are drawn after the train points from the same generator.
    Returns train_accuracy, eval_accuracy in [0, 1] (chance 1/K) and settings.
    """
    _check_positive(batch_size=batch_size, num_train=num_train, num_eval=num_eval, chunk_size=chunk_size)
    start = time.perf_counter()
    k = _num_factors(ground_truth)
    rng = np.random.default_rng(seed)
    x_train, y_train = _beta_vae_points(represent, ground_truth, batch_size, num_train, rng, chunk_size, k)
    if np.unique(y_train).size < 2:
        raise ValueError(f"all {num_train} training points fix the same factor; use more points")
    counter = [0]
    model = _fit(_liblinear_logistic(seed), x_train, y_train, counter)
    train_accuracy = float(np.mean(model.predict(x_train) == y_train))
    x_eval, y_eval = _beta_vae_points(represent, ground_truth, batch_size, num_eval, rng, chunk_size, k)
    eval_accuracy = float(np.mean(model.predict(x_eval) == y_eval))
    return {
        "train_accuracy": train_accuracy,
        "eval_accuracy": eval_accuracy,
        "settings": _settings("beta_vae", "Higgins et al. 2017 (ICLR)", seed, x_train.shape[1], k, start,
                              counter[0], batch_size=int(batch_size), num_train=int(num_train),
                              num_eval=int(num_eval), classifier=_LOGISTIC_DESCRIPTION,
                              feature="mean |r(x1) - r(x2)| over batch_size pairs sharing one factor value"),
    }


def _beta_vae_points(represent, ground_truth, batch_size, num_points, rng, chunk_size, k):
    per_call = max(1, chunk_size // (2 * batch_size))
    labels = np.zeros(num_points, dtype=np.int64)
    features = []
    for first in range(0, num_points, per_call):
        last = min(first + per_call, num_points)
        f1s, f2s = [], []
        for i in range(first, last):
            index = int(rng.integers(k))
            f1 = np.array(ground_truth.sample_factors(batch_size, rng), dtype=np.int64)
            f2 = np.array(ground_truth.sample_factors(batch_size, rng), dtype=np.int64)
            f2[:, index] = f1[:, index]
            labels[i] = index
            f1s.append(f1)
            f2s.append(f2)
        m = last - first
        codes = _represent(represent, ground_truth, np.concatenate(f1s + f2s), chunk_size)
        z1 = codes[: m * batch_size].reshape(m, batch_size, -1)
        z2 = codes[m * batch_size:].reshape(m, batch_size, -1)
        features.append(np.mean(np.abs(z1 - z2), axis=1))
    return np.concatenate(features), labels


# ----------------------------------------------------------------------------------------------
# FactorVAE


def factor_vae_score(represent: Representation, ground_truth: GroundTruth, *, seed: int = 0,
                     batch_size: int = 64, num_train: int = 10000, num_eval: int = 5000,
                     num_variance_estimate: int = 10000, prune_threshold: float = 0.05,
                     chunk_size: int = CHUNK_SIZE) -> dict[str, Any]:
    """FactorVAE disentanglement score (Kim & Mnih 2018, "Disentangling by Factorising", ICML;
    disentanglement_lib `factor_vae.compute_factor_vae`).

    Global scale: s_j^2 = Var(r_j) (ddof=1) over num_variance_estimate random points. Dimensions
    with s_j < prune_threshold are pruned as collapsed (disentanglement_lib `_prune_dims`:
    `sqrt(variances) >= threshold`, threshold 0.05 in its configs; i.e. the threshold is on the
    global standard deviation). One point: a factor k ~ U{1..K}, L = batch_size points sharing one
    value of factor k, and the vote
        d* = argmin_{j active} Var_l(r_j(x_l)) / s_j^2            (ddof=1; = variance after
                                                                  normalizing by the global std)
    The classifier is the majority vote: each dimension predicts the factor that voted for it
    most often in the training points (ties: the lowest factor index; a dimension with no
    training votes predicts factor 0, as disentanglement_lib's argmax). Accuracy =
    sum_j votes[class(j), j] / num_points.
    Defaults (disentanglement_lib): batch_size=64, num_train=10000, num_eval=5000,
    num_variance_estimate=10000, prune_threshold=0.05. With no active dimension all scores are 0.
    Returns train_accuracy, eval_accuracy in [0, 1] (chance ~1/K), num_active_dims, settings.
    """
    _check_positive(num_train=num_train, num_eval=num_eval, chunk_size=chunk_size)
    if batch_size < 2 or num_variance_estimate < 2:
        raise ValueError(f"batch_size and num_variance_estimate must be >= 2 for a variance, got "
                         f"{batch_size} and {num_variance_estimate}")
    start = time.perf_counter()
    k = _num_factors(ground_truth)
    rng = np.random.default_rng(seed)
    codes, _ = _sample_codes(represent, ground_truth, num_variance_estimate, rng, chunk_size)
    global_variances = np.var(codes, axis=0, ddof=1)
    active = np.sqrt(global_variances) >= prune_threshold
    settings = dict(batch_size=int(batch_size), num_train=int(num_train), num_eval=int(num_eval),
                    num_variance_estimate=int(num_variance_estimate), prune_threshold=float(prune_threshold),
                    prune_rule="active if sqrt(global variance, ddof=1) >= prune_threshold",
                    active_dims=np.flatnonzero(active).tolist(),
                    classifier="majority vote of argmin_j Var_local(r_j) / Var_global(r_j) over active dims")
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0,
                "settings": _settings("factor_vae", "Kim & Mnih 2018 (ICML)", seed, codes.shape[1], k, start, 0,
                                      **settings)}
    train_votes = _factor_vae_votes(represent, ground_truth, batch_size, num_train, rng, chunk_size, k,
                                    global_variances, active)
    classifier = np.argmax(train_votes, axis=0)
    columns = np.arange(train_votes.shape[1])
    train_accuracy = float(train_votes[classifier, columns].sum() / train_votes.sum())
    eval_votes = _factor_vae_votes(represent, ground_truth, batch_size, num_eval, rng, chunk_size, k,
                                   global_variances, active)
    eval_accuracy = float(eval_votes[classifier, columns].sum() / eval_votes.sum())
    return {
        "train_accuracy": train_accuracy,
        "eval_accuracy": eval_accuracy,
        "num_active_dims": int(active.sum()),
        "settings": _settings("factor_vae", "Kim & Mnih 2018 (ICML)", seed, codes.shape[1], k, start, 0,
                              **settings),
    }


def _factor_vae_votes(represent, ground_truth, batch_size, num_points, rng, chunk_size, k,
                      global_variances, active):
    """votes [K, num_active]: how often factor k's batches had their least relative variance in
    active dimension j."""
    votes = np.zeros((k, int(active.sum())), dtype=np.int64)
    per_call = max(1, chunk_size // batch_size)
    for first in range(0, num_points, per_call):
        last = min(first + per_call, num_points)
        indices, batches = [], []
        for _ in range(first, last):
            index = int(rng.integers(k))
            indices.append(index)
            batches.append(np.array(ground_truth.sample_with_fixed_factor(batch_size, index, rng), dtype=np.int64))
        codes = _represent(represent, ground_truth, np.concatenate(batches), chunk_size)
        codes = codes.reshape(last - first, batch_size, -1)
        local_variances = np.var(codes, axis=1, ddof=1)                       # [m, d]
        ratio = local_variances[:, active] / global_variances[active]
        np.add.at(votes, (np.asarray(indices), np.argmin(ratio, axis=1)), 1)
    return votes


# ----------------------------------------------------------------------------------------------
# MIG


def mig(represent: Representation, ground_truth: GroundTruth, *, seed: int = 0, num_train: int = 10000,
        num_bins: int = NUM_BINS, chunk_size: int = CHUNK_SIZE) -> dict[str, Any]:
    """Mutual Information Gap (Chen et al. 2018, "Isolating Sources of Disentanglement in
    Variational Autoencoders", NeurIPS; disentanglement_lib `mig.compute_mig`, its
    "discrete_mig").

        MIG = (1/K) sum_k [ I(z_{j(k)}; v_k) - max_{j != j(k)} I(z_j; v_k) ] / H(v_k),
        j(k) = argmax_j I(z_j; v_k),

    with each latent dimension discretized into `num_bins` (20) equal-width histogram bins
    (`histogram_discretize`) and plug-in estimates over num_train (10000) points: I by sklearn
    mutual_info_score, H(v_k) = I(v_k; v_k) of the sampled factor indices, in nats.
    Safe cases: a factor with zero sampled entropy has gap 0; with one latent the gap is I/H.
    Note the discretization bounds the score below 1 even for a perfect representation when a
    factor has more values than bins (20 bins over 32 positions: H(bin)/H(v) = 0.85).
    Returns mig in [0, 1], per_factor gaps, the mutual_information matrix [d][K] (nats),
    factor_entropy [K] (nats) and settings.
    """
    _check_positive(num_train=num_train, num_bins=num_bins, chunk_size=chunk_size)
    start = time.perf_counter()
    k = _num_factors(ground_truth)
    rng = np.random.default_rng(seed)
    codes, factors = _sample_codes(represent, ground_truth, num_train, rng, chunk_size)
    m = discrete_mutual_info(histogram_discretize(codes, num_bins), factors)
    entropy = discrete_entropy(factors)
    gap = _top_two_gap(m)
    per_factor = np.divide(gap, entropy, out=np.zeros_like(gap), where=entropy > 0)
    return {
        "mig": float(np.mean(per_factor)),
        "per_factor": per_factor.tolist(),
        "mutual_information": m.tolist(),
        "factor_entropy": entropy.tolist(),
        "settings": _settings("mig", "Chen et al. 2018 (NeurIPS)", seed, codes.shape[1], k, start, 0,
                              num_train=int(num_train), num_bins=int(num_bins),
                              discretizer="np.digitize(z, np.histogram(z, num_bins)[1][:-1]) per dimension",
                              estimator="sklearn.metrics.mutual_info_score (nats), gap / H(factor)"),
    }


# ----------------------------------------------------------------------------------------------
# DCI


def _normalized_entropy(p: np.ndarray, axis: int, base: int) -> np.ndarray:
    """Entropy with log base `base` of the distributions (p + 1e-11) normalized along `axis`, as
    disentanglement_lib's `scipy.stats.entropy(importance + 1e-11, base=...)`."""
    q = np.asarray(p, dtype=np.float64) + _ENTROPY_EPS
    q = q / q.sum(axis=axis, keepdims=True)
    return -np.sum(q * np.log(q), axis=axis) / math.log(base)


def dci_from_importance(importance: np.ndarray) -> dict[str, Any]:
    """Disentanglement and completeness (Eastwood & Williams 2018, "A Framework for the
    Quantitative Evaluation of Disentangled Representations", ICLR, Sec. 2; disentanglement_lib
    `dci.disentanglement` / `dci.completeness`) of an importance matrix R [d codes, K factors],
    R_ij >= 0:

        P_ij = R_ij / sum_k R_ik,   D_i = 1 - H_K(P_i.) = 1 + sum_k P_ik log_K P_ik
        rho_i = sum_j R_ij / sum_ij R_ij,   D = sum_i rho_i D_i
        Q_ij = R_ij / sum_k R_kj,   C_j = 1 - H_d(Q_.j),   C = sum_j (sum_i R_ij / sum_ij R_ij) C_j

    Entropies use R + 1e-11 (as disentanglement_lib), so a one-hot row gives D_i = 1 - O(1e-9).
    C is weighted by factor importance, as disentanglement_lib (the paper reports per-factor C_j).
    An all-zero matrix uses uniform weights; an all-zero row (a dead code) has D_i = 0 and weight
    0. With K = 1 every D_i = 1; with d = 1 every C_j = 1.
    Returns disentanglement, completeness in [0, 1], disentanglement_per_code, completeness_per_factor.
    """
    r = np.abs(np.asarray(importance, dtype=np.float64))
    if r.ndim != 2 or r.size == 0:
        raise ValueError(f"importance must be a non-empty [codes, factors] matrix, got shape {r.shape}")
    d, k = r.shape
    per_code = 1.0 - _normalized_entropy(r, axis=1, base=k) if k > 1 else np.ones(d)
    per_factor = 1.0 - _normalized_entropy(r, axis=0, base=d) if d > 1 else np.ones(k)
    per_code = np.clip(per_code, 0.0, 1.0)
    per_factor = np.clip(per_factor, 0.0, 1.0)
    weights = r if r.sum() > 0 else np.ones_like(r)
    code_importance = weights.sum(axis=1) / weights.sum()
    factor_importance = weights.sum(axis=0) / weights.sum()
    return {
        "disentanglement": float(np.clip(np.sum(per_code * code_importance), 0.0, 1.0)),
        "completeness": float(np.clip(np.sum(per_factor * factor_importance), 0.0, 1.0)),
        "disentanglement_per_code": per_code.tolist(),
        "completeness_per_factor": per_factor.tolist(),
    }


GBT_DEFAULTS = {"n_estimators": 100, "learning_rate": 0.1, "max_depth": 3, "subsample": 1.0}


def dci(represent: Representation, ground_truth: GroundTruth, *, seed: int = 0, num_train: int = 10000,
        num_test: int = 5000, gbt_params: dict[str, Any] | None = None,
        chunk_size: int = CHUNK_SIZE) -> dict[str, Any]:
    """DCI (Eastwood & Williams 2018, ICLR; disentanglement_lib `dci.compute_dci`).

    For each factor k, a scikit-learn GradientBoostingClassifier (default parameters, as
    disentanglement_lib: 100 stages of depth-3 trees, learning rate 0.1; `gbt_params` overrides
    them, e.g. {'n_estimators': 10} for quick tests, and is recorded in settings) predicts the
    factor index from the representation of num_train (10000) points; its impurity-based
    `feature_importances_` give column k of the importance matrix R [d, K] (a constant dimension
    gets importance 0). Disentanglement and completeness from R: see `dci_from_importance`.
    Informativeness: the classifiers' accuracy (mean over factors) on the training points and on
    num_test (5000) fresh points (disentanglement_lib calls these "train_err"/"test_err" but they
    are accuracies, higher is better).
    Returns disentanglement, completeness, informativeness_train, informativeness_test (all in
    [0, 1]), informativeness per factor, the importance_matrix [d][K] and settings.
    """
    from sklearn.ensemble import GradientBoostingClassifier

    _check_positive(num_train=num_train, num_test=num_test, chunk_size=chunk_size)
    start = time.perf_counter()
    k = _num_factors(ground_truth)
    rng = np.random.default_rng(seed)
    x_train, y_train = _sample_codes(represent, ground_truth, num_train, rng, chunk_size)
    x_test, y_test = _sample_codes(represent, ground_truth, num_test, rng, chunk_size)
    _check_labels(y_train, "training")
    params = dict(GBT_DEFAULTS)
    params.update(gbt_params or {})
    importance = np.zeros((x_train.shape[1], k), dtype=np.float64)
    train_acc, test_acc = np.zeros(k), np.zeros(k)
    counter = [0]
    for j in range(k):
        model = _fit(GradientBoostingClassifier(random_state=_sk_seed(seed), **params), x_train, y_train[:, j],
                     counter)
        importance[:, j] = np.nan_to_num(np.abs(model.feature_importances_), nan=0.0)
        train_acc[j] = np.mean(model.predict(x_train) == y_train[:, j])
        test_acc[j] = np.mean(model.predict(x_test) == y_test[:, j])
    scores = dci_from_importance(importance)
    return {
        "disentanglement": scores["disentanglement"],
        "completeness": scores["completeness"],
        "informativeness_train": float(train_acc.mean()),
        "informativeness_test": float(test_acc.mean()),
        "informativeness_test_per_factor": test_acc.tolist(),
        "disentanglement_per_code": scores["disentanglement_per_code"],
        "completeness_per_factor": scores["completeness_per_factor"],
        "importance_matrix": importance.tolist(),
        "settings": _settings("dci", "Eastwood & Williams 2018 (ICLR)", seed, x_train.shape[1], k, start,
                              counter[0], num_train=int(num_train), num_test=int(num_test),
                              classifier="sklearn GradientBoostingClassifier per factor",
                              gbt_params=params,
                              importance="feature_importances_ (impurity), informativeness = accuracy"),
    }


# ----------------------------------------------------------------------------------------------
# SAP


def sap(represent: Representation, ground_truth: GroundTruth, *, seed: int = 0, num_train: int = 10000,
        num_test: int = 5000, continuous_factors: bool = False, chunk_size: int = CHUNK_SIZE) -> dict[str, Any]:
    """Separated Attribute Predictability (Kumar, Sattigeri & Balakrishnan 2018, "Variational
    Inference of Disentangled Latent Concepts from Unlabeled Observations", ICLR, Sec. 3;
    disentanglement_lib `sap_score.compute_sap`).

    Score matrix S [d, K]: with continuous_factors=False (the disentanglement_lib default), S_ij is
    the test accuracy (on num_test=5000 points) of `LinearSVC(C=0.01, class_weight='balanced')`
    trained on the single latent dimension i of num_train=10000 points to predict factor j
    (plain accuracy as disentanglement_lib, not the paper's balanced accuracy). With
    continuous_factors=True, S_ij = Cov(z_i, v_j)^2 / (Var z_i Var v_j) on the training points
    (0 when Var z_i <= 1e-12). Then
        SAP = (1/K) sum_j [ S_(1)j - S_(2)j ],     the gap between the two largest entries of column j
    (with one latent dimension, the gap to 0).
    Returns sap in [0, 1], per_factor gaps, the score_matrix [d][K] and settings.
    """
    from sklearn.svm import LinearSVC

    _check_positive(num_train=num_train, num_test=num_test, chunk_size=chunk_size)
    start = time.perf_counter()
    k = _num_factors(ground_truth)
    rng = np.random.default_rng(seed)
    x_train, y_train = _sample_codes(represent, ground_truth, num_train, rng, chunk_size)
    x_test, y_test = _sample_codes(represent, ground_truth, num_test, rng, chunk_size)
    d = x_train.shape[1]
    scores = np.zeros((d, k), dtype=np.float64)
    counter = [0]
    if continuous_factors:
        for i in range(d):
            for j in range(k):
                cov = np.cov(x_train[:, i], y_train[:, j].astype(np.float64), ddof=1)
                if cov[0, 0] > 1e-12 and cov[1, 1] > 0:
                    scores[i, j] = cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1])
    else:
        _check_labels(y_train, "training")
        for i in range(d):
            for j in range(k):
                clf = LinearSVC(C=0.01, class_weight="balanced", dual=False, random_state=_sk_seed(seed))
                _fit(clf, x_train[:, i:i + 1], y_train[:, j], counter)
                scores[i, j] = np.mean(clf.predict(x_test[:, i:i + 1]) == y_test[:, j])
    per_factor = _top_two_gap(scores)
    return {
        "sap": float(np.mean(per_factor)),
        "per_factor": per_factor.tolist(),
        "score_matrix": scores.tolist(),
        "settings": _settings("sap", "Kumar et al. 2018 (ICLR)", seed, d, k, start, counter[0],
                              num_train=int(num_train), num_test=int(num_test),
                              continuous_factors=bool(continuous_factors),
                              classifier=("R^2 of each (latent, factor) pair on the training points"
                                          if continuous_factors else
                                          "LinearSVC(C=0.01, class_weight='balanced', dual=False) on one "
                                          "latent dimension; score = test accuracy")),
    }


# ----------------------------------------------------------------------------------------------
# modularity and explicitness


def modularity_from_mutual_info(mutual_information: np.ndarray) -> tuple[float, np.ndarray]:
    """Modularity (Ridgeway & Mozer 2018, Sec. 3) of an MI matrix m [d codes, K factors]:
        delta_i = (sum_j m_ij^2 - max_j m_ij^2) / ((K - 1) max_j m_ij^2),  modularity_i = 1 - delta_i,
    averaged over codes. A code with no information (max m_ij = 0, e.g. a constant dimension)
    scores 0, as disentanglement_lib; with K = 1 an informative code scores 1.
    Returns (mean modularity, per-code modularity)."""
    sq = np.square(np.asarray(mutual_information, dtype=np.float64))
    top = sq.max(axis=1)
    numerator = sq.sum(axis=1) - top
    denominator = top * (sq.shape[1] - 1.0)
    delta = np.divide(numerator, denominator, out=np.zeros_like(top), where=denominator > 0)
    per_code = np.where(top > 0, np.clip(1.0 - delta, 0.0, 1.0), 0.0)
    return float(np.mean(per_code)), per_code


def _ovr_auc(clf, x: np.ndarray, y: np.ndarray) -> float:
    """Macro one-vs-rest ROC AUC of the classifier's class probabilities, over the classes that
    have both positives and negatives in (x, y); 0.5 (chance) when there are none."""
    from sklearn.metrics import roc_auc_score

    proba = clf.predict_proba(x)
    aucs = []
    for col, c in enumerate(clf.classes_):
        truth = y == c
        if truth.any() and not truth.all():
            aucs.append(roc_auc_score(truth, proba[:, col]))
    return float(np.mean(aucs)) if aucs else 0.5


def modularity_explicitness(represent: Representation, ground_truth: GroundTruth, *, seed: int = 0,
                            num_train: int = 10000, num_test: int = 5000, num_bins: int = NUM_BINS,
                            chunk_size: int = CHUNK_SIZE) -> dict[str, Any]:
    """Modularity and explicitness (Ridgeway & Mozer 2018, "Learning Deep Disentangled Embeddings
    With the F-Statistic Loss", NeurIPS, Sec. 3; disentanglement_lib
    `modularity_explicitness.compute_modularity_explicitness`).

    Modularity: from the MI matrix of the `num_bins` (20) histogram-discretized latents and the
    factor indices on num_train (10000) points, see `modularity_from_mutual_info`.
    Explicitness: latents standardized by the training mean and std (a constant dimension by
    std 1); per factor, a one-vs-rest logistic regression (scikit-learn 0.20's
    LogisticRegression(), see the module notes) on all latents; the factor's explicitness is the
    mean over its values of the one-vs-rest ROC AUC of the predicted class probabilities, on the
    training points and on num_test (5000) fresh points; averaged over factors.
    Returns modularity, explicitness_train, explicitness_test (all in [0, 1]; chance AUC 0.5),
    the per-code and per-factor values and settings.
    """
    _check_positive(num_train=num_train, num_test=num_test, num_bins=num_bins, chunk_size=chunk_size)
    start = time.perf_counter()
    k = _num_factors(ground_truth)
    rng = np.random.default_rng(seed)
    x_train, y_train = _sample_codes(represent, ground_truth, num_train, rng, chunk_size)
    x_test, y_test = _sample_codes(represent, ground_truth, num_test, rng, chunk_size)
    _check_labels(y_train, "training")
    mi = discrete_mutual_info(histogram_discretize(x_train, num_bins), y_train)
    modularity, per_code = modularity_from_mutual_info(mi)
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    x_train_n, x_test_n = (x_train - mean) / std, (x_test - mean) / std
    train_auc, test_auc = np.zeros(k), np.zeros(k)
    counter = [0]
    for j in range(k):
        clf = _fit(_liblinear_logistic(seed), x_train_n, y_train[:, j], counter)
        train_auc[j] = _ovr_auc(clf, x_train_n, y_train[:, j])
        test_auc[j] = _ovr_auc(clf, x_test_n, y_test[:, j])
    return {
        "modularity": modularity,
        "explicitness_train": float(train_auc.mean()),
        "explicitness_test": float(test_auc.mean()),
        "modularity_per_code": per_code.tolist(),
        "explicitness_test_per_factor": test_auc.tolist(),
        "mutual_information": mi.tolist(),
        "settings": _settings("modularity", "Ridgeway & Mozer 2018 (NeurIPS)", seed, x_train.shape[1], k, start,
                              counter[0], num_train=int(num_train), num_test=int(num_test), num_bins=int(num_bins),
                              classifier=_LOGISTIC_DESCRIPTION + " per factor on standardized latents",
                              explicitness="macro one-vs-rest ROC AUC over factor values"),
    }


# ----------------------------------------------------------------------------------------------
# all of them

METRICS: dict[str, Callable[..., dict[str, Any]]] = {
    "beta_vae": beta_vae_score,
    "factor_vae": factor_vae_score,
    "mig": mig,
    "dci": dci,
    "sap": sap,
    "modularity": modularity_explicitness,
}


def compute_all(represent: Representation, ground_truth: GroundTruth, seed: int = 0,
                metrics: Sequence[str] = DEFAULT_METRICS, **overrides: Any) -> dict[str, dict[str, Any]]:
    """Runs the named metrics with the same seed: {metric: {values..., 'settings': {...}}}.

    Metric names: 'beta_vae', 'factor_vae', 'mig', 'dci', 'sap', 'modularity'. Each runs with its
    standard defaults unless overridden:
      * a keyword named after a parameter (e.g. num_train=2000, num_test=1000, num_eval=500,
        batch_size=32, chunk_size=...) applies to every selected metric that has it;
      * a keyword named after a metric takes a dict for that metric only, e.g.
        dci={'gbt_params': {'n_estimators': 10}} or mig={'num_train': 20000, 'seed': 3}.
    A keyword that no selected metric accepts is an error.
    """
    metrics = tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; available: {', '.join(METRICS)}")
    per_metric = {name: dict(overrides.pop(name)) for name in list(overrides) if name in METRICS}
    parameters = {name: inspect.signature(METRICS[name]).parameters for name in metrics}
    for key in overrides:
        if not any(key in params for params in parameters.values()):
            raise ValueError(f"override {key!r} is not a parameter of any of {metrics}")
    results = {}
    for name in metrics:
        kwargs = {key: value for key, value in overrides.items() if key in parameters[name]}
        for key, value in per_metric.get(name, {}).items():
            if key not in parameters[name]:
                raise ValueError(f"{key!r} is not a parameter of metric {name!r}")
            kwargs[key] = value
        kwargs.setdefault("seed", seed)
        results[name] = METRICS[name](represent, ground_truth, **kwargs)
    return results
