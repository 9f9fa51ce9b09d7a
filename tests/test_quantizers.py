"""Quantizers against independent computations on fixed inputs."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae.models.quantizers import (FSQ, LFQ, codebook_usage, expire_dead_codes, kmeans_codebook, nearest_code,
                                   residual_quantize, rotation_trick)


def test_fsq_levels_give_the_implied_codebook_and_round_trip_its_indices():
    fsq = FSQ((8, 5, 5, 5))
    assert fsq.codebook_size == 1000 and fsq.dim == 4
    # every grid point, enumerated independently: channel i takes the L_i integers centred on 0
    # (-L/2 .. L/2 - 1 for even L), divided by floor(L / 2)
    grid = np.asarray(list(itertools.product(*[np.arange(L) - L // 2 for L in fsq.levels])), np.float32)
    grid = grid / (np.asarray(fsq.levels) // 2)
    codes = np.asarray(fsq.codes_from_integers(jnp.asarray(grid * (np.asarray(fsq.levels) // 2))))
    assert sorted(codes.tolist()) == list(range(1000))                       # a bijection onto 0..999
    np.testing.assert_array_equal(np.asarray(fsq.codes_to_vectors(jnp.asarray(codes))), grid)


def test_fsq_rounds_to_the_nearest_reachable_level_and_reaches_every_level():
    fsq = FSQ((4, 3))
    z = jax.random.normal(jax.random.PRNGKey(0), (20_000, 2)) * 3
    zq, codes = fsq(z)
    # independent: bound by the paper's formula in float64, round, normalise
    levels = np.asarray([4.0, 3.0])
    half = (levels - 1) * (1 + 1e-3) / 2
    offset = np.where(levels % 2 == 0, 0.5, 0.0)
    want = np.round(np.tanh(np.asarray(z, np.float64) + np.arctanh(offset / half)) * half - offset) / (levels // 2)
    np.testing.assert_allclose(np.asarray(zq), want, atol=1e-6)
    assert set(np.round(np.asarray(zq[:, 0]) * 2).astype(int)) == {-2, -1, 0, 1}
    assert set(np.round(np.asarray(zq[:, 1])).astype(int)) == {-1, 0, 1}
    assert set(np.asarray(codes).tolist()) == set(range(12))
    np.testing.assert_array_equal(np.asarray(fsq.codes_to_vectors(codes)), np.asarray(zq))


def test_fsq_passes_gradients_straight_through_the_rounding():
    fsq = FSQ((5,))
    z = jnp.asarray([[0.1], [-0.4], [1.3]])
    grad = jax.grad(lambda z: jnp.sum(fsq(z)[0]))(z)
    # d/dz of tanh(z) * h / floor(L/2) with the rounding's gradient taken as 1
    half = 4 * (1 + 1e-3) / 2
    np.testing.assert_allclose(np.asarray(grad), (1 - np.tanh(np.asarray(z)) ** 2) * half / 2, rtol=1e-5)


def test_fsq_refuses_levels_below_two():
    with pytest.raises(ValueError, match=r"FSQ levels must be .*integers >= 2, got \(8, 1\)"):
        FSQ((8, 1))


def _softmax64(logits):
    logits = logits - logits.max(-1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(-1, keepdims=True)


def test_lfq_codes_are_the_signs_bits_and_gradients_pass_straight_through():
    lfq = LFQ(5)
    z = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (64, 5)))
    zq, codes = lfq(jnp.asarray(z))
    np.testing.assert_array_equal(np.asarray(zq), np.where(z > 0, 1.0, -1.0))
    want = [int("".join("1" if v > 0 else "0" for v in row[::-1]), 2) for row in z]   # bit i = channel i
    assert np.asarray(codes).tolist() == want
    np.testing.assert_array_equal(np.asarray(lfq.codes_to_vectors(codes)), np.asarray(zq))
    np.testing.assert_array_equal(np.asarray(jax.grad(lambda z: jnp.sum(lfq(z)[0] * 3.0))(jnp.asarray(z))), 3.0)


def test_lfq_entropies_match_a_brute_force_softmax_over_all_codes():
    lfq = LFQ(4, temperature=2.0, diversity_gamma=0.5)
    z = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (200, 4)), np.float64)
    codes = np.asarray(list(itertools.product([-1.0, 1.0], repeat=4)))                    # all 16, any order
    p = _softmax64(-((z[:, None, :] - codes[None]) ** 2).sum(-1) / 2.0)                  # [N, 16]
    sample = np.mean(-(p * np.log(p)).sum(-1))
    avg = p.mean(0)
    codebook = -(avg * np.log(avg)).sum()
    terms = lfq.entropy_terms(jnp.asarray(z, jnp.float32))
    assert lfq.exact_codebook_entropy
    np.testing.assert_allclose(float(terms["sample_entropy"]), sample, rtol=1e-4)
    np.testing.assert_allclose(float(terms["codebook_entropy"]), codebook, rtol=1e-4)
    np.testing.assert_allclose(float(terms["entropy_loss"]), sample - 0.5 * codebook, rtol=1e-4)
    # above max_exact_bits: the marginals' entropy, never below the exact one
    bound = LFQ(4, temperature=2.0, max_exact_bits=3)
    assert not bound.exact_codebook_entropy
    assert float(bound.entropy_terms(jnp.asarray(z, jnp.float32))["codebook_entropy"]) >= codebook - 1e-5


def test_lfq_refuses_bad_settings():
    with pytest.raises(ValueError, match="LFQ dim must be >= 1, got 0"):
        LFQ(0)
    with pytest.raises(ValueError, match="LFQ temperature must be > 0, got -1"):
        LFQ(3, temperature=-1)


def test_nearest_code_is_the_brute_force_nearest_entry_euclidean_and_cosine():
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(2), (300, 6)))
    book = np.asarray(jax.random.normal(jax.random.PRNGKey(3), (40, 6)))
    codes, entries = nearest_code(jnp.asarray(x), jnp.asarray(book))
    want = np.argmin(((x[:, None] - book[None]) ** 2).sum(-1), axis=1)                    # the [N, K, D] way
    np.testing.assert_array_equal(np.asarray(codes), want)
    np.testing.assert_allclose(np.asarray(entries), book[want], rtol=1e-6)
    cos = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (book / np.linalg.norm(book, axis=1, keepdims=True)).T
    codes_c, entries_c = nearest_code(jnp.asarray(x), jnp.asarray(book), cosine=True)
    np.testing.assert_array_equal(np.asarray(codes_c), np.argmax(cos, axis=1))
    np.testing.assert_allclose(np.linalg.norm(np.asarray(entries_c), axis=1), 1.0, rtol=1e-5)


def test_residual_vq_reconstructs_exactly_when_the_codebooks_hold_the_residuals():
    rng = np.random.default_rng(0)
    coarse = rng.normal(size=(8, 4)) * 10                     # first codebook: far-apart centres
    fine = rng.normal(size=(8, 4)) * 0.1                      # second: small offsets
    pick = rng.integers(0, 8, size=(50, 2))
    z = coarse[pick[:, 0]] + fine[pick[:, 1]]                 # each vector = a coarse entry + a fine one
    books = jnp.asarray(np.stack([coarse, fine]), jnp.float32)
    zq, codes, seen, _ = residual_quantize(jnp.asarray(z, jnp.float32), books)
    np.testing.assert_array_equal(np.asarray(codes), pick)
    np.testing.assert_allclose(np.asarray(zq), z, atol=1e-4)
    np.testing.assert_allclose(np.asarray(seen[1]), fine[pick[:, 1]], atol=1e-4)  # what the second book saw
    grad = jax.grad(lambda z: jnp.sum(residual_quantize(z, jnp.asarray(np.stack([coarse, fine]), jnp.float32))[0]))
    np.testing.assert_array_equal(np.asarray(grad(jnp.asarray(z, jnp.float32))), 1.0)


def test_kmeans_init_gives_every_code_an_assigned_vector_and_finds_separated_clusters():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(6, 3)) * 20
    # unequal clusters: seeds from uniformly drawn rows would often miss the small ones
    sizes = [120, 80, 60, 40, 30, 20]
    x = np.concatenate([c + rng.normal(size=(s, 3)) for c, s in zip(centres, sizes)]).astype(np.float32)
    book = np.asarray(jax.jit(kmeans_codebook, static_argnums=(1, 3))(jnp.asarray(x), 6, jax.random.PRNGKey(0), 20))
    codes = np.argmin(((x[:, None] - book[None]) ** 2).sum(-1), axis=1)
    assert np.bincount(codes, minlength=6).min() >= 1
    # each true centre has a code within 1 (the cluster's mean is within ~0.5 of it)
    assert np.max(np.min(np.linalg.norm(centres[:, None] - book[None], axis=-1), axis=1)) < 1.0
    many = np.asarray(kmeans_codebook(jnp.asarray(x), 64, jax.random.PRNGKey(1)))
    assert np.bincount(np.argmin(((x[:, None] - many[None]) ** 2).sum(-1), axis=1), minlength=64).min() >= 1
    with pytest.raises(ValueError, match="k-means initialization of 8 codes needs at least as many vectors, got 5"):
        kmeans_codebook(jnp.asarray(x[:5]), 8, jax.random.PRNGKey(0))


def test_dead_code_expiry_revives_codes_unused_for_threshold_steps_only():
    book = jnp.arange(12.0).reshape(4, 3)
    idle = jnp.asarray([0, 1, 2, 0])
    counts = jnp.asarray([5.0, 0.0, 0.0, 0.0])                     # code 0 used; 1, 2, 3 idle this step
    vectors = jax.random.normal(jax.random.PRNGKey(0), (10, 3)) + 100.0
    new, idle2, replaced = expire_dead_codes(book, idle, counts, vectors, jax.random.PRNGKey(1), threshold=3)
    # idle counts become 0, 2, 3, 1: only code 2 reaches the threshold
    np.testing.assert_array_equal(np.asarray(idle2), [0, 2, 0, 1])
    assert int(replaced) == 1
    np.testing.assert_array_equal(np.asarray(new)[[0, 1, 3]], np.asarray(book)[[0, 1, 3]])
    assert any(np.allclose(np.asarray(new)[2], v) for v in np.asarray(vectors))   # an encoder output
    # revived: with the batch's vectors now nearest to it, the code is used again
    codes, _ = nearest_code(vectors, new)
    assert set(np.asarray(codes).tolist()) == {2}


def test_rotation_trick_returns_the_code_and_rotates_the_gradient():
    e = jax.random.normal(jax.random.PRNGKey(4), (5, 3))
    q = jax.random.normal(jax.random.PRNGKey(5), (5, 3)) * 2
    np.testing.assert_allclose(np.asarray(rotation_trick(e, q)), np.asarray(q), rtol=1e-5, atol=1e-5)
    g = np.asarray(jax.random.normal(jax.random.PRNGKey(6), (5, 3)), np.float64)
    grad = np.asarray(jax.grad(lambda e: jnp.sum(rotation_trick(e, q) * g))(e))
    for i in range(5):  # independent: the rotation matrix built explicitly, in float64
        ei, qi = np.asarray(e[i], np.float64), np.asarray(q[i], np.float64)
        eh, qh = ei / np.linalg.norm(ei), qi / np.linalg.norm(qi)
        r = (eh + qh) / np.linalg.norm(eh + qh)
        rot = np.eye(3) - 2 * np.outer(r, r) + 2 * np.outer(qh, eh)
        np.testing.assert_allclose(rot @ eh, qh, atol=1e-12)                     # it maps e_hat to q_hat
        np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-9)            # a rotation
        lam = np.linalg.norm(qi) / np.linalg.norm(ei)
        np.testing.assert_allclose(grad[i], lam * rot.T @ g[i], rtol=1e-4, atol=1e-5)


def test_codebook_usage_counts_codes_and_its_perplexity_has_the_closed_form():
    uniform = codebook_usage(jnp.arange(32) % 8, 16)        # 8 of 16 codes, equally often
    assert float(uniform["codes_used"]) == 8 and float(uniform["dead_codes"]) == 8
    np.testing.assert_allclose(float(uniform["perplexity"]), 8.0, rtol=1e-6)
    skewed = codebook_usage(jnp.asarray([[0, 0, 0, 1]]), 4)   # p = (3/4, 1/4)
    np.testing.assert_allclose(float(skewed["perplexity"]), np.exp(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25))),
                               rtol=1e-6)
    assert float(codebook_usage(jnp.zeros(10, jnp.int32), 4)["perplexity"]) == pytest.approx(1.0)
