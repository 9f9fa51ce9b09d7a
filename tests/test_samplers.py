"""Samplers fitted after training (vae.samplers): each density against an independent computation
(a known mixture, numerical integration, the change-of-variables formula, the chain rule of the
code prior), and the fit-save-load-sample path on tiny trained runs."""

import dataclasses
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from vae.models import VonMisesFisher
from vae.models.poincare import WrappedNormal
from vae.samplers import (SamplerError, StaleSamplerError, fit_sampler, load_sampler, make_sampler,
                          training_latents)
from vae.samplers.code_prior import top_k_logits

TINY_FLOW = {"layers": 2, "hidden": (16, 16), "batch_size": 128, "held_out": 0.0}


def _two_blobs(n, seed=0):
    rng = np.random.default_rng(seed)
    first = rng.random(n) < 0.3
    x = np.where(first[:, None], rng.normal([-4.0, 0.0], [0.5, 1.0], (n, 2)),
                 rng.normal([4.0, 1.0], [1.0, 0.4], (n, 2)))
    return x.astype(np.float32)


def test_make_sampler_parses_options_and_names_bad_ones():
    s = make_sampler("maf", ["layers=3", "hidden=8,8", "learning_rate=0.01"])
    assert (s.layers, s.hidden, s.learning_rate) == (3, (8, 8), 0.01)
    with pytest.raises(SamplerError, match="unknown sampler 'nope'; choose one of .*gmm.*maf"):
        make_sampler("nope")
    with pytest.raises(SamplerError, match="sampler 'gmm' has no option 'layers'; its options: components"):
        make_sampler("gmm", ["layers=2"])
    with pytest.raises(SamplerError, match="components='x' is not a valid int"):
        make_sampler("gmm", ["components=x"])
    with pytest.raises(SamplerError, match="components=0 must be > 0"):
        make_sampler("gmm", {"components": 0})
    with pytest.raises(SamplerError, match="width=10 must be a multiple of heads=4"):
        make_sampler("code_prior", ["width=10"])
    with pytest.raises(SamplerError, match="fit_on='x' is not allowed"):
        make_sampler("two_stage", ["fit_on=x"])


def test_gmm_recovers_a_known_mixture_and_its_density_is_the_mixtures():
    x = _two_blobs(4000)
    sampler = make_sampler("gmm", {"components": 2})
    state, report = sampler.fit(x, jax.random.PRNGKey(0))
    assert report["held_out_rows"] == 400 and abs(report["held_out_log_prob"] - report["train_log_prob"]) < 0.2
    order = np.argsort(state["means"][:, 0])
    np.testing.assert_allclose(state["means"][order], [[-4.0, 0.0], [4.0, 1.0]], atol=0.1)
    np.testing.assert_allclose(np.exp(state["log_weights"][order]), [0.3, 0.7], atol=0.03)
    z = x[:50]
    cov = np.einsum("kij,klj->kil", state["chol"], state["chol"])
    expected = np.log(sum(np.exp(state["log_weights"][k]) * multivariate_normal(state["means"][k], cov[k]).pdf(z)
                          for k in range(2)))
    np.testing.assert_allclose(sampler.log_prob(state, jnp.asarray(z)), expected, rtol=1e-4, atol=1e-4)
    draws = np.asarray(sampler.sample(state, jax.random.PRNGKey(1), 4000))
    assert abs(np.mean(draws[:, 0] < 0) - 0.3) < 0.03
    assert report["converged"]


