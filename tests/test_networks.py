import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae.models.networks import (
    ARCHITECTURES,
    BurgessDecoder,
    BurgessEncoder,
    ConvDecoder,
    ConvEncoder,
    MLPDecoder,
    MLPEncoder,
    ResidualBlock,
    ResNetDecoder,
    ResNetEncoder,
    build_networks,
)

P = 7  # likelihood parameter channels, deliberately != the data's C
D = 5
SMALL = {"hidden": (32,), "channels": (8, 16)}  # small widths keep compile and run times low


def _shapes(tree):
    return jax.tree_util.tree_map(lambda a: tuple(a.shape), tree)


def _count(tree):
    return sum(math.prod(a.shape) for a in jax.tree_util.tree_leaves(tree))


def _random_variables(module, *inputs, seed=0):
    """Variables of `module` with random values, without compiling its init: XLA takes seconds
    on CPU to compile the random initializers, far longer than the forward pass itself."""
    rng = np.random.default_rng(seed)
    abstract = jax.eval_shape(module.init, jax.random.PRNGKey(0), *inputs)

    def draw(a):
        scale = 0.1 if len(a.shape) < 2 else 1.0 / math.sqrt(math.prod(a.shape[:-1]))
        return jnp.asarray(scale * rng.standard_normal(a.shape), a.dtype)

    return jax.tree_util.tree_map(draw, abstract)


def _run(encoder, decoder, shape, batch=2):
    x = jax.random.uniform(jax.random.PRNGKey(0), (batch, *shape))
    z = jax.random.normal(jax.random.PRNGKey(1), (batch, D))
    enc_vars = _random_variables(encoder, x, seed=2)
    dec_vars = _random_variables(decoder, z, seed=3)
    mean, log_var = jax.jit(encoder.apply)(enc_vars, x)
    out = jax.jit(decoder.apply)(dec_vars, z)
    return mean, log_var, out, enc_vars, dec_vars


@pytest.mark.parametrize("architecture, shape", [
    ("mlp", (28, 28, 1)), ("mlp", (64, 64, 1)), ("mlp", (32, 32, 3)),
    ("conv", (28, 28, 1)), ("conv", (64, 64, 1)), ("conv", (32, 32, 3)),
    ("burgess", (28, 28, 1)), ("burgess", (64, 64, 1)), ("burgess", (32, 32, 3)), ("burgess", (20, 12, 3)),
    ("resnet", (28, 28, 1)), ("resnet", (64, 64, 1)), ("resnet", (32, 32, 3)), ("resnet", (7, 5, 2)),
])
def test_shapes_follow_the_image(architecture, shape):
    encoder, decoder = build_networks(architecture, D, shape, P, **SMALL)
    mean, log_var, out, _, _ = _run(encoder, decoder, shape)
    assert mean.shape == (2, D) and log_var.shape == (2, D)
    assert out.shape == (2, shape[0], shape[1], P)
    assert all(bool(jnp.all(jnp.isfinite(a))) for a in (mean, log_var, out))


def test_default_resnet_on_32x32_colour():
    encoder, decoder = build_networks("resnet", D, (32, 32, 3), 30, channels=(64, 128, 256), hidden=(256,))
    mean, log_var, out, enc_vars, _ = _run(encoder, decoder, (32, 32, 3), batch=1)
    assert mean.shape == (1, D) and out.shape == (1, 32, 32, 30)
    p = enc_vars["params"]
    assert p["stem"]["kernel"].shape == (3, 3, 3, 64)
    assert p["down1"]["kernel"].shape == (3, 3, 64, 128) and p["down2"]["kernel"].shape == (3, 3, 128, 256)
    assert p["hidden0"]["kernel"].shape == (8 * 8 * 256, 256)


