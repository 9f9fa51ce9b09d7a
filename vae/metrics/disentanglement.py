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
   models and the same normalized one-vs-rest probabilities. This default reproduces the
   published study's numbers; `classifier='multinomial'` gives scikit-learn >= 1.5's
   `LogisticRegression()`, what disentanglement_lib computes when run today (an independent check
   on its own saved inputs: explicitness 0.99 there against 0.94 with the default). `settings`
   in each result (and so eval.json) says which was used.
   SAP's `LinearSVC(C=0.01, class_weight='balanced')` is solved in the primal (`dual=False`,
   what current scikit-learn's `dual='auto'` picks for one feature) rather than the 0.20 dual:
   the objective (L2-regularized squared hinge, strictly convex) and hence its optimum are the
   same; the dual solver is much slower on one feature (timings: benchmarks/NOTES.md).
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

Modules
-------
    vae.metrics.ground_truth          GroundTruth, Representation, encoder_mean_fn, sampling
    vae.metrics.discrete              histogram_discretize, discrete_mutual_info, discrete_entropy
    vae.metrics.fitting               scikit-learn fitting and the `settings` record
    vae.metrics.intervention_scores   beta_vae_score, factor_vae_score
    vae.metrics.information           mig, modularity_explicitness (modularity_from_mutual_info)
    vae.metrics.predictors            dci (dci_from_importance, GBT_DEFAULTS), sap

Scoring representations you already have: mig_from_codes(codes, factors), and
dci_from_codes / sap_from_codes / modularity_explicitness_from_codes(x_train, y_train, x_test,
y_test) take codes [N, d] and factor indices [N, K] directly; the sampling versions call them.

This module gathers them: METRICS, DEFAULT_METRICS and `compute_all`, and re-exports the public
names above.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

from vae.metrics.discrete import NUM_BINS, discrete_entropy, discrete_mutual_info, histogram_discretize
from vae.metrics.ground_truth import CHUNK_SIZE, GroundTruth, Representation, encoder_mean_fn
from vae.metrics.information import (
    mig, mig_from_codes, modularity_explicitness, modularity_explicitness_from_codes, modularity_from_mutual_info,
)
from vae.metrics.intervention_scores import beta_vae_score, factor_vae_score
from vae.metrics.predictors import GBT_DEFAULTS, dci, dci_from_codes, dci_from_importance, sap, sap_from_codes

DEFAULT_METRICS = ("beta_vae", "factor_vae", "mig", "dci", "sap", "modularity")

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


__all__ = [
    "CHUNK_SIZE", "DEFAULT_METRICS", "GBT_DEFAULTS", "METRICS", "NUM_BINS", "GroundTruth", "Representation",
    "beta_vae_score", "compute_all", "dci", "dci_from_codes", "dci_from_importance", "discrete_entropy",
    "discrete_mutual_info", "encoder_mean_fn", "factor_vae_score", "histogram_discretize", "mig", "mig_from_codes",
    "modularity_explicitness", "modularity_explicitness_from_codes", "modularity_from_mutual_info", "sap",
    "sap_from_codes",
]
