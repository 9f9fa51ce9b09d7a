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