def test_build_networks_maps_config_fields():
    enc, dec = build_networks("mlp", D, (28, 28, 1), 1, hidden=(64, 32))
    assert isinstance(enc, MLPEncoder) and enc.hidden == (64, 32)
    assert isinstance(dec, MLPDecoder) and dec.hidden == (32, 64) and dec.image_shape == (28, 28, 1)
    enc, dec = build_networks("conv", D, (28, 28, 2), 3, hidden=(64, 32), channels=(8, 16), kernel_size=3)
    assert isinstance(enc, ConvEncoder) and enc.channels == (8, 16) and enc.hidden == 64 and enc.kernel_size == 3
    assert isinstance(dec, ConvDecoder) and dec.channels == (16, 8) and dec.image_shape == (28, 28, 3)
    enc, dec = build_networks("burgess", D, (64, 64, 1), 1, hidden=(9,), channels=(9,))
    assert isinstance(enc, BurgessEncoder) and enc.channels == (32, 32, 64, 64) and enc.hidden == 256
    assert isinstance(dec, BurgessDecoder)
    enc, dec = build_networks("resnet", D, (32, 32, 3), 30, hidden=(128, 64), channels=(16, 32, 64), activation="relu")
    assert isinstance(enc, ResNetEncoder) and enc.channels == (16, 32, 64) and enc.hidden == (128, 64)
    assert isinstance(dec, ResNetDecoder) and dec.channels == (64, 32, 16) and dec.hidden == (64, 128)
    assert enc.activation is nn.relu and dec.image_shape == (32, 32, 30)
    # decoder_image_shape is accepted when consistent, rejected otherwise
    build_networks("mlp", D, (28, 28, 3), 30, decoder_image_shape=(28, 28, 30))
    with pytest.raises(ValueError, match="decoder_image_shape"):
        build_networks("mlp", D, (28, 28, 3), 30, decoder_image_shape=(28, 28, 3))
    with pytest.raises(ValueError, match="unknown activation 'nope'.*relu"):
        build_networks("mlp", D, (28, 28, 1), 1, activation="nope")


def test_build_networks_rejects_unknown_architecture():
    with pytest.raises(ValueError) as err:
        build_networks("transformer", D, (28, 28, 1), 1)
    msg = str(err.value)
    assert "'transformer'" in msg
    for name in ("mlp", "conv", "burgess", "resnet"):
        assert name in msg
    assert ARCHITECTURES == ("mlp", "conv", "burgess", "resnet")


# ---------------------------------------------------------------------------------------------
# Burgess / disentanglement_lib
# ---------------------------------------------------------------------------------------------

def test_burgess_parameters_match_disentanglement_lib():
    """disentanglement_lib conv_encoder / deconv_decoder on 64x64x1 with 10 latents."""
    d, c = 10, 1
    enc_vars = jax.eval_shape(BurgessEncoder(d).init, jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, c)))
    dec_vars = jax.eval_shape(BurgessDecoder((64, 64, c)).init, jax.random.PRNGKey(0), jnp.zeros((1, d)))
    assert _shapes(enc_vars["params"]) == {
        "e1": {"kernel": (4, 4, c, 32), "bias": (32,)},
        "e2": {"kernel": (4, 4, 32, 32), "bias": (32,)},
        "e3": {"kernel": (2, 2, 32, 64), "bias": (64,)},   # disentanglement_lib: kernel_size=2
        "e4": {"kernel": (2, 2, 64, 64), "bias": (64,)},
        "e5": {"kernel": (4 * 4 * 64, 256), "bias": (256,)},
        "mean": {"kernel": (256, d), "bias": (d,)},
        "log_var": {"kernel": (256, d), "bias": (d,)},
    }
    # transposed-conv kernels in TensorFlow's conv2d_transpose layout (kh, kw, out, in)
    assert _shapes(dec_vars["params"]) == {
        "d1": {"kernel": (d, 256), "bias": (256,)},
        "d2": {"kernel": (256, 1024), "bias": (1024,)},
        "d3": {"kernel": (4, 4, 64, 64), "bias": (64,)},
        "d4": {"kernel": (4, 4, 32, 64), "bias": (32,)},
        "d5": {"kernel": (4, 4, 32, 32), "bias": (32,)},
        "out": {"kernel": (4, 4, c, 32), "bias": (c,)},
    }
    enc_count = (4 * 4 * 1 * 32 + 32) + (4 * 4 * 32 * 32 + 32) + (2 * 2 * 32 * 64 + 64) + (2 * 2 * 64 * 64 + 64) \
        + (1024 * 256 + 256) + 2 * (256 * 10 + 10)
    dec_count = (10 * 256 + 256) + (256 * 1024 + 1024) + (4 * 4 * 64 * 64 + 64) + (4 * 4 * 64 * 32 + 32) \
        + (4 * 4 * 32 * 32 + 32) + (4 * 4 * 32 * 1 + 1)
    assert (enc_count, dec_count) == (309_204, 381_313)
    assert _count(enc_vars) == enc_count and _count(dec_vars) == dec_count


