"""Disentanglement metrics on the sprites factor grid, with representations built from the factors.

The ground truth is `Sprites` with `render` replaced by the identity on factors ("images" of shape
[N, 1, 1, 5]), so a representation can be any function of the factors and no image is drawn:
  factors  - one latent per factor, standardized (the ideal disentangled code),
  rotated  - the same latents mixed by a strongly mixing orthogonal 5x5 matrix,
  noise    - standard normal latents independent of the input.
Sizes are small (500-5000 points, 10-stage boosted trees) to keep the file fast; the defaults of
the metrics themselves are the standard ones.
"""

import math

import numpy as np
import pytest

from vae.data.sprites import Sprites
from vae.metrics import (
    GroundTruth, compute_all, dci_from_importance, encoder_mean_fn, histogram_discretize, mig,
    modularity_explicitness, modularity_from_mutual_info,
)

SIZES = np.array(Sprites.factor_sizes, dtype=np.float64)
MEAN = (SIZES - 1.0) / 2.0                       # uniform index 0..n-1
STD = np.sqrt((SIZES**2 - 1.0) / 12.0)

# Small but standard-shaped runs: every metric, every classifier, in a few seconds.
SMALL = dict(num_train=1000, num_eval=500, num_test=500, num_variance_estimate=1000,
             dci={"gbt_params": {"n_estimators": 10}},
             mig={"num_train": 5000},
             sap={"num_train": 2000, "num_test": 2000})

MAIN_SCORE = {"beta_vae": "eval_accuracy", "factor_vae": "eval_accuracy", "mig": "mig",
              "dci": "disentanglement", "sap": "sap", "modularity": "modularity"}
UNIT_INTERVAL = {
    "beta_vae": ["train_accuracy", "eval_accuracy"],
    "factor_vae": ["train_accuracy", "eval_accuracy"],
    "mig": ["mig", "per_factor"],
    "dci": ["disentanglement", "completeness", "informativeness_train", "informativeness_test",
            "informativeness_test_per_factor", "disentanglement_per_code", "completeness_per_factor",
            "importance_matrix"],
    "sap": ["sap", "per_factor", "score_matrix"],
    "modularity": ["modularity", "explicitness_train", "explicitness_test", "modularity_per_code",
                   "explicitness_test_per_factor"],
}


class FactorImages:
    """Sprites' factor sampling; `render` returns the factors themselves as [N, 1, 1, 5] float32."""

    def __init__(self):
        self.sprites = Sprites()
        self.factor_sizes = self.sprites.factor_sizes

    def sample_factors(self, num, rng):
        return self.sprites.sample_factors(num, rng)

    def sample_with_fixed_factor(self, num, factor_index, rng):
        return self.sprites.sample_with_fixed_factor(num, factor_index, rng)

    def render(self, factors):
        factors = self.sprites.validate_factors(factors)
        return factors.astype(np.float32).reshape(-1, 1, 1, 5)


def standardized(images):
    return (images.reshape(images.shape[0], 5).astype(np.float64) - MEAN) / STD


def mixing_rotation():
    """The most mixing of 2,000 random orthogonal 5x5 matrices: max |Q_ij| ~ 0.61 (vs 1/sqrt(5) = 0.45
    for a perfect mix), so every latent is a comparable blend of every factor."""
    rng = np.random.default_rng(0)
    best = None
    for _ in range(2000):
        q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
        if best is None or np.abs(q).max() < np.abs(best).max():
            best = q
    return best


ROTATION = mixing_rotation()


def rotated(images):
    return standardized(images) @ ROTATION.T


def noise_representation(seed=1):
    rng = np.random.default_rng(seed)
    return lambda images: rng.standard_normal((images.shape[0], 5))


def with_constant(images):
    return np.concatenate([standardized(images), np.full((images.shape[0], 1), 3.0)], axis=1)


@pytest.fixture(scope="module")
def ground_truth():
    return FactorImages()


