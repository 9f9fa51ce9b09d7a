"""Estimators against exact values: a linear-Gaussian VAE (probabilistic PCA) has a closed-form log p(x)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from vae.trained import iwae_log_likelihood, latent_diagnostics
from vae.models import VAE, GaussianLikelihood, StandardNormalPrior

D, d, SIGMA = 6, 3, 0.5


def _ppca():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(D, d)))
    W = (q * np.array([2.0, 1.0, 0.5])).astype(np.float32)      # orthogonal columns: diagonal posterior
    b = rng.normal(size=D).astype(np.float32)
    return W, b


class LinearGaussianEncoder(nn.Module):
    W: np.ndarray
    b: np.ndarray
    sigma: float
    mean_shift: float = 0.0
    log_var_shift: float = 0.0

    def __call__(self, x):
        x = x.reshape(x.shape[0], -1)
        s2 = np.sum(self.W**2, axis=0)                            # diag of W^T W
        post_var = 1.0 / (1.0 + s2 / self.sigma**2)
        mean = (x - self.b) @ self.W * (post_var / self.sigma**2)
        log_var = jnp.broadcast_to(jnp.log(post_var), mean.shape)
        return mean + self.mean_shift, log_var + self.log_var_shift


class LinearDecoder(nn.Module):
    W: np.ndarray
    b: np.ndarray

    def __call__(self, z):
        return (z @ self.W.T + self.b).reshape(z.shape[0], D, 1, 1)


def _model(**perturb):
    W, b = _ppca()
    return VAE(encoder=LinearGaussianEncoder(W, b, SIGMA, **perturb), decoder=LinearDecoder(W, b),
               prior=StandardNormalPrior(), likelihood=GaussianLikelihood(sigma=SIGMA), latent_dim=d)


def _data(n=64):
    W, b = _ppca()
    rng = np.random.default_rng(1)
    z = rng.normal(size=(n, d))
    x = z @ W.T + b + SIGMA * rng.normal(size=(n, D))
    exact = stats.multivariate_normal(b, W @ W.T + SIGMA**2 * np.eye(D)).logpdf(x)
    return x.reshape(n, D, 1, 1).astype(np.float32), float(np.mean(exact))


@pytest.mark.parametrize("k", [1, 10, 1000])
def test_iwae_equals_exact_log_likelihood_with_the_true_posterior(k):
    x, exact = _data()
    est = iwae_log_likelihood(_model(), {}, x, num_samples=k, batch_size=32, chunk_size=min(k, 100))
    assert est["k"] == k
    assert est["log_px"] == pytest.approx(exact, abs=1e-3)


def test_iwae_approaches_exact_from_below_as_k_grows():
    x, exact = _data()
    model = _model(mean_shift=0.4, log_var_shift=0.6)
    est = {k: iwae_log_likelihood(model, {}, x, num_samples=k, batch_size=64, chunk_size=min(k, 250))["log_px"]
           for k in (1, 100, 5000)}
    assert est[1] < est[100] < est[5000] <= exact + 0.01
    assert exact - est[5000] < 0.1 < exact - est[1]


def test_latent_diagnostics_known_values():
    rng = np.random.default_rng(0)
    n = 400
    means = np.zeros((n, 3))
    means[:, 0] = rng.normal(size=n)              # informative: variance ~1
    means[:, 1] = 0.05 * rng.normal(size=n)       # variance ~0.0025 < 0.01: inactive
    log_vars = np.zeros((n, 3))
    log_vars[:, 0] = np.log(0.01)
    out = latent_diagnostics(means, log_vars)
    assert out["active_units"] == 1
    assert out["kl_per_dim"][2] == pytest.approx(0.0, abs=1e-12)
    expected0 = 0.5 * np.mean(0.01 + means[:, 0] ** 2 - 1 - np.log(0.01))
    assert out["kl_per_dim"][0] == pytest.approx(expected0)
    assert out["collapsed_dims"] == 2  # dims 1 (KL ~0.001) and 2 (KL 0)
    # dimension 0 carries ~ -0.5 log(0.01) = 2.3 nats of information, bounded by log N
    assert 1.5 < out["mutual_information"] <= np.log(n)
    none = latent_diagnostics(np.zeros((n, 2)), np.zeros((n, 2)))
    assert none["mutual_information"] == pytest.approx(0.0, abs=1e-9) and none["active_units"] == 0


def _tiny_run(tmp_path, dataset="mnist5k"):
    import json

    from vae.config import Config
    from vae.run import train

    cfg = Config().replace(**{"data.name": dataset, "train.steps": 10, "train.eval_every": 10, "model.hidden": (32,),
                              "model.latent_dim": 4, "train.batch_size": 32, "train.progress": False,
                              "train.final_iwae_samples": 0, "train.num_samples": 4,
                              "data.train_split": "train[:256]", "data.test_split": "test[:64]",
                              "data.binarize": "none" if dataset == "sprites" else "dynamic"})
    out = tmp_path / dataset
    train(cfg, str(out))
    return out


def test_vae_evaluate_writes_eval_json(tmp_path, capsys):
    import json

    from vae.cli import main

    run = _tiny_run(tmp_path)
    assert main(["evaluate", str(run), "--iwae-samples", "20"]) == 0
    result = json.loads((run / "eval.json").read_text())
    assert result["iwae"]["k"] == 20 and result["num_examples"] == 64 and result["checkpoint_step"] == 10
    # the IWAE bound is at least the ELBO (up to Monte-Carlo error)
    assert result["iwae"]["log_px"] > result["elbo"]["elbo"] - 1.0
    assert result["latent"]["latent_dim"] == 4 and "toolkit_version" in result
    assert main(["evaluate", str(run), "--metrics", "mig"]) == 2
    assert "ground-truth factors" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--metrics", "nope", "--iwae-samples", "0"]) == 2
    assert "unknown metric 'nope'" in capsys.readouterr().err


def test_vae_evaluate_disentanglement_on_sprites(tmp_path):
    import json

    from vae.cli import main

    run = _tiny_run(tmp_path, "sprites")
    assert main(["evaluate", str(run), "--iwae-samples", "0", "--metrics", "mig,sap", "--points", "300"]) == 0
    result = json.loads((run / "eval.json").read_text())
    assert set(result["disentanglement"]) == {"mig", "sap"}
    assert 0.0 <= result["disentanglement"]["mig"]["mig"] <= 1.0
    assert result["disentanglement"]["mig"]["settings"]["num_train"] == 300
    assert main(["evaluate", str(run), "--iwae-samples", "0", "--metrics", "modularity", "--points", "300",
                 "--metric-classifier", "multinomial"]) == 0
    settings = json.loads((run / "eval.json").read_text())["disentanglement"]["modularity"]["settings"]
    assert settings["classifier"] == "multinomial" and "lbfgs" in settings["classifier_description"]


def test_iwae_reports_its_monte_carlo_error_and_the_spread_over_examples():
    x, _ = _data()
    exact_posterior = iwae_log_likelihood(_model(), {}, x, num_samples=10, batch_size=32, chunk_size=10)
    # with the true posterior every weight equals p(x): the estimate has no Monte-Carlo error at all
    assert exact_posterior["mc_stderr"] == pytest.approx(0.0, abs=1e-3)
    assert exact_posterior["example_stderr"] > 0.1
    model = _model(mean_shift=0.4, log_var_shift=0.6)
    runs = [iwae_log_likelihood(model, {}, x, num_samples=10, batch_size=32, chunk_size=10, seed=s)
            for s in range(40)]
    spread = np.std([r["log_px"] for r in runs], ddof=1)
    predicted = np.mean([r["mc_stderr"] for r in runs])
    assert 0.7 * spread < predicted < 1.4 * spread          # the delta method against 40 independent seeds
    assert runs[0]["example_stderr"] > 2 * predicted         # a different quantity, larger here
    assert iwae_log_likelihood(model, {}, x, num_samples=1, batch_size=32)["mc_stderr"] is None


def test_iwae_compiles_once_per_model_and_shape():
    traces = []

    class CountingVAE(VAE):
        def log_importance_weights(self, x, num_samples, y=None, stop_posterior_grad=False):
            traces.append(num_samples)  # runs only while jax traces the function
            return super().log_importance_weights(x, num_samples, y, stop_posterior_grad)

    W, b = _ppca()
    model = CountingVAE(encoder=LinearGaussianEncoder(W, b, SIGMA, mean_shift=0.4), decoder=LinearDecoder(W, b),
                        prior=StandardNormalPrior(), likelihood=GaussianLikelihood(sigma=SIGMA), latent_dim=d)
    x, _ = _data()
    first = [iwae_log_likelihood(model, {}, x, num_samples=20, batch_size=32, chunk_size=10, seed=s)["log_px"]
             for s in range(3)]
    assert traces == [10]                                    # three calls, two batches each: one trace
    assert len(set(first)) == 3                              # and the seeds still differ
    iwae_log_likelihood(model, {}, x, num_samples=20, batch_size=16, chunk_size=10)
    assert traces == [10, 10]                                # a new batch shape: one more