def test_burgess_paper_kernel_variant():
    """kernel_sizes=(4, 4, 4, 4): four 4x4 convolutions, as in the paper's appendix."""
    enc = BurgessEncoder(D, kernel_sizes=(4, 4, 4, 4))
    p = jax.eval_shape(enc.init, jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 1)))["params"]
    assert [p[f"e{i}"]["kernel"].shape for i in range(1, 5)] == [(4, 4, 1, 32), (4, 4, 32, 32), (4, 4, 32, 64),
                                                                  (4, 4, 64, 64)]
    assert p["e5"]["kernel"].shape == (1024, 256)


def test_burgess_transposed_conv_is_tensorflow_conv2d_transpose():
    """TF's conv2d_transpose(x, W, padding='SAME', stride 2) is the gradient of the 'SAME'
    stride-2 conv2d with kernel W; the decoder's layers compute exactly that from their kernel."""
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 4, 6))
    layer = nn.ConvTranspose(3, (4, 4), strides=(2, 2), padding="SAME", transpose_kernel=True)
    params = _random_variables(layer, x)
    w = params["params"]["kernel"]                                     # (4, 4, 3, 6) = (kh, kw, out, in)
    params["params"]["bias"] = jnp.zeros_like(params["params"]["bias"])

    def conv(y):  # y [2, 8, 8, 3] -> [2, 4, 4, 6], TF 'SAME' padding
        return jax.lax.conv_general_dilated(y, w, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    _, vjp = jax.vjp(conv, jnp.zeros((2, 8, 8, 3)))
    np.testing.assert_allclose(layer.apply(params, x), vjp(x)[0], rtol=1e-5, atol=1e-5)


def test_burgess_encoder_matches_explicit_tf_padding():
    """TF 'same' padding for a 4x4 stride-2 conv on 64 pixels pads 1 before and 1 after."""
    enc = BurgessEncoder(D)
    x = jax.random.uniform(jax.random.PRNGKey(0), (1, 64, 64, 1))
    params = _random_variables(enc, x)["params"]
    h = x
    for i, pad in zip(range(1, 5), [(1, 1), (1, 1), (0, 0), (0, 0)]):
        h = jax.nn.relu(jax.lax.conv_general_dilated(h, params[f"e{i}"]["kernel"], (2, 2), [pad, pad],
                                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
                        + params[f"e{i}"]["bias"])
    h = jax.nn.relu(h.reshape(1, -1) @ params["e5"]["kernel"] + params["e5"]["bias"])
    mean, _ = enc.apply({"params": params}, x)
    np.testing.assert_allclose(mean, h @ params["mean"]["kernel"] + params["mean"]["bias"], rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# ResNet
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("norm", ["group", None])
def test_residual_block_with_zero_last_conv_is_identity(norm):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 5, 8))
    # zero-initialised (the default): the identity at init
    block = ResidualBlock(norm=norm)
    params = block.init(jax.random.PRNGKey(1), x)
    np.testing.assert_array_equal(jax.jit(block.apply)(params, x), x)
    # ordinary init: not the identity until the last conv is set to zero
    block = ResidualBlock(norm=norm, zero_init=False)
    params = block.init(jax.random.PRNGKey(1), x)
    assert float(jnp.abs(block.apply(params, x) - x).max()) > 1e-3
    zeroed = jax.tree_util.tree_map(lambda a: a, params)
    zeroed["params"]["conv2"] = jax.tree_util.tree_map(jnp.zeros_like, params["params"]["conv2"])
    np.testing.assert_array_equal(jax.jit(block.apply)(zeroed, x), x)


def test_residual_block_last_conv_gets_gradients():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 4, 8))
    block = ResidualBlock()
    params = block.init(jax.random.PRNGKey(1), x)
    grads = jax.grad(lambda p: jnp.sum(block.apply(p, x) ** 2))(params)
    assert float(jnp.abs(grads["params"]["conv2"]["kernel"]).max()) > 0


def test_resnet_has_no_batch_statistics_and_rejects_unknown_norm():
    encoder, decoder = build_networks("resnet", D, (8, 8, 3), P, **SMALL)
    enc_vars = jax.eval_shape(encoder.init, jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 3)))
    dec_vars = jax.eval_shape(decoder.init, jax.random.PRNGKey(0), jnp.zeros((1, D)))
    assert set(enc_vars) == {"params"} and set(dec_vars) == {"params"}
    with pytest.raises(ValueError, match="unknown norm 'batch'"):
        jax.eval_shape(ResNetEncoder(D, channels=(8,), norm="batch").init, jax.random.PRNGKey(0),
                       jnp.zeros((1, 8, 8, 3)))