@pytest.mark.parametrize("name", ["maf", "iaf"])
def test_flow_density_integrates_to_one_and_follows_change_of_variables(name):
    x = _two_blobs(1000)
    sampler = make_sampler(name, {**TINY_FLOW, "steps": 150})
    state, _ = sampler.fit(x, jax.random.PRNGKey(0))
    assert any(np.abs(leaf).max() > 1e-3 for leaf in jax.tree_util.tree_leaves(state["made"]))  # not the identity
    # the density integrates to 1 over a grid that holds the mass
    lo, hi, n = state["mean"] - 9 * state["std"], state["mean"] + 9 * state["std"], 241
    gx, gy = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
    grid = np.stack(np.meshgrid(gx, gy, indexing="ij"), -1).reshape(-1, 2)
    density = np.exp(np.asarray(jax.jit(sampler.log_prob)(state, jnp.asarray(grid, jnp.float32)))).reshape(n, n)
    assert np.trapezoid(np.trapezoid(density, gy, axis=1), gx) == pytest.approx(1.0, abs=0.01)
    # log p(z) = log N(u(z)) + log |det du/dz|, with the Jacobian from autodiff of the whole map
    to_noise = lambda z: sampler.data_to_noise(state["made"], (z - state["mean"]) / state["std"])[0]  # noqa: E731
    z = jnp.asarray(x[:20])
    u = to_noise(z)
    log_det = jnp.linalg.slogdet(jax.vmap(jax.jacfwd(to_noise))(z))[1]
    expected = -0.5 * jnp.sum(u ** 2, -1) - math.log(2 * math.pi) + log_det
    np.testing.assert_allclose(sampler.log_prob(state, z), expected, rtol=1e-4, atol=1e-4)
    # sampling inverts the density's map
    v = jax.random.normal(jax.random.PRNGKey(2), (20, 2))
    np.testing.assert_allclose(sampler.data_to_noise(state["made"], sampler.noise_to_data(state["made"], v))[0], v,
                               atol=1e-4)


def test_code_prior_log_prob_is_the_sum_of_its_conditionals():
    sampler = make_sampler("code_prior", {"width": 16, "heads": 2, "depth": 2})
    net = sampler.network(7)
    codes = jax.random.randint(jax.random.PRNGKey(0), (5, 6), 0, 7)
    params = net.init(jax.random.PRNGKey(1), codes)["params"]
    # perturb the init so that every conditional differs
    params = jax.tree_util.tree_map(lambda p: p + 0.3 * jax.random.normal(jax.random.PRNGKey(2), p.shape), params)
    state = {"vocab": np.zeros(7, np.int8), "length": np.zeros(6, np.int8), "network": params}
    total = 0.0
    for i in range(6):
        junk = jax.random.randint(jax.random.PRNGKey(10 + i), (5, 6), 0, 7)
        seen = jnp.where(jnp.arange(6) < i, codes, junk)   # what follows position i must not matter
        logp = jax.nn.log_softmax(net.apply({"params": params}, seen)[:, i])
        total = total + jnp.take_along_axis(logp, codes[:, i:i + 1], -1)[:, 0]
    np.testing.assert_allclose(sampler.log_prob(state, codes), total, rtol=1e-5, atol=1e-5)


def test_top_k_logits_keeps_the_k_largest():
    logits = jnp.array([[0.5, 3.0, -1.0, 2.0]])
    np.testing.assert_array_equal(jnp.isfinite(top_k_logits(logits, 2)), [[False, True, False, True]])
    np.testing.assert_array_equal(top_k_logits(logits, 0), logits)


def test_code_prior_learns_a_dependency_between_codes():
    rng = np.random.default_rng(0)
    first = rng.integers(0, 2, 600)
    codes = np.stack([first, first + 2, np.full(600, 5)], 1).astype(np.int32)
    sampler = make_sampler("code_prior", {"width": 32, "heads": 2, "depth": 1, "steps": 300,
                                          "learning_rate": 3e-3, "num_codes": 8})
    state, report = sampler.fit(codes, jax.random.PRNGKey(0))
    assert report["held_out_log_prob"] > -math.log(2) - 0.1 > report["uniform_log_prob"]
    draws = np.asarray(sampler.sample(state, jax.random.PRNGKey(1), 400))
    assert np.mean((draws[:, 1] == draws[:, 0] + 2) & (draws[:, 2] == 5)) > 0.95
    assert abs(np.mean(draws[:, 0] == 0) - np.mean(first == 0)) < 0.1
    greedy = np.asarray(dataclasses.replace(sampler, top_k=1).sample(state, jax.random.PRNGKey(2), 5))
    assert (greedy == greedy[0]).all()


def _fibonacci_sphere(n):
    i = np.arange(n) + 0.5
    phi, theta = np.arccos(1 - 2 * i / n), np.pi * (1 + 5 ** 0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], -1)


