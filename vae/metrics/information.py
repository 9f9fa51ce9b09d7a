"""Information-based disentanglement scores from the mutual information between histogram-
discretized latents and factors: MIG, and modularity with explicitness. Conventions and
deviations from disentanglement_lib: the notes of `vae.metrics.disentanglement`."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from vae.metrics.discrete import (
    NUM_BINS, _top_two_gap, discrete_entropy, discrete_mutual_info, histogram_discretize,
)
from vae.metrics.fitting import CLASSIFIERS, _fit, _settings, logistic
from vae.metrics.ground_truth import (
    CHUNK_SIZE, GroundTruth, Representation, _check_labels, _check_pair, _check_positive, _check_sets, _num_factors,
    _sample_codes,
)

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
    _num_factors(ground_truth)
    codes, factors = _sample_codes(represent, ground_truth, num_train, np.random.default_rng(seed), chunk_size)
    out = mig_from_codes(codes, factors, num_bins=num_bins)
    out["settings"].update(seed=int(seed), seconds=round(time.perf_counter() - start, 3))
    return out


def mig_from_codes(codes: np.ndarray, factors: np.ndarray, *, num_bins: int = NUM_BINS) -> dict[str, Any]:
    """MIG (see `mig`) of representations you have: codes [N, d] float, factors [N, K] int
    indices. `mig` samples its points and calls this."""
    _check_positive(num_bins=num_bins)
    start = time.perf_counter()
    codes, factors = np.asarray(codes, np.float64), np.asarray(factors)
    _check_pair(codes, factors)
    m = discrete_mutual_info(histogram_discretize(codes, num_bins), factors)
    entropy = discrete_entropy(factors)
    gap = _top_two_gap(m)
    per_factor = np.divide(gap, entropy, out=np.zeros_like(gap), where=entropy > 0)
    return {
        "mig": float(np.mean(per_factor)),
        "per_factor": per_factor.tolist(),
        "mutual_information": m.tolist(),
        "factor_entropy": entropy.tolist(),
        "settings": _settings("mig", "Chen et al. 2018 (NeurIPS)", 0, codes.shape[1], factors.shape[1], start, 0,
                              num_train=int(codes.shape[0]), num_bins=int(num_bins),
                              discretizer="np.digitize(z, np.histogram(z, num_bins)[1][:-1]) per dimension",
                              estimator="sklearn.metrics.mutual_info_score (nats), gap / H(factor)"),
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
                            chunk_size: int = CHUNK_SIZE, classifier: str = "liblinear_ovr") -> dict[str, Any]:
    """Modularity and explicitness (Ridgeway & Mozer 2018, "Learning Deep Disentangled Embeddings
    With the F-Statistic Loss", NeurIPS, Sec. 3; disentanglement_lib
    `modularity_explicitness.compute_modularity_explicitness`).

    Modularity: from the MI matrix of the `num_bins` (20) histogram-discretized latents and the
    factor indices on num_train (10000) points, see `modularity_from_mutual_info`.
    Explicitness: latents standardized by the training mean and std (a constant dimension by
    std 1); per factor, a logistic regression on all latents: `classifier` 'liblinear_ovr'
    (default: scikit-learn 0.20's one-vs-rest LogisticRegression(), as in the published study,
    see the notes of `vae.metrics.disentanglement`) or 'multinomial' (scikit-learn >= 1.5's
    default, what disentanglement_lib gives when run today; settings record which); the
    factor's explicitness is the mean over its values of the one-vs-rest ROC AUC of the predicted
    class probabilities, on the training points and on num_test (5000) fresh points; averaged
    over factors.
    Returns modularity, explicitness_train, explicitness_test (all in [0, 1]; chance AUC 0.5),
    the per-code and per-factor values and settings.
    """
    _check_positive(num_train=num_train, num_test=num_test, num_bins=num_bins, chunk_size=chunk_size)
    start = time.perf_counter()
    _num_factors(ground_truth)
    rng = np.random.default_rng(seed)
    x_train, y_train = _sample_codes(represent, ground_truth, num_train, rng, chunk_size)
    x_test, y_test = _sample_codes(represent, ground_truth, num_test, rng, chunk_size)
    out = modularity_explicitness_from_codes(x_train, y_train, x_test, y_test, seed=seed, num_bins=num_bins,
                                             classifier=classifier)
    out["settings"]["seconds"] = round(time.perf_counter() - start, 3)
    return out


def modularity_explicitness_from_codes(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                                       y_test: np.ndarray, *, seed: int = 0, num_bins: int = NUM_BINS,
                                       classifier: str = "liblinear_ovr") -> dict[str, Any]:
    """Modularity and explicitness (see `modularity_explicitness`) of representations you have:
    x_* [N, d] codes, y_* [N, K] factor indices; the classifiers train on (x_train, y_train)."""
    _check_positive(num_bins=num_bins)
    start = time.perf_counter()
    x_train, y_train, x_test, y_test = _check_sets(x_train, y_train, x_test, y_test)
    _check_labels(y_train, "training")
    k = y_train.shape[1]
    logistic(classifier, seed)   # an unknown classifier fails before any work
    mi = discrete_mutual_info(histogram_discretize(x_train, num_bins), y_train)
    modularity, per_code = modularity_from_mutual_info(mi)
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    x_train_n, x_test_n = (x_train - mean) / std, (x_test - mean) / std
    train_auc, test_auc = np.zeros(k), np.zeros(k)
    counter = [0]
    for j in range(k):
        clf = _fit(logistic(classifier, seed), x_train_n, y_train[:, j], counter)
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
                              counter[0], num_train=int(x_train.shape[0]), num_test=int(x_test.shape[0]),
                              num_bins=int(num_bins), classifier=classifier,
                              classifier_description=CLASSIFIERS[classifier] + " per factor on standardized latents",
                              explicitness="macro one-vs-rest ROC AUC over factor values"),
    }