@pytest.fixture(scope="module")
def scores(ground_truth):
    return {name: compute_all(rep, ground_truth, seed=0, **SMALL)
            for name, rep in [("factors", standardized), ("rotated", rotated), ("noise", noise_representation())]}


def _no_nan_in_unit_interval(result):
    for metric, keys in UNIT_INTERVAL.items():
        for key in keys:
            values = np.asarray(result[metric][key], dtype=np.float64)
            assert np.all(np.isfinite(values)), (metric, key, values)
            assert np.all((values >= 0.0) & (values <= 1.0)), (metric, key, values)
    for metric, out in result.items():                     # nothing anywhere is NaN
        for key, value in out.items():
            if key != "settings":
                assert np.all(np.isfinite(np.asarray(value, dtype=np.float64))), (metric, key)


def test_sprites_is_a_ground_truth(ground_truth):
    assert isinstance(Sprites(), GroundTruth)
    assert isinstance(ground_truth, GroundTruth)


@pytest.mark.parametrize("metric", ["beta_vae", "factor_vae", "mig", "dci", "sap"])
def test_factors_beat_rotation_beat_noise(scores, metric):
    key = MAIN_SCORE[metric]
    f, r, n = (scores[name][metric][key] for name in ("factors", "rotated", "noise"))
    assert f > r > n, (metric, f, r, n)


def test_ordering_details(scores):
    s = {name: scores[name] for name in ("factors", "rotated", "noise")}
    # the ideal code is (near) perfect where the metric allows it
    assert s["factors"]["beta_vae"]["eval_accuracy"] == 1.0
    assert s["factors"]["factor_vae"]["eval_accuracy"] == 1.0
    assert s["factors"]["factor_vae"]["num_active_dims"] == 5
    assert s["factors"]["dci"]["disentanglement"] > 0.99 and s["factors"]["dci"]["completeness"] > 0.99
    # chance levels for noise: 1/5 for the two vote/regression scores, AUC 1/2
    assert abs(s["noise"]["beta_vae"]["eval_accuracy"] - 0.2) < 0.07
    assert abs(s["noise"]["factor_vae"]["eval_accuracy"] - 0.2) < 0.07
    assert abs(s["noise"]["modularity"]["explicitness_test"] - 0.5) < 0.03
    # DCI completeness orders the three as disentanglement does
    c = [s[name]["dci"]["completeness"] for name in ("factors", "rotated", "noise")]
    assert c[0] > c[1] > c[2]


def test_modularity_and_explicitness_ordering(scores, ground_truth):
    """Modularity ranks the factors first, but it does not separate a strongly mixing rotation from
    noise, at any sample size: it measures whether each code's MI is concentrated on one factor,
    whatever its amount, and for noise the plug-in MI is pure estimator bias ~(bins-1)(n_k-1)/(2N),
    largest for the 40-valued orientation, giving modularity ~0.65 whatever N; a code mixing all
    factors scores ~0.6. A mild rotation (a plain random orthogonal matrix) is separated from noise.
    Explicitness (linear, so rotation-invariant) separates informative codes from noise."""
    f, r, n = (scores[name]["modularity"] for name in ("factors", "rotated", "noise"))
    assert f["modularity"] > 0.99
    assert f["modularity"] > r["modularity"] and f["modularity"] > n["modularity"]
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(5, 5)))
    mild = modularity_explicitness(lambda im: standardized(im) @ q.T, ground_truth, seed=0, num_train=1000,
                                   num_test=500)
    assert mild["modularity"] > n["modularity"] + 0.1
    assert f["explicitness_test"] > n["explicitness_test"] + 0.3
    assert r["explicitness_test"] > n["explicitness_test"] + 0.3
    assert abs(f["explicitness_test"] - r["explicitness_test"]) < 0.02


def test_ranges_and_no_nan(scores):
    for result in scores.values():
        _no_nan_in_unit_interval(result)


