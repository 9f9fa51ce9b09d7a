"""The disentanglement metrics' cores on codes and factors you already have (what the sampling
versions call), and the logistic-regression choice of explicitness and the BetaVAE score."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from vae.metrics import (
    beta_vae_score, dci, dci_from_codes, mig, mig_from_codes, modularity_explicitness,
    modularity_explicitness_from_codes, sap, sap_from_codes,
)
from vae.metrics.ground_truth import _sample_codes
from test_disentanglement import FactorImages, rotated


def _without_seconds(result):
    return {k: (v if k != "settings" else {s: x for s, x in v.items() if s != "seconds"}) for k, v in result.items()}


@pytest.fixture(scope="module")
def sampled():
    truth = FactorImages()
    rng = np.random.default_rng(3)
    train = _sample_codes(rotated, truth, 800, rng, 256)
    test = _sample_codes(rotated, truth, 400, rng, 256)
    return truth, train, test


def test_the_sampling_metrics_are_their_cores_on_the_sampled_points(sampled):
    truth, (x, y), (xt, yt) = sampled
    pairs = [
        (mig(rotated, truth, seed=3, num_train=800, chunk_size=256), mig_from_codes(x, y)),
        (sap(rotated, truth, seed=3, num_train=800, num_test=400, chunk_size=256),
         sap_from_codes(x, y, xt, yt, seed=3)),
        (dci(rotated, truth, seed=3, num_train=800, num_test=400, chunk_size=256, gbt_params={"n_estimators": 5}),
         dci_from_codes(x, y, xt, yt, seed=3, gbt_params={"n_estimators": 5})),
        (modularity_explicitness(rotated, truth, seed=3, num_train=800, num_test=400, chunk_size=256),
         modularity_explicitness_from_codes(x, y, xt, yt, seed=3)),
    ]
    for sampling, core in pairs:
        core["settings"]["seed"] = 3
        assert _without_seconds(sampling) == _without_seconds(core)


def test_explicitness_with_the_multinomial_classifier_is_sklearns_logistic_regression(sampled):
    _, (x, y), (xt, yt) = sampled
    out = modularity_explicitness_from_codes(x, y, xt, yt, classifier="multinomial")
    assert out["settings"]["classifier"] == "multinomial" and "lbfgs" in out["settings"]["classifier_description"]
    mean, std = x.mean(0), x.std(0)
    expected = []
    for j in range(y.shape[1]):       # independently: scikit-learn's default model, macro one-vs-rest AUC
        clf = LogisticRegression(max_iter=100).fit((x - mean) / std, y[:, j])
        proba = clf.predict_proba((xt - mean) / std)
        expected.append(np.mean([roc_auc_score(yt[:, j] == c, proba[:, i]) for i, c in enumerate(clf.classes_)
                                 if 0 < np.sum(yt[:, j] == c) < len(yt)]))
    np.testing.assert_allclose(out["explicitness_test_per_factor"], expected, rtol=1e-6)
    default = modularity_explicitness_from_codes(x, y, xt, yt)
    assert default["settings"]["classifier"] == "liblinear_ovr"
    assert default["explicitness_test"] != out["explicitness_test"]


def test_bad_inputs_to_the_cores_are_named(sampled):
    truth, (x, y), (xt, yt) = sampled
    with pytest.raises(ValueError, match="classifier='ovr' is not allowed; choose liblinear_ovr or multinomial"):
        modularity_explicitness_from_codes(x, y, xt, yt, classifier="ovr")
    with pytest.raises(ValueError, match="classifier='svm' is not allowed"):
        beta_vae_score(rotated, truth, classifier="svm")
    with pytest.raises(ValueError, match=r"codes and factors must be \[N, d\] and \[N, K\] with the same N"):
        mig_from_codes(x[:10], y[:9])
    with pytest.raises(ValueError, match="the training and test sets differ in width: codes 5 and 4"):
        sap_from_codes(x, y, xt[:, :4], yt)


def test_beta_vae_score_records_its_classifier(sampled):
    truth = sampled[0]
    out = beta_vae_score(rotated, truth, num_train=300, num_eval=100, batch_size=8, classifier="multinomial")
    assert out["settings"]["classifier"] == "multinomial" and 0 <= out["eval_accuracy"] <= 1