def test_hypersphere_mixture_recovers_vmfs_and_integrates_to_one():
    mus = jnp.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]])
    z = jnp.concatenate([VonMisesFisher(mus[0], jnp.array(20.0)).sample(jax.random.PRNGKey(0), 1500),
                         VonMisesFisher(mus[1], jnp.array(20.0)).sample(jax.random.PRNGKey(1), 1500)])
    sampler = make_sampler("hypersphere", {"components": 2})
    state, _ = sampler.fit(np.asarray(z), jax.random.PRNGKey(2))
    order = np.argsort(state["mu"][:, 0])
    np.testing.assert_allclose(np.sum(state["mu"][order][::-1] * np.asarray(mus), -1), 1.0, atol=0.01)
    np.testing.assert_allclose(state["kappa"], 20.0, rtol=0.15)
    grid = jnp.asarray(_fibonacci_sphere(40000), jnp.float32)
    assert float(jnp.mean(jnp.exp(sampler.log_prob(state, grid)))) * 4 * math.pi == pytest.approx(1.0, abs=0.01)
    draws = sampler.sample(state, jax.random.PRNGKey(3), 100)
    np.testing.assert_allclose(jnp.linalg.norm(draws, axis=-1), 1.0, atol=1e-5)


def test_poincare_sampler_density_integrates_to_one_on_the_disk():
    wn = WrappedNormal(jnp.array([0.3, -0.2]), jnp.log(jnp.array([0.2, 0.5])), 1.0)
    z = wn.sample(jax.random.PRNGKey(0), 2000)
    sampler = make_sampler("poincare", {"components": 2, "curvature": 1.0})
    state, _ = sampler.fit(np.asarray(z), jax.random.PRNGKey(1))
    n = 801
    g = np.linspace(-1, 1, n)
    grid = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    inside = np.linalg.norm(grid, axis=-1) < 1 - 1e-3
    density = np.zeros(n * n)
    density[inside] = np.exp(np.asarray(jax.jit(sampler.log_prob)(state, jnp.asarray(grid[inside], jnp.float32))))
    assert np.trapezoid(np.trapezoid(density.reshape(n, n), g, axis=1), g) == pytest.approx(1.0, abs=0.01)
    draws = sampler.sample(state, jax.random.PRNGKey(2), 200)
    assert float(jnp.max(jnp.linalg.norm(draws, axis=-1))) < 1.0


def test_two_stage_elbo_stays_below_the_exact_log_likelihood():
    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.8], [0.8, 1.0]])
    x = rng.multivariate_normal([1.0, -2.0], cov, 3000).astype(np.float32)
    sampler = make_sampler("two_stage", {"hidden": (32,), "steps": 1500, "held_out": 0.2})
    state, report = sampler.fit(x, jax.random.PRNGKey(0))
    exact = multivariate_normal([1.0, -2.0], cov).logpdf(x).mean()
    # E[ELBO] <= E[log p_model] <= E[log p_true] (Gibbs' inequality), up to Monte-Carlo noise
    assert exact - 0.5 < report["held_out_elbo"] < exact + 0.05
    draws = np.asarray(sampler.sample(state, jax.random.PRNGKey(1), 4000))
    np.testing.assert_allclose(draws.mean(0), [1.0, -2.0], atol=0.15)


# ------------------------------------------------------------------ fitted to trained runs