def test_constant_latent_dimension(ground_truth):
    result = compute_all(with_constant, ground_truth, seed=0, **SMALL)
    _no_nan_in_unit_interval(result)
    assert result["factor_vae"]["num_active_dims"] == 5
    assert result["factor_vae"]["settings"]["active_dims"] == [0, 1, 2, 3, 4]
    assert np.all(np.asarray(result["mig"]["mutual_information"])[5] == 0.0)
    assert np.all(np.asarray(result["dci"]["importance_matrix"])[5] == 0.0)
    assert result["modularity"]["modularity_per_code"][5] == 0.0
    # the constant dimension changes nothing that depends on the informative ones
    assert result["beta_vae"]["eval_accuracy"] == 1.0
    assert result["dci"]["disentanglement"] > 0.99


def test_fully_constant_representation(ground_truth):
    result = compute_all(lambda im: np.zeros((im.shape[0], 2)), ground_truth, seed=0,
                         **{**SMALL, "num_train": 300, "num_eval": 100, "num_test": 300,
                            "mig": {}, "sap": {}})
    _no_nan_in_unit_interval(result)
    assert result["factor_vae"]["num_active_dims"] == 0
    assert result["factor_vae"]["eval_accuracy"] == 0.0
    assert result["mig"]["mig"] == 0.0 and result["modularity"]["modularity"] == 0.0
    assert result["dci"]["disentanglement"] == 0.0


def test_dci_from_importance_exact():
    ident = dci_from_importance(np.eye(5))
    assert abs(ident["disentanglement"] - 1.0) < 1e-8 and abs(ident["completeness"] - 1.0) < 1e-8
    # identity-like with a dead code (zero row) and permuted codes: still perfect
    m = np.zeros((6, 5))
    m[[3, 0, 4, 1, 5], [0, 1, 2, 3, 4]] = [0.2, 0.9, 0.5, 0.3, 0.7]
    like = dci_from_importance(m)
    assert abs(like["disentanglement"] - 1.0) < 1e-8 and abs(like["completeness"] - 1.0) < 1e-8
    uniform = dci_from_importance(np.ones((5, 5)))
    assert abs(uniform["disentanglement"]) < 1e-12 and abs(uniform["completeness"]) < 1e-12
    # by hand: rows (1/2, 1/2) and (0, 1) -> D = 2/3 * 0 + 1/3 * 1; columns likewise -> C = 1/3
    half = dci_from_importance(np.array([[1.0, 1.0], [0.0, 1.0]]))
    assert abs(half["disentanglement"] - 1 / 3) < 1e-8 and abs(half["completeness"] - 1 / 3) < 1e-8
    zero = dci_from_importance(np.zeros((3, 4)))
    assert abs(zero["disentanglement"]) < 1e-12 and abs(zero["completeness"]) < 1e-12


def test_modularity_from_mutual_info_exact():
    assert modularity_from_mutual_info(np.eye(4))[0] == 1.0
    assert modularity_from_mutual_info(np.ones((3, 4)))[0] == 0.0
    # one code: (1, 0.5, 0) -> delta = 0.25 / (2 * 1) -> 0.875; a dead code scores 0
    value, per_code = modularity_from_mutual_info(np.array([[1.0, 0.5, 0.0], [0.0, 0.0, 0.0]]))
    assert per_code.tolist() == [0.875, 0.0] and value == 0.4375


def _entropy(labels):
    _, counts = np.unique(labels, return_counts=True, axis=0)
    p = counts / counts.sum()
    return float(-np.sum(p * np.log(p)))


