"""Every preset trains a few steps through the shared loop without NaN and lowers its loss."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vae import data as vae_data
from vae import registry
from vae.config import apply_overrides
from vae.evaluate import evaluate_run
from vae.presets import get_preset, list_presets, zoo, zoo3
from vae.step import create_train_state, make_train_step
from vae.variants import build_model, build_objective
from vae.run import setup, train

REQUIRED = {"quickstart", "vae_mnist5k", "iwae_mnist5k", "beta_vae_sprites", "factor_vae_sprites",
            "beta_tcvae_sprites", "annealed_vae_sprites", "dip_vae_sprites", "cvae_mnist5k", "vamp_mnist5k",
            "vqvae_mnist5k", "ladder_vae_mnist5k", "mnist_iwae_burda"}


def test_required_presets_exist():
    assert REQUIRED <= {name for name, _ in list_presets()}


def _short(name: str) -> list[str]:
    cfg = get_preset(name)
    sprites = cfg.data.name == "sprites"
    overrides = ["train.steps=40", "train.log_every=10", "train.eval_every=40", "train.final_iwae_samples=0",
                 "train.num_samples=4", "train.progress=false", "train.eval_batch_size=64",
                 f"train.batch_size={32 if sprites else 64}",
                 "data.train_split=train[:1024]", "data.test_split=test[:64]", "optim.warmup_steps=0",
                 "optim.learning_rate=1e-3"]
    if cfg.data.name not in ("mnist5k", "sprites"):  # needs a download: run the same model on mnist5k
        overrides.append("data.name=mnist5k")
    if name == "vamp_mnist5k":
        overrides.append("model.prior_components=50")
    if name == "annealed_vae_sprites":
        overrides += ["objective.gamma=10", "objective.capacity_steps=40"]
    return overrides


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_preset_trains_and_lowers_its_loss(tmp_path, name):
    cfg = apply_overrides(get_preset(name), _short(name))
    summary = train(cfg, str(tmp_path / name))
    records = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    train_lines = [r for r in records if r["split"] == "train"]
    for r in records:
        assert all(np.isfinite(v) for v in r.values() if isinstance(v, float)), r
    first, last = train_lines[0], train_lines[-1]
    key = "loss" if name != "annealed_vae_sprites" else "recon"
    assert last[key] < first[key], (name, first[key], last[key])
    assert np.isfinite(summary["test_elbo"])


ZOO = zoo.PRESETS


def test_every_zoo_variant_has_a_preset():
    variants = {get_preset(n).model.name for n in ZOO}
    assert {"ae", "wae", "info_vae", "swae", "rae_l2", "rae_gp", "aae", "vae_gan", "msssim_vae", "dfc_vae",
            "logcosh_vae"} <= variants
    assert get_preset("vae_patchgan_mnist5k").objective.adversarial == "patchgan"
    assert {"miwae", "piwae", "ciwae", "vae_nf", "vae_iaf", "categorical_vae", "joint_vae", "svae", "pvae",
            "hamiltonian_vae", "rhvae"} <= {get_preset(n).model.name for n in zoo3.PRESETS}


@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO)
def test_zoo_preset_trains_and_lowers_its_loss(tmp_path, monkeypatch, name):
    """Tiny networks and 30 steps: the variant's objective, its extra state and the finishing
    steps (figures, summary) run end to end without NaN, and the loss goes down."""
    monkeypatch.setattr(setup, "FEATURE_CLASSIFIER_STEPS", 20)  # dfc_vae's feature network
    overrides = _short(name) + ["model.hidden=64", "train.steps=30", "train.eval_every=30",
                                "train.final_iwae_samples=3"]
    if name == "vae_patchgan_mnist5k":
        overrides.append("objective.adversarial_start=10")
    cfg = apply_overrides(get_preset(name), overrides)
    summary = train(cfg, str(tmp_path / name))
    records = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    for r in records:
        assert all(np.isfinite(v) for v in r.values() if isinstance(v, float)), r
    train_lines = [r for r in records if r["split"] == "train"]
    # a GAN's losses need not fall: VAE-GAN's discriminator learns its task, and with the PatchGAN
    # term the pixel reconstruction of the underlying VAE still improves
    key = {"vae_gan_mnist5k": "disc_loss", "vae_patchgan_mnist5k": "recon"}.get(name, "loss")
    assert train_lines[-1][key] < train_lines[0][key], (name, train_lines[0][key], train_lines[-1][key])
    has_density = registry.get(cfg.model.name).has_density
    assert summary["has_density"] is has_density
    if has_density:
        assert np.isfinite(summary["test_elbo"]) and summary["test_iwae"]["k"] == 3
    else:
        assert summary["test_elbo"] is None and summary["test_iwae"] is None and np.isfinite(summary["test_recon"])
    if name == "dfc_vae_mnist5k":  # its feature network is the run's dataset classifier, cached for reuse
        assert any((tmp_path / name / "classifier").glob("*/params.msgpack"))
    if name == "ae_mnist5k":  # vae evaluate on a model without a density says why there is no IWAE
        result = evaluate_run(str(tmp_path / name), iwae_samples=10)
        assert "elbo" not in result and "defines no density p(x)" in result["iwae"]["absent"]
        assert result["reconstruction"]["mse_per_image"] > 0


@pytest.fixture(scope="module")
def binarized_digits():
    """64 mnist5k training digits, binarized once: one fixed batch to fit."""
    images = vae_data.load("mnist5k", "train").images[:64]
    return {"image": jnp.asarray(np.random.default_rng(0).random(images.shape) < images, jnp.float32)}


@pytest.mark.parametrize("name", zoo3.PRESETS)
def test_zoo3_preset_steps_lower_its_loss_without_nan(name, binarized_digits):
    """The preset's model and objective (networks narrowed to one 64-unit layer, nvae to width 4 and one group per scale)
    take 25 jitted steps on one batch: finite metrics, lower loss,
    one compilation. The run loop around them is tested end to end by the zoo II presets."""
    narrow = ["model.hidden=64"] if name != "nvae_mnist5k" else [
        "model.channels=[4,4,4]", "model.groups_per_scale=1", "model.group_channels=2"]
    if name in ("hamiltonian_vae_mnist5k", "rhvae_mnist5k"):
        narrow.append("model.flow_length=1")  # one leapfrog step: the compile grows with each
    cfg = apply_overrides(get_preset(name), narrow)
    model = build_model(cfg.model, (28, 28, 1))
    objective = build_objective(cfg, dataset_size=64, total_steps=25)
    optimizer = optax.adam(1e-3)
    state = create_train_state(model, optimizer, (28, 28, 1), seed=0, objective=objective)
    step = make_train_step(model, objective, optimizer)
    losses = []
    for _ in range(25):
        state, metrics = step(state, binarized_digits)
        assert all(np.all(np.isfinite(np.asarray(v))) for v in metrics.values()), (name, metrics)
        losses.append(float(metrics["loss"]))
    assert np.mean(losses[-5:]) < np.mean(losses[:5]), (name, losses)
    assert step._cache_size() == 1


def test_nvae_cifar10_preset_builds_for_32x32_colour_images():
    """The accelerator preset, traced only (jax.eval_shape): per-group KL for its 16 groups, the
    logistic mixture's parameters at full resolution, an 8x8x20 top group."""
    cfg = get_preset("nvae_cifar10")
    model = build_model(cfg.model, (32, 32, 3))
    key = jax.random.PRNGKey(0)
    x = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init({"params": key, "sample": key}, x), x)
    out = jax.eval_shape(lambda v, x: model.apply(v, x, rngs={"sample": key}), variables, x)
    assert out.kl_per_dim.shape == (2, 16) and out.z.shape == (2, 8 * 8 * 20) == (2, model.latent_dim)
    assert out.decoded.shape == (2, 32, 32, model.likelihood.param_channels(3))
    assert cfg.data.name == "cifar10" and cfg.model.likelihood == "logistic_mixture"
