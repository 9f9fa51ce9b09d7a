"""The matmul transposed convolution (MatmulConvTranspose, the CPU default of ConvDecoder and
BurgessDecoder) computes the same function with the same parameters as flax's nn.ConvTranspose,
and MatmulConv (the encoders' strided convolutions, whose input gradient goes through it) the
same as nn.Conv:
forward outputs and gradients agree within float32 tolerance, and parameter trees (names,
shapes, initial values) are identical, so checkpoints load either way.

Gradients are compared through smooth activations (tanh): with ReLU, a pre-activation within
~1e-9 of zero can land on either side under a different (equally valid) float32 summation
order, and the gradient then legitimately differs for that example."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vae
from vae.models.networks import (
    BurgessDecoder,
    BurgessEncoder,
    ConvDecoder,
    ConvEncoder,
    MatmulConv,
    MatmulConvTranspose,
    conv_transpose_same,
    patch_conv_same,
    resolve_conv_impl,
    strided_conv_same,
)

DN = ("NHWC", "HWIO", "NHWC")


def _close(a, b, rtol=1e-4, atol=1e-5):
    a, b = np.asarray(a), np.asarray(b)
    scale = max(1.0, float(np.max(np.abs(b))))
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol * scale)


def _same_tree(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        assert x.shape == y.shape and x.dtype == y.dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _case_arrays(case, upsample: bool):
    """Random input [2, H, W, Ci], kernel [kh, kw, Ci, Co] and output cotangent for a case
    (H, W, kernel, stride, Ci, Co); the output is H*s (transposed conv) or H/s (strided conv)."""
    h, w, k, s, ci, co = case
    kh, kw = (k, k) if isinstance(k, int) else k
    strides = (s, s) if isinstance(s, int) else s
    kx, kk, kc = jax.random.split(jax.random.PRNGKey(h * 31 + w + upsample), 3)
    out_hw = (strides[0] * h, strides[1] * w) if upsample else (h // strides[0], w // strides[1])
    return (jax.random.normal(kx, (2, h, w, ci)), jax.random.normal(kk, (kh, kw, ci, co)),
            jax.random.normal(kc, (2, *out_hw, co)), strides)


# (H, W, kernel, stride, Ci, Co): the toolkit's layers, odd sizes, kernels not a multiple of the
# stride, kernels smaller than the stride, unequal strides
CASES = [(7, 7, 4, 2, 8, 5), (14, 14, 4, 2, 6, 1), (5, 9, 3, 2, 3, 4), (6, 5, 5, 3, 2, 3), (3, 3, 1, 2, 2, 2),
         (4, 6, (4, 3), (2, 3), 3, 2)]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_function_matches_lax_forward_and_gradients(case):
    x, kernel, cot, strides = _case_arrays(case, upsample=True)

    @jax.jit
    def all_results(x, kernel):
        results = {}
        for tk in (False, True):
            wk = jnp.swapaxes(kernel, 2, 3) if tk else kernel
            fns = {"lax": lambda x, w: jax.lax.conv_transpose(x, w, strides, "SAME", dimension_numbers=DN,
                                                              transpose_kernel=tk)}
            for method in ("col2im", "subpixel"):
                fns[method] = functools.partial(conv_transpose_same, strides=strides, transpose_kernel=tk,
                                                method=method)
            for name, f in fns.items():
                out, vjp = jax.vjp(f, x, wk)
                results[(tk, name)] = (out, *vjp(cot))
        return results

    results = all_results(x, kernel)
    for tk in (False, True):
        for method in ("col2im", "subpixel"):
            for got, want in zip(results[(tk, method)], results[(tk, "lax")]):
                assert got.shape == want.shape
                _close(got, want)


def test_layer_params_identical_and_fallbacks():
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 2, 5, 5, 4))  # two batch axes, as nn.ConvTranspose allows
    for strides in [(2, 2), (1, 1)]:  # (1, 1) takes nn.ConvTranspose's own path
        ref = nn.ConvTranspose(3, (3, 3), strides=strides, padding="SAME")
        fast = MatmulConvTranspose(3, (3, 3), strides=strides, padding="SAME")
        p_ref, p_fast = ref.init(jax.random.PRNGKey(1), x), fast.init(jax.random.PRNGKey(1), x)
        _same_tree(p_fast, p_ref)
        _close(fast.apply(p_ref, x), ref.apply(p_ref, x))
    with pytest.raises(ValueError, match="conv_impl"):
        resolve_conv_impl("cudnn")
    assert resolve_conv_impl("auto") in ("matmul", "xla")


def _decoder_pair(cls, **kw):
    return cls(conv_impl="matmul", **kw), cls(conv_impl="xla", **kw)


DECODERS = {
    "conv_hidden_odd": (ConvDecoder, dict(image_shape=(13, 10, 3), channels=(8, 4), kernel_size=3, hidden=16)),
    "burgess_32": (BurgessDecoder, dict(image_shape=(32, 32, 1))),  # all layers of the 64x64 net, 2x2 start
}


@pytest.mark.parametrize("name", list(DECODERS))
def test_decoders_same_params_outputs_and_gradients(name):
    cls, kw = DECODERS[name]
    fast, ref = _decoder_pair(cls, **kw)
    z = jax.random.normal(jax.random.PRNGKey(2), (4, 10))
    p_fast, p_ref = jax.jit(fast.init)(jax.random.PRNGKey(3), z), jax.jit(ref.init)(jax.random.PRNGKey(3), z)
    _same_tree(p_fast, p_ref)  # names, shapes and initial values: checkpoints load either way
    smooth_fast, smooth_ref = _decoder_pair(cls, activation=jnp.tanh, **kw)  # for gradients (see the docstring)
    cot = jax.random.normal(jax.random.PRNGKey(4), (4, *fast.image_shape))

    @jax.jit
    def results(p, z):
        grad = lambda m: jax.grad(lambda p, z: jnp.sum(m.apply(p, z) * cot), argnums=(0, 1))(p, z)
        return fast.apply(p, z), ref.apply(p, z), grad(smooth_fast), grad(smooth_ref)

    out_fast, out_ref, (gp_fast, gz_fast), (gp_ref, gz_ref) = results(p_ref, z)
    assert out_fast.shape == out_ref.shape == (4, *fast.image_shape)
    _close(out_fast, out_ref)  # ReLU, as built
    _close(gz_fast, gz_ref)
    jax.tree_util.tree_map(_close, gp_fast, gp_ref)


def test_conv_vae_loss_and_gradients_match_xla():
    """The toolkit's ELBO and its gradients through a whole conv VAE (the benchmark's layout,
    narrower) agree with either implementation (same params)."""
    shape = (28, 28, 1)
    enc = lambda impl: vae.models.ConvEncoder(8, channels=(8, 16), hidden=None, activation=jnp.tanh, conv_impl=impl)
    dec = lambda impl: ConvDecoder(shape, channels=(16, 8), hidden=None, activation=jnp.tanh, conv_impl=impl)
    fast, ref = (vae.VAE(encoder=enc(impl), decoder=dec(impl), prior=vae.models.StandardNormalPrior(),
                         likelihood=vae.models.BernoulliLikelihood(), latent_dim=8) for impl in ("matmul", "xla"))
    init = lambda m: jax.jit(m.init)({"params": jax.random.PRNGKey(0), "sample": jax.random.PRNGKey(1)},
                                     jnp.zeros((1, *shape)))["params"]
    params = init(fast)  # ref's params are the same tree (checked for the decoders above)
    assert jax.tree_util.tree_structure(jax.eval_shape(lambda: init(ref))) == jax.tree_util.tree_structure(params)
    x = (jax.random.uniform(jax.random.PRNGKey(5), (8, *shape)) > 0.5).astype(jnp.float32)
    batch = {"image": x, "label": jnp.zeros(8, jnp.int32)}
    objective = vae.ELBO()

    @jax.jit
    def both(params):
        loss = lambda m: jax.value_and_grad(lambda p: objective(m, p, batch, jax.random.PRNGKey(6), 0)[0])(params)
        return loss(fast), loss(ref)

    (loss_a, g_a), (loss_b, g_b) = both(params)
    assert float(loss_a) == pytest.approx(float(loss_b), rel=1e-5)
    jax.tree_util.tree_map(lambda a, b: _close(a, b, rtol=1e-3, atol=1e-5), g_a, g_b)


# (H, W, kernel, stride, Ci, Co) with H, W divisible by the stride (MatmulConv's fast path)
STRIDED = [(32, 32, 4, 2, 8, 5), (16, 16, 2, 2, 3, 4), (12, 12, 3, 2, 3, 4), (12, 15, 5, 3, 3, 2), (8, 8, 1, 2, 2, 3),
           (8, 9, (4, 3), (2, 3), 2, 3)]


@pytest.mark.parametrize("case", STRIDED, ids=str)
def test_strided_conv_matches_lax_forward_and_gradients(case):
    _check_strided_against_lax(strided_conv_same, case)


def _check_strided_against_lax(conv, case):
    """conv(x, kernel, strides): output, input and kernel gradients equal lax's 'SAME' convolution's."""
    x, kernel, cot, strides = _case_arrays(case, upsample=False)

    @jax.jit
    def both(x, kernel):
        lax_conv = lambda x, k: jax.lax.conv_general_dilated(x, k, strides, "SAME", dimension_numbers=DN)
        fast_out, fast_vjp = jax.vjp(lambda x, k: conv(x, k, strides), x, kernel)
        ref_out, ref_vjp = jax.vjp(lax_conv, x, kernel)
        return (fast_out, *fast_vjp(cot)), (ref_out, *ref_vjp(cot))

    for got, want in zip(*both(x, kernel)):
        assert got.shape == want.shape
        _close(got, want)


@pytest.mark.parametrize("case", [(64, 64, 4, 2, 1, 8), (12, 15, 3, 3, 1, 2), (8, 9, (4, 3), (2, 3), 1, 3),
                                  (16, 16, 2, 2, 3, 4)], ids=str)
def test_patch_conv_matches_lax_forward_and_gradients(case):
    _check_strided_against_lax(patch_conv_same, case)


def test_matmul_conv_params_identical_and_fallbacks():
    for shape, strides in [((2, 8, 8, 3), (2, 2)), ((2, 9, 9, 3), (2, 2)), ((2, 8, 8, 3), (1, 1))]:
        x = jax.random.normal(jax.random.PRNGKey(0), shape)  # 9x9 / stride 1: nn.Conv's own path
        ref = nn.Conv(4, (3, 3), strides=strides, padding="SAME")
        fast = MatmulConv(4, (3, 3), strides=strides, padding="SAME")
        assert fast._fast_path(x) == (shape[1] == 8 and strides == (2, 2))
        p_ref, p_fast = ref.init(jax.random.PRNGKey(1), x), fast.init(jax.random.PRNGKey(1), x)
        _same_tree(p_fast, p_ref)
        _close(fast.apply(p_ref, x), ref.apply(p_ref, x))


ENCODERS = {
    "conv_28": (ConvEncoder, dict(latent_dim=6, channels=(8, 16), hidden=16), (28, 28, 1)),
    "burgess_64": (BurgessEncoder, dict(latent_dim=6), (64, 64, 1)),
}


@pytest.mark.parametrize("name", list(ENCODERS))
def test_encoders_same_params_outputs_and_gradients(name):
    cls, kw, shape = ENCODERS[name]
    fast, ref = cls(conv_impl="matmul", **kw), cls(conv_impl="xla", **kw)
    x = jax.random.uniform(jax.random.PRNGKey(2), (3, *shape))
    p_fast, p_ref = jax.jit(fast.init)(jax.random.PRNGKey(3), x), jax.jit(ref.init)(jax.random.PRNGKey(3), x)
    _same_tree(p_fast, p_ref)
    smooth_fast, smooth_ref = cls(conv_impl="matmul", activation=jnp.tanh, **kw), cls(conv_impl="xla",
                                                                                      activation=jnp.tanh, **kw)

    @jax.jit
    def results(p, x):
        def grad(m):
            return jax.grad(lambda p, x: sum(jnp.sum(o * jnp.arange(o.size).reshape(o.shape) / o.size)
                                             for o in m.apply(p, x)), argnums=(0, 1))(p, x)
        return fast.apply(p, x), ref.apply(p, x), grad(smooth_fast), grad(smooth_ref)

    out_fast, out_ref, (gp_fast, gx_fast), (gp_ref, gx_ref) = results(p_ref, x)
    for a, b in zip(out_fast, out_ref):
        _close(a, b)
    _close(gx_fast, gx_ref)
    jax.tree_util.tree_map(_close, gp_fast, gp_ref)