def test_mig_of_the_factors_matches_the_discretization(ground_truth):
    """With 20 equal-width bins a factor with more than 20 values loses information:
    32 positions -> 12 bins of 2 values and 8 of 1, H(bin)/H(v) = (0.75 log 16 + 0.25 log 32)/log 32
    = 0.85; 40 orientations -> 20 bins of 2, log 20 / log 40 = 0.812; shape and scale stay 1."""
    n = 10000
    result = mig(standardized, ground_truth, seed=0, num_train=n)
    factors = np.array(ground_truth.sample_factors(n, np.random.default_rng(0)), dtype=np.int64)
    codes = standardized(factors.astype(np.float32))
    binned = np.stack([np.digitize(c, np.histogram(c, 20)[1][:-1]) for c in codes.T], axis=1)
    assert np.array_equal(binned, histogram_discretize(codes, 20))

    def mutual_info(a, b):
        return _entropy(a) + _entropy(b) - _entropy(np.stack([a, b], axis=1))

    expected = []
    for k in range(5):
        h = _entropy(factors[:, k])
        own = _entropy(binned[:, k])                       # binned_k is a function of factor k
        assert abs(own - mutual_info(binned[:, k], factors[:, k])) < 1e-9
        other = max(mutual_info(binned[:, j], factors[:, k]) for j in range(5) if j != k)
        expected.append((own - other) / h)
    np.testing.assert_allclose(result["per_factor"], expected, rtol=0, atol=1e-9)
    assert abs(result["mig"] - np.mean(expected)) < 1e-9

    population = [1.0, 1.0, math.log(20) / math.log(40), 0.85, 0.85]
    np.testing.assert_allclose(result["per_factor"], population, atol=0.02)  # plug-in bias at N = 10^4
    assert result["per_factor"][3] < 0.87 and result["mig"] < 0.91


def test_same_seed_same_numbers(ground_truth, scores):
    def strip(result):
        return {m: {k: v for k, v in out.items() if k != "settings"} for m, out in result.items()}

    again = compute_all(rotated, ground_truth, seed=0, **SMALL)
    assert strip(again) == strip(scores["rotated"])
    for metric, out in again.items():
        settings = out["settings"]
        assert settings["seed"] == 0 and settings["metric"] == metric
        assert settings == {**scores["rotated"][metric]["settings"], "seconds": settings["seconds"]}
    assert again["beta_vae"]["settings"]["batch_size"] == 64
    assert again["dci"]["settings"]["gbt_params"]["n_estimators"] == 10
    assert again["mig"]["settings"]["num_train"] == 5000 and again["mig"]["settings"]["num_bins"] == 20
    other = compute_all(rotated, ground_truth, seed=1, metrics=("beta_vae", "mig"), num_train=1000, num_eval=500,
                        mig={"num_train": 5000})
    assert other["beta_vae"]["eval_accuracy"] != again["beta_vae"]["eval_accuracy"]
    assert other["mig"]["mig"] != scores["rotated"]["mig"]["mig"]


def test_compute_all_rejects_bad_arguments(ground_truth):
    with pytest.raises(ValueError, match="unknown metrics"):
        compute_all(standardized, ground_truth, metrics=("mig", "irs"))
    with pytest.raises(ValueError, match="not a parameter of any"):
        compute_all(standardized, ground_truth, metrics=("mig",), num_eval=10)
    with pytest.raises(ValueError, match="not a parameter of metric"):
        compute_all(standardized, ground_truth, metrics=("mig",), mig={"gbt_params": {}})


def test_encoder_mean_fn_on_rendered_sprites():
    import vae
    from vae.trained import encode_split

    model = vae.build_model(vae.ModelConfig(latent_dim=3, hidden=(16,)), Sprites.image_shape)
    optimizer = vae.make_optimizer(vae.OptimConfig(learning_rate=1e-3), total_steps=1)
    state = vae.create_train_state(model, optimizer, Sprites.image_shape, seed=0)
    represent = encoder_mean_fn(model, state.params, batch_size=64)
    images, _ = Sprites().sample(100, np.random.default_rng(0))
    codes = represent(images)
    assert codes.shape == (100, 3) and codes.dtype == np.float64
    np.testing.assert_array_equal(codes, encode_split(model, state.params, images, batch_size=64)[0])
    result = mig(represent, Sprites(), seed=0, num_train=300)
    assert 0.0 <= result["mig"] <= 1.0 and result["settings"]["representation_dim"] == 3
