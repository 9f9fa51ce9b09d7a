"""scikit-learn as the disentanglement metrics use it: seeds, fitting with counted convergence
warnings, scikit-learn 0.20's `LogisticRegression()`, and the `settings` record of every result
(see the notes of `vae.metrics.disentanglement` on scikit-learn versions)."""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np


def _sk_seed(seed: int) -> int:
    return int(seed) % (2**32)


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


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

# classifier= of the metrics with a logistic regression (explicitness, the BetaVAE score)
CLASSIFIERS = {
    "liblinear_ovr": _LOGISTIC_DESCRIPTION + " (the published study's; the default)",
    "multinomial": ("LogisticRegression() of scikit-learn >= 1.5: lbfgs, multinomial, C=1.0, max_iter=100 "
                    "(disentanglement_lib run today)"),
}


def logistic(classifier: str, seed: int):
    """The logistic regression `classifier` names (CLASSIFIERS); ValueError naming the choices."""
    from sklearn.linear_model import LogisticRegression

    if classifier not in CLASSIFIERS:
        raise ValueError(f"classifier={classifier!r} is not allowed; choose {' or '.join(CLASSIFIERS)}")
    if classifier == "liblinear_ovr":
        return _liblinear_logistic(seed)
    return LogisticRegression(C=1.0, max_iter=100, random_state=_sk_seed(seed))


def _settings(metric: str, citation: str, seed: int, represent_dim: int, num_factors: int,
              start: float, warnings_count: int, **extra: Any) -> dict[str, Any]:
    out = {"metric": metric, "citation": citation, "seed": int(seed)}
    out.update(extra)
    out.update({"representation_dim": int(represent_dim), "num_factors": int(num_factors),
                "convergence_warnings": int(warnings_count), "sklearn_version": _sklearn_version(),
                "seconds": round(time.perf_counter() - start, 3)})
    return out
