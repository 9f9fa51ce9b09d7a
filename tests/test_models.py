import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae.config import ModelConfig
from vae.models import VAE, BernoulliLikelihood, StandardNormalPrior
from vae.variants import build_model


def _init(model, shape):
    x = jnp.zeros((2, *shape))
    return model.init({"params": jax.random.PRNGKey(0), "sample": jax.random.PRNGKey(1)}, x)


@pytest.mark.parametrize("architecture, shape", [
    ("mlp", (28, 28, 1)), ("mlp", (32, 32, 3)), ("conv", (28, 28, 1)), ("conv", (64, 64, 1)), ("conv", (20, 12, 3)),
])
def test_model_shapes_follow_the_data(architecture, shape):
    cfg = ModelConfig(architecture=architecture, latent_dim=5, hidden=(32,), channels=(8, 16))
    model = build_model(cfg, shape)
    variables = _init(model, shape)
    x = jax.random.uniform(jax.random.PRNGKey(2), (3, *shape))
    out = model.apply(variables, x, rngs={"sample": jax.random.PRNGKey(3)})
    assert out.decoded.shape == (3, *shape)
    assert out.z.shape == (3, 5) and out.posterior.mean.shape == (3, 5)
    assert out.log_px_z.shape == (3,) and out.kl.shape == (3,) and out.kl_per_dim.shape == (3, 5)
    np.testing.assert_allclose(out.kl, out.kl_per_dim.sum(-1), rtol=1e-6)
    recon = model.apply(variables, x, method=VAE.reconstruct)
    assert recon.shape == (3, *shape) and float(recon.min()) >= 0 and float(recon.max()) <= 1
    samples = model.apply(variables, 4, rngs={"sample": jax.random.PRNGKey(4)}, method=VAE.generate)
    assert samples.shape == (4, *shape)


def test_decode_accepts_leading_sample_axes():
    model = build_model(ModelConfig(latent_dim=3, hidden=(16,)), (6, 6, 1))
    variables = _init(model, (6, 6, 1))
    z = jax.random.normal(jax.random.PRNGKey(0), (4, 2, 3))
    out = model.apply(variables, z, method=VAE.decode)
    assert out.shape == (4, 2, 6, 6, 1)
    np.testing.assert_allclose(out[1, 0], model.apply(variables, z[1], method=VAE.decode)[0], rtol=1e-5, atol=1e-6)


class TinyEncoder(nn.Module):
    latent_dim: int

    @nn.compact
    def __call__(self, x):
        h = x.reshape(x.shape[0], -1)
        return nn.Dense(self.latent_dim)(h), jnp.zeros((x.shape[0], self.latent_dim))


class TinyDecoder(nn.Module):
    @nn.compact
    def __call__(self, z):
        return nn.Dense(16)(z).reshape(z.shape[0], 4, 4, 1)


def test_user_modules_plug_in():
    model = VAE(encoder=TinyEncoder(2), decoder=TinyDecoder(), prior=StandardNormalPrior(),
                likelihood=BernoulliLikelihood(), latent_dim=2)
    variables = _init(model, (4, 4, 1))
    x = jnp.ones((2, 4, 4, 1))
    out = model.apply(variables, x, rngs={"sample": jax.random.PRNGKey(0)})
    # log_var = 0 so KL = mean^2 / 2 per dimension
    mean = model.apply(variables, x, method=VAE.encode).mean
    np.testing.assert_allclose(out.kl, 0.5 * jnp.sum(mean**2, -1), rtol=1e-5)
    assert set(variables["params"]) == {"encoder", "decoder"}


def test_ladder_vae_samples_its_bottom_level_given_the_top():
    """generate_from(z2) draws z1 ~ p(z1 | z2) (noise scaled by the temperature) and decodes it:
    the decoder's inputs, captured, have the mean and standard deviation of p(z1 | z2); at
    temperature 0 it is decode(z2), which goes through that mean."""
    model = build_model(ModelConfig(name="ladder_vae", latent_dim=3, bottom_latent_dim=5, hidden=(16,)), (4, 4, 1))
    params = _init(model, (4, 4, 1))["params"]
    z2 = jnp.tile(jnp.asarray([[0.5, -1.0, 2.0]]), (20_000, 1))
    p1 = model.apply({"params": params}, z2[:1], method=lambda m, z: m.p_z1(z))
    seen = []

    def capture(next_fun, args, kwargs, context):
        if context.module.name == "decoder" and context.method_name == "__call__":
            seen.append(args[0])
        return next_fun(*args, **kwargs)

    for t in (1.0, 0.5):
        seen.clear()
        with nn.intercept_methods(capture):
            model.apply({"params": params}, z2, t, rngs={"sample": jax.random.PRNGKey(t > 0.7)},
                        method=type(model).generate_from)
        z1 = np.asarray(seen[0])
        std = t * np.exp(0.5 * np.asarray(p1.log_var[0]))
        np.testing.assert_allclose(z1.mean(0), p1.mean[0], atol=4 * std.max() / np.sqrt(len(z1)))
        np.testing.assert_allclose(z1.std(0), std, rtol=0.03)
    cold = model.apply({"params": params}, z2[:4], 0.0, rngs={"sample": jax.random.PRNGKey(0)},
                       method=type(model).generate_from)
    decoded = model.apply({"params": params}, z2[:4], method=lambda m, z: m.likelihood.mean(m.decode(z)))
    np.testing.assert_allclose(cold, decoded, rtol=1e-6, atol=1e-6)