def test_fit_save_load_sample_round_trip_is_bit_identical(runs):
    run = runs[0]
    record = fit_sampler(run, "gmm", ["components=2"], seed=3)
    path = os.path.join(run.run_dir, "samplers", "gmm")
    with open(os.path.join(path, "sampler.json")) as f:
        assert json.load(f) == record
    prov = record["provenance"]
    assert prov["checkpoint_step"] == run.step and len(prov["params_sha256"]) == 64
    assert prov["fitted_on"] == {"split": "train[:512]", "num_examples": 512, "what": "posterior means"}
    assert record["report"]["train_rows"] + record["report"]["held_out_rows"] == 512
    # the saved state is what fitting gives in memory, and sampling it is a function of the key
    sampler = make_sampler("gmm", ["components=2"])
    data, _ = training_latents(run, sampler)
    state, _ = sampler.fit(data, jax.random.PRNGKey(3))
    fitted = load_sampler(run, "gmm")
    key = jax.random.PRNGKey(7)
    np.testing.assert_array_equal(fitted.draw(key, 9), np.asarray(sampler.sample(state, key, 9)))
    np.testing.assert_array_equal(fitted.draw(key, 9), load_sampler(run.run_dir, "gmm").draw(key, 9))
    np.testing.assert_allclose(fitted.log_prob(data[:4]), sampler.log_prob(state, jnp.asarray(data[:4])), rtol=1e-6)


def test_missing_stale_and_misapplied_samplers_are_clear_errors(runs, tmp_path):
    run = runs[0]
    with pytest.raises(FileNotFoundError, match=r"no sampler 'maf' in .*samplers.*fit it first: vae fit-sampler"):
        load_sampler(run, "maf")
    fit_sampler(run, "gmm", ["components=2"], save_as="gmm_stale")
    record_path = os.path.join(run.run_dir, "samplers", "gmm_stale", "sampler.json")
    with open(record_path) as f:
        record = json.load(f)
    record["provenance"]["params_sha256"] = "0" * 64   # as if the run had been retrained since
    with open(record_path, "w") as f:
        json.dump(record, f)
    stale = (r"'gmm_stale' .* is stale: it was fitted to checkpoint step \d+ \(params 000000000000\).*"
             "refit it: vae fit-sampler .* --as gmm_stale")
    with pytest.raises(StaleSamplerError, match=stale):
        load_sampler(run, "gmm_stale")
    with pytest.raises(SamplerError, match=r"'code_prior' needs a discrete model \(one with codes, e.g. vqvae\); "
                                           "this one is VAE"):
        fit_sampler(run, "code_prior")
    with pytest.raises(SamplerError, match="'vamp' needs a model trained with model.prior=vamp"):
        fit_sampler(run, "vamp")
    with pytest.raises(SamplerError, match="'hypersphere' needs latents on the sphere"):
        fit_sampler(run, "hypersphere")
    assert not os.path.exists(os.path.join(run.run_dir, "samplers", "vamp"))


def test_synthesis_and_explorer_sample_from_a_fitted_sampler(runs, tmp_path):
    from vae.explore import Explorer
    from vae.synthesis import synthesize

    run = runs[0]
    fit_sampler(run, "maf", {**TINY_FLOW, "steps": 20})
    out = synthesize(run, 6, out=str(tmp_path / "s.npz"), sampler="maf", seed=1)
    assert out["shape"] == [6, 28, 28, 1]
    assert out["metadata"]["sampler"]["name"] == "maf" and out["metadata"]["sampler"]["fitted_to_step"] == run.step
    assert "fitted sampler 'maf'" in out["metadata"]["images"]
    # the decoded images are the decoder means at the sampler's latents
    fitted = load_sampler(run, "maf")
    z = fitted.latents(jax.random.fold_in(jax.random.PRNGKey(1), 0), 6)
    images = np.load(tmp_path / "s.npz")["images"]
    np.testing.assert_allclose(images, np.clip(fitted.trained.decode(z), 0, 1), atol=1e-6)
    # 'normal' is the prior, bit for bit as without a sampler
    a = synthesize(run, 5, out=str(tmp_path / "a.npz"), sampler="normal")
    b = synthesize(run, 5, out=str(tmp_path / "b.npz"))
    np.testing.assert_array_equal(np.load(a["path"])["images"], np.load(b["path"])["images"])
    explorer = Explorer.from_run(run.run_dir)
    assert explorer.sample(5, sampler="maf").shape == (5, 28, 28, 1)
    with pytest.raises(ValueError, match="not made from a run"):
        Explorer(run.model, run.params).sample(3, sampler="maf")
    assert Explorer(run.model, run.params).sample(3, sampler=fitted).shape == (3, 28, 28, 1)


