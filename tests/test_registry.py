"""The variant registry: every built-in variant declared once, dispatch through it, your own
variants, and configs that set fields their variant does not read."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vae
import vae.run
from vae import registry
from vae.config import (Config, ConfigError, ModelConfig, ObjectiveConfig, apply_overrides, check_variant_fields,
                        model_names)
from vae.models import VQVAE, Autoencoder, LadderVAE, LatentVariableModel, NoDensityError, PointMass
from vae.objectives import (AAE, AE, CIWAE, ELBO, GumbelSoftmaxELBO, JointVAEObjective, IWAE, MIWAE, PIWAE, RAE, SWAE, VAEGAN, WAE, AnnealedVAE, BetaTCVAE,
                            DIPVAE, FactorVAE, InfoVAE, PerceptualVAE, VQObjective)
from vae.presets import get_preset
from vae.variants import build_model, build_objective

BUILT_IN = {"vae": ELBO, "beta_vae": ELBO, "cvae": ELBO, "ladder_vae": ELBO, "annealed_vae": AnnealedVAE,
            "beta_tcvae": BetaTCVAE, "factor_vae": FactorVAE, "dip_vae_i": DIPVAE, "dip_vae_ii": DIPVAE,
            "iwae": IWAE, "vqvae": VQObjective, "ae": AE, "wae": WAE, "swae": SWAE, "rae_l2": RAE, "rae_gp": RAE,
            "aae": AAE, "info_vae": InfoVAE, "logcosh_vae": PerceptualVAE, "msssim_vae": PerceptualVAE,
            "dfc_vae": PerceptualVAE, "vae_gan": VAEGAN, "miwae": MIWAE, "piwae": PIWAE, "ciwae": CIWAE,
            "vae_nf": ELBO, "vae_iaf": ELBO, "categorical_vae": GumbelSoftmaxELBO,
            "joint_vae": JointVAEObjective, "svae": ELBO,
            "pvae": ELBO, "hamiltonian_vae": ELBO, "rhvae": ELBO, "nvae": ELBO}
MODULES = {"dip_vae_i": "dip_vae", "dip_vae_ii": "dip_vae", "rae_l2": "rae", "rae_gp": "rae"}
NO_DENSITY = {"ae", "wae", "swae", "rae_l2", "rae_gp", "aae"}


def test_every_built_in_variant_is_registered_with_its_paper():
    assert set(BUILT_IN) <= set(model_names())
    for name, objective_type in BUILT_IN.items():
        variant = registry.get(name)
        assert variant.paper and "20" in variant.paper, name          # a citation with its year
        assert variant.module == f"vae.variants.{MODULES.get(name, name)}"
        assert variant.has_density is (name not in NO_DENSITY), name
        config = Config(model=ModelConfig(name=name, hidden=(8,), latent_dim=8))
        assert isinstance(build_objective(config, dataset_size=100), objective_type)
        model = build_model(config.model, (4, 4, 1), num_classes=3)
        assert isinstance(model, LatentVariableModel)


def test_paper_defaults_come_from_the_variant():
    beta = lambda name: build_objective(Config(model=ModelConfig(name=name))).beta  # noqa: E731
    assert (beta("vae"), beta("beta_vae"), beta("beta_tcvae")) == (1.0, 4.0, 6.0)
    assert build_objective(Config(model=ModelConfig(name="factor_vae"))).gamma == 35.0
    assert build_objective(Config(model=ModelConfig(name="annealed_vae"))).gamma == 1000.0
    dip_i = build_objective(Config(model=ModelConfig(name="dip_vae_i")))
    dip_ii = build_objective(Config(model=ModelConfig(name="dip_vae_ii")))
    assert (dip_i.lambda_od, dip_i.lambda_d, dip_ii.lambda_d) == (10.0, 100.0, 10.0)
    wae = build_objective(Config(model=ModelConfig(name="wae")))
    info = build_objective(Config(model=ModelConfig(name="info_vae")))
    rae = build_objective(Config(model=ModelConfig(name="rae_gp")))
    assert (wae.weight, wae.kernel, info.lam, info.alpha, info.kernel) == (10.0, "imq", 1000.0, 0.0, "rbf")
    assert (rae.regularizer, rae.latent_weight, rae.decoder_weight) == ("gp", 1e-4, 1e-7)
    assert build_objective(Config(model=ModelConfig(name="swae"))).num_projections == 50
    tuned = Config(model=ModelConfig(name="beta_vae"), objective=ObjectiveConfig(beta=2.0))
    assert build_objective(tuned).beta == 2.0


def test_unknown_names_and_unread_fields_are_refused():
    with pytest.raises(ConfigError, match=r"model.name='nope' is not allowed; choose one of .*'vae'"):
        ModelConfig(name="nope")
    with pytest.raises(ConfigError, match=r"objective.gamma is set, but model.name='vae' does not read it"):
        apply_overrides(Config(), ["objective.gamma=10"])
    with pytest.raises(ConfigError, match=r"model.num_codes is set, but model.name='beta_vae'"):
        apply_overrides(Config(), ["model.name=beta_vae", "model.num_codes=64"])
    # the order of overrides does not matter: the config is checked once, whole
    cfg = apply_overrides(Config(), ["objective.gamma=10", "model.name=factor_vae"])
    assert cfg.objective.gamma == 10.0
    with pytest.raises(ConfigError, match=r"latent_dim=12 must be a multiple of model.code_dim=8 for vqvae"):
        apply_overrides(Config(), ["model.name=vqvae", "model.latent_dim=12"])
    with pytest.raises(ConfigError, match="model.prior='vamp' is not supported with model.name='cvae'"):
        apply_overrides(Config(), ["model.name=cvae", "model.prior=vamp"])
    with pytest.raises(ConfigError, match="model.prior='mog' is not allowed with model.name='wae'"):
        apply_overrides(Config(), ["model.name=wae", "model.prior=mog"])
    with pytest.raises(ConfigError, match="objective.kernel is set, but model.name='swae' does not read it"):
        apply_overrides(Config(), ["model.name=swae", "objective.kernel=rbf"])
    with pytest.raises(ConfigError, match="objective.kernel='laplace' is not allowed; choose one of 'imq', 'rbf'"):
        apply_overrides(Config(), ["model.name=wae", "objective.kernel=laplace"])
    # a saved config is read back as it is (runs of earlier versions still load), but not run
    saved = Config.from_dict({"model": {"name": "vae"}, "objective": {"gamma": 10.0}})
    assert saved.objective.gamma == 10.0
    with pytest.raises(ConfigError, match="objective.gamma is set"):
        vae.run.train(saved, "/nonexistent/never-written")


def test_a_variant_registered_from_user_code_builds_and_is_refused_twice():
    variant = vae.Variant(name="my_beta", build_model=lambda c, s, n: vae.variants.gaussian_vae(c, s),
                          build_objective=lambda c, *, dataset_size, total_steps: ELBO(beta=registry.get(
                              "my_beta").value(c, "objective.beta")),
                          reads=("objective.beta",), defaults={"objective.beta": 3.0}, paper="test")
    vae.register_variant(variant)
    try:
        assert "my_beta" in model_names()
        assert registry.get("my_beta").module == __name__
        assert build_objective(Config(model=ModelConfig(name="my_beta"))).beta == 3.0
        with pytest.raises(ValueError, match="a variant named 'my_beta' is registered already"):
            vae.register_variant(variant)
        vae.register_variant(variant, replace=True)
        with pytest.raises(ConfigError, match="objective.dreg is set, but model.name='my_beta'"):
            check_variant_fields(Config(model=ModelConfig(name="my_beta"), objective=ObjectiveConfig(dreg=True)))
    finally:
        registry.unregister("my_beta")
    with pytest.raises(ConfigError, match="model.name='my_beta' is not allowed"):
        ModelConfig(name="my_beta")
    with pytest.raises(ValueError, match="must be a Python identifier"):
        vae.register_variant(vae.Variant(name="my beta", build_model=None, build_objective=None))


def test_vqvae_returns_the_shared_output_with_an_honest_point_mass():
    model = build_model(ModelConfig(name="vqvae", latent_dim=8, code_dim=4, num_codes=16, hidden=(8,)), (4, 4, 1))
    assert isinstance(model, VQVAE)
    x = jnp.asarray(np.random.default_rng(0).random((3, 4, 4, 1)), jnp.float32)
    variables = model.init({"params": jax.random.PRNGKey(0), "sample": jax.random.PRNGKey(1)}, x)
    out = model.apply(variables, x, rngs={"sample": jax.random.PRNGKey(2)})
    assert isinstance(out, vae.VAEOutput) and isinstance(out.posterior, PointMass)
    assert out.codes.shape == (3, 2) and out.z.shape == (3, 8)
    z_q, codes = model.apply(variables, out.posterior.mean, method=VQVAE.quantize)
    np.testing.assert_array_equal(out.z, z_q)
    np.testing.assert_array_equal(out.codes, codes)
    np.testing.assert_allclose(out.kl, 2 * np.log(16), rtol=1e-6)
    assert np.isneginf(np.asarray(out.posterior.log_var)).all() and not np.asarray(out.posterior.variance).any()
    with pytest.raises(TypeError, match="point-mass posterior has no density"):
        out.posterior.log_prob(out.z)


def test_the_ladder_vae_decodes_through_its_top_level():
    model = build_model(ModelConfig(name="ladder_vae", latent_dim=3, bottom_latent_dim=5, hidden=(8,)), (4, 4, 1))
    assert isinstance(model, LadderVAE) and model.latent_dim == 3


# Each variant at its smallest (these calls run eagerly, op by op).
SMALL = {"vae_nf": {"flow_length": 2, "flow_hidden": 8}, "vae_iaf": {"flow_length": 2, "flow_hidden": 8},
         "hamiltonian_vae": {"flow_length": 1}, "rhvae": {"flow_length": 1},
         "nvae": {"channels": (4, 4), "latent_scales": 1, "groups_per_scale": 2, "group_channels": 2,
                  "cells_per_group": 1}}


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_every_variant_honours_the_written_interface(name):
    """encode -> posterior [B, d], decode keeps leading sample axes, __call__ -> VAEOutput,
    log_importance_weights -> [k, B], reconstruct / generate -> images, sample_prior -> [n, d]."""
    shape, b, k = (4, 4, 1), 3, 2
    cfg = ModelConfig(name=name, hidden=(8,), latent_dim=4, code_dim=2, num_codes=8, bottom_latent_dim=3,
                      **SMALL.get(name, {}))
    model = build_model(cfg, shape, num_classes=3)
    x = jnp.asarray(np.random.default_rng(0).random((b, *shape)) < 0.5, jnp.float32)
    y = jnp.arange(b) % 3 if model.num_classes else None
    keys = {"params": jax.random.PRNGKey(0), "sample": jax.random.PRNGKey(1)}
    variables = jax.jit(model.init)(keys, x, y)

    def call(method, *args):
        # jitted per method (ints static): eager calls of the deep variants cost several times more
        static = tuple(i for i, a in enumerate(args) if isinstance(a, int))
        fn = jax.jit(lambda v, *a: model.apply(v, *a, rngs={"sample": jax.random.PRNGKey(2)}, method=method),
                     static_argnums=tuple(i + 1 for i in static))
        return fn(variables, *args)

    q = call(type(model).encode, x, y)
    assert q.mean.shape == (b, model.latent_dim)
    out = call(type(model).__call__, x, y)
    assert isinstance(out, vae.VAEOutput) and out.log_px_z.shape == (b,) and out.kl.shape == (b,)
    assert np.isfinite(np.asarray(out.log_px_z)).all() and np.isfinite(np.asarray(out.kl)).all()
    z = jnp.zeros((k, b, model.latent_dim))
    yy = None if y is None else y
    decoded = call(type(model).decode, z, yy)
    assert decoded.shape[:2] == (k, b) and decoded.shape[2:4] == shape[:2]
    assert call(type(model).log_likelihood, decoded, x).shape == (k, b)
    if name in NO_DENSITY:  # deterministic autoencoders: no density, a clear error instead of weights
        assert isinstance(model, Autoencoder) and isinstance(q, PointMass)
        with pytest.raises(NoDensityError, match="defines no density p\\(x\\)"):
            call(type(model).log_importance_weights, x, k, y)
    else:
        lw = call(type(model).log_importance_weights, x, k, y)
        assert lw.shape == (k, b) and np.isfinite(np.asarray(lw)).all()
    assert call(type(model).reconstruct, x, y).shape == (b, *shape)
    assert call(type(model).sample_prior, jax.random.PRNGKey(3), 5).shape == (5, model.latent_dim)
    assert call(type(model).generate, b, 1.0, y).shape == (b, *shape)


def test_hvae_is_a_clear_error_naming_both_models():
    with pytest.raises(ConfigError, match="'ladder_vae'.*Hamiltonian VAE.*'hamiltonian_vae'"):
        registry.get("hvae")
    with pytest.raises(ConfigError, match="ladder_vae_mnist5k"):
        get_preset("hvae_mnist5k")
    assert registry.get("ladder_vae").paper.startswith("Sønderby")
