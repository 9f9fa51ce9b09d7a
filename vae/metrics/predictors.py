"""Predictor-based disentanglement scores: DCI from the feature importances of gradient-boosted
trees, and SAP from the accuracy of one-dimensional linear classifiers. Conventions and
deviations from disentanglement_lib: the notes of `vae.metrics.disentanglement`."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from vae.metrics.discrete import _top_two_gap
from vae.metrics.fitting import _fit, _settings, _sk_seed
from vae.metrics.ground_truth import (
    CHUNK_SIZE, GroundTruth, Representation, _check_labels, _check_pair, _check_positive, _check_sets, _num_factors,
    _sample_codes,
)

_ENTROPY_EPS = 1e-11  # disentanglement_lib's smoothing of DCI importance distributions

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
    _check_positive(num_train=num_train, num_test=num_test, chunk_size=chunk_size)
    start = time.perf_counter()
    _num_factors(ground_truth)
    rng = np.random.default_rng(seed)
    x_train, y_train = _sample_codes(represent, ground_truth, num_train, rng, chunk_size)
    x_test, y_test = _sample_codes(represent, ground_truth, num_test, rng, chunk_size)
    out = dci_from_codes(x_train, y_train, x_test, y_test, seed=seed, gbt_params=gbt_params)
    out["settings"]["seconds"] = round(time.perf_counter() - start, 3)
    return out


def dci_from_codes(x_train, y_train, x_test, y_test, *, seed: int = 0,
                   gbt_params: dict[str, Any] | None = None) -> dict[str, Any]:
    """DCI (see `dci`) of representations you have: x_* [N, d] codes, y_* [N, K] factor indices;
    the classifiers train on (x_train, y_train)."""
    from sklearn.ensemble import GradientBoostingClassifier

    start = time.perf_counter()
    x_train, y_train, x_test, y_test = _check_sets(x_train, y_train, x_test, y_test)
    _check_labels(y_train, "training")
    k = y_train.shape[1]
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
                              counter[0], num_train=int(x_train.shape[0]), num_test=int(x_test.shape[0]),
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
    _check_positive(num_train=num_train, num_test=num_test, chunk_size=chunk_size)
    start = time.perf_counter()
    _num_factors(ground_truth)
    rng = np.random.default_rng(seed)
    x_train, y_train = _sample_codes(represent, ground_truth, num_train, rng, chunk_size)
    x_test, y_test = _sample_codes(represent, ground_truth, num_test, rng, chunk_size)
    out = sap_from_codes(x_train, y_train, x_test, y_test, seed=seed, continuous_factors=continuous_factors)
    out["settings"]["seconds"] = round(time.perf_counter() - start, 3)
    return out


def sap_from_codes(x_train, y_train, x_test, y_test, *, seed: int = 0,
                   continuous_factors: bool = False) -> dict[str, Any]:
    """SAP (see `sap`) of representations you have: x_* [N, d] codes, y_* [N, K] factor indices
    (or values, with continuous_factors); the classifiers train on (x_train, y_train)."""
    from sklearn.svm import LinearSVC

    start = time.perf_counter()
    x_train, y_train, x_test, y_test = _check_sets(x_train, y_train, x_test, y_test)
    k = y_train.shape[1]
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
                              num_train=int(x_train.shape[0]), num_test=int(x_test.shape[0]),
                              continuous_factors=bool(continuous_factors),
                              classifier=("R^2 of each (latent, factor) pair on the training points"
                                          if continuous_factors else
                                          "LinearSVC(C=0.01, class_weight='balanced', dual=False) on one "
                                          "latent dimension; score = test accuracy")),
    }