def test_fit_sampler_command_and_sampler_flags(runs, tmp_path, capsys):
    from vae.cli import main

    run_dir = runs[0].run_dir
    assert main(["fit-sampler", run_dir, "--sampler", "gmm", "--set", "components=2", "--as", "gmm2"]) == 0
    assert os.path.isfile(os.path.join(run_dir, "samplers", "gmm2", "state.npz"))
    assert main(["synthesize", run_dir, "-n", "4", "--sampler", "gmm2", "--out", str(tmp_path / "x.npz")]) == 0
    assert main(["explore", run_dir, "--figure", "samples", "--steps", "4", "--sampler", "gmm2",
                 "--out", str(tmp_path / "f.png")]) == 0
    assert os.path.getsize(tmp_path / "f.png") > 0
    capsys.readouterr()
    assert main(["fit-sampler", run_dir, "--sampler", "gmm", "--set", "layers=2"]) == 2
    assert "sampler 'gmm' has no option 'layers'" in capsys.readouterr().err
    assert main(["synthesize", run_dir, "-n", "4", "--sampler", "nope", "--out", str(tmp_path / "y.npz")]) == 2
    assert "no sampler 'nope'" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "y.npz")


@pytest.fixture(scope="module")
def vq_run(tmp_path_factory):
    import vae.config
    import vae.run
    from conftest import TINY_RUN

    cfg = vae.config.Config().replace(**{**TINY_RUN, "model.name": "vqvae", "model.latent_dim": 8,
                                         "model.code_dim": 4, "model.num_codes": 16})
    out = str(tmp_path_factory.mktemp("vq") / "run")
    vae.run.train(cfg, out)
    return vae.run.load_run(out)


def test_code_prior_on_a_vqvae_run_samples_codebook_vectors(vq_run, tmp_path):
    from vae.evaluate import evaluate_run
    from vae.synthesis import synthesize

    with pytest.raises(SamplerError, match="latents are codes .* use code_prior"):
        fit_sampler(vq_run, "gmm")
    record = fit_sampler(vq_run, "code_prior", {"width": 16, "heads": 2, "depth": 1, "steps": 20})
    assert record["provenance"]["fitted_on"]["what"] == "code indices"
    assert record["options"]["num_codes"] == 16
    fitted = load_sampler(vq_run, "code_prior")
    codes = fitted.draw(jax.random.PRNGKey(0), 5)
    assert codes.shape == (5, 2) and codes.min() >= 0 and codes.max() < 16
    z = fitted.latents(jax.random.PRNGKey(0), 5)
    codebook = np.asarray(vq_run.params["codebook"])
    np.testing.assert_array_equal(z, codebook[codes].reshape(5, 8))
    out = synthesize(vq_run, 4, out=str(tmp_path / "vq.npz"), sampler="code_prior")
    assert out["shape"] == [4, 28, 28, 1]
    result = evaluate_run(vq_run.run_dir, iwae_samples=0, write=False)
    usage = result["codebook"]
    assert usage["num_codes"] == 16 and usage["codes_per_image"] == 2 and usage["num_examples"] == 128
    assert usage["codes_used"] + usage["dead_codes"] == 16 and 1.0 <= usage["perplexity"] <= usage["codes_used"]


def test_early_stopping_keeps_the_code_prior_from_memorizing_noise():
    codes = np.random.default_rng(0).integers(0, 16, (240, 3)).astype(np.int32)   # no structure to learn
    options = {"width": 32, "heads": 2, "depth": 1, "steps": 800, "learning_rate": 3e-3, "num_codes": 16,
               "held_out": 0.25}
    uniform = -3 * math.log(16)
    _, kept = make_sampler("code_prior", {**options, "check_every": 50}).fit(codes, jax.random.PRNGKey(0))
    _, overfit = make_sampler("code_prior", {**options, "check_every": 0}).fit(codes, jax.random.PRNGKey(0))
    assert overfit["train_log_prob"] > uniform + 1.0 > uniform > overfit["held_out_log_prob"]   # memorized
    assert kept["held_out_log_prob"] > overfit["held_out_log_prob"] + 1.0
    assert kept["kept_step"] < kept["steps"] < 800                 # stopped after `patience` checks without a gain
