"""Intervention-based disentanglement scores: a classifier predicts which factor was held fixed
in a batch of points, from the representation's per-dimension differences (BetaVAE) or from the
dimension of least normalized variance (FactorVAE). Conventions and deviations from
disentanglement_lib: the notes of `vae.metrics.disentanglement`."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from vae.metrics.fitting import CLASSIFIERS, _fit, _settings, logistic
from vae.metrics.ground_truth import (
    CHUNK_SIZE, GroundTruth, Representation, _check_positive, _num_factors, _represent, _sample_codes,
)

# ----------------------------------------------------------------------------------------------
# BetaVAE


def beta_vae_score(represent: Representation, ground_truth: GroundTruth, *, seed: int = 0,
                   batch_size: int = 64, num_train: int = 10000, num_eval: int = 5000,
                   chunk_size: int = CHUNK_SIZE, classifier: str = "liblinear_ovr") -> dict[str, Any]:
    """BetaVAE disentanglement score (Higgins et al. 2017, "beta-VAE: Learning Basic Visual
    Concepts with a Constrained Variational Framework", ICLR; disentanglement_lib
    `beta_vae.compute_beta_vae_sklearn`).

    One point: a factor y ~ U{1..K}; L = batch_size pairs of factor vectors (v1_l, v2_l) drawn
    independently except [v1_l]_y = [v2_l]_y; feature
        z_diff = (1/L) sum_l |r(x(v1_l)) - r(x(v2_l))|          (mean over pairs, per dimension)
    A linear classifier predicts y from z_diff; the score is its accuracy.
    Defaults (disentanglement_lib): batch_size=64, num_train=10000, num_eval=5000 points; the
    classifier: 'liblinear_ovr' (default) is scikit-learn 0.20's LogisticRegression(), the
    published study's (see the notes of `vae.metrics.disentanglement`), 'multinomial' scikit-learn
    >= 1.5's; settings record which. The eval points are drawn after the train points from the
    same generator.
    Returns train_accuracy, eval_accuracy in [0, 1] (chance 1/K) and settings.
    """
    _check_positive(batch_size=batch_size, num_train=num_train, num_eval=num_eval, chunk_size=chunk_size)
    logistic(classifier, seed)   # an unknown classifier fails before any work
    start = time.perf_counter()
    k = _num_factors(ground_truth)
    rng = np.random.default_rng(seed)
    x_train, y_train = _beta_vae_points(represent, ground_truth, batch_size, num_train, rng, chunk_size, k)
    if np.unique(y_train).size < 2:
        raise ValueError(f"all {num_train} training points fix the same factor; use more points")
    counter = [0]
    model = _fit(logistic(classifier, seed), x_train, y_train, counter)
    train_accuracy = float(np.mean(model.predict(x_train) == y_train))
    x_eval, y_eval = _beta_vae_points(represent, ground_truth, batch_size, num_eval, rng, chunk_size, k)
    eval_accuracy = float(np.mean(model.predict(x_eval) == y_eval))
    return {
        "train_accuracy": train_accuracy,
        "eval_accuracy": eval_accuracy,
        "settings": _settings("beta_vae", "Higgins et al. 2017 (ICLR)", seed, x_train.shape[1], k, start,
                              counter[0], batch_size=int(batch_size), num_train=int(num_train),
                              num_eval=int(num_eval), classifier=classifier,
                              classifier_description=CLASSIFIERS[classifier],
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
