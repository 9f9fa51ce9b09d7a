"""What the disentanglement metrics take and how they sample it: the `GroundTruth` protocol, a
`Representation` function (e.g. `encoder_mean_fn`, the encoder mean of a trained VAE), and the
shared argument checks and chunked render-and-represent sampling of ground-truth points.

The conventions (integer factor indices, chunking, float64 finite codes) are in the notes of
`vae.metrics.disentanglement`.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from vae.trained.estimators import encode_split

Representation = Callable[[np.ndarray], np.ndarray]

CHUNK_SIZE = 4096


@runtime_checkable
class GroundTruth(Protocol):
    """Data with known generative factors (integer indices); `vae.data.sprites.Sprites` is one.

    factor_sizes: number of values of each factor (K factors).
    sample_factors(num, rng) -> [num, K] ints, factors drawn independently and uniformly.
    sample_with_fixed_factor(num, factor_index, rng) -> [num, K] ints, column `factor_index`
        holding one random value shared by all rows, the other columns as sample_factors.
    render(factors [N, K]) -> observations [N, ...] that a representation function accepts.
    `rng` is a `np.random.Generator`.
    """

    factor_sizes: Sequence[int]

    def sample_factors(self, num: int, rng: np.random.Generator) -> np.ndarray: ...

    def sample_with_fixed_factor(self, num: int, factor_index: int, rng: np.random.Generator) -> np.ndarray: ...

    def render(self, factors: np.ndarray) -> np.ndarray: ...


def encoder_mean_fn(model, params, batch_size: int = 256) -> Representation:
    """The representation `images [N, H, W, C] -> E_q[z | x]` [N, d] float64 of a trained VAE,
    computed with `vae.trained.encode_split` in batches of `batch_size`."""
    def represent(images: np.ndarray) -> np.ndarray:
        means, _ = encode_split(model, params, np.asarray(images, dtype=np.float32), batch_size=batch_size)
        return np.asarray(means, dtype=np.float64)

    return represent


def _num_factors(ground_truth: GroundTruth) -> int:
    sizes = tuple(int(s) for s in ground_truth.factor_sizes)
    if not sizes:
        raise ValueError("the ground truth has no factors")
    if min(sizes) < 2:
        raise ValueError(f"every factor needs at least 2 values, got factor_sizes={sizes}")
    return len(sizes)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def _represent(represent: Representation, ground_truth: GroundTruth, factors: np.ndarray,
               chunk_size: int) -> np.ndarray:
    """Renders `factors` [N, K] and represents them, `chunk_size` images per call: [N, d] float64."""
    out = []
    for start in range(0, factors.shape[0], chunk_size):
        chunk = factors[start:start + chunk_size]
        codes = np.asarray(represent(ground_truth.render(chunk)), dtype=np.float64)
        if codes.ndim != 2 or codes.shape[0] != chunk.shape[0]:
            raise ValueError(f"the representation must return [N, d] for N={chunk.shape[0]} observations, "
                             f"got shape {codes.shape}")
        out.append(codes)
    codes = np.concatenate(out)
    if not np.all(np.isfinite(codes)):
        raise ValueError("the representation returned non-finite values (NaN or inf)")
    return codes


def _sample_codes(represent: Representation, ground_truth: GroundTruth, num: int,
                  rng: np.random.Generator, chunk_size: int) -> tuple[np.ndarray, np.ndarray]:
    """`num` points with independent uniform factors: codes [num, d] float64, factors [num, K] int64."""
    factors = np.array(ground_truth.sample_factors(int(num), rng), dtype=np.int64)
    return _represent(represent, ground_truth, factors, chunk_size), factors


def _check_labels(factors: np.ndarray, where: str) -> None:
    for k in range(factors.shape[1]):
        if np.unique(factors[:, k]).size < 2:
            raise ValueError(f"factor {k} takes a single value in the {factors.shape[0]} {where} points; "
                             "use more points")


def _check_pair(codes: np.ndarray, factors: np.ndarray, what: str = "") -> None:
    """ValueError unless codes [N, d] and factors [N, K] have matching rows."""
    if codes.ndim != 2 or factors.ndim != 2 or codes.shape[0] != factors.shape[0] or not codes.shape[0]:
        raise ValueError(f"{what or 'codes and factors'} must be [N, d] and [N, K] with the same N > 0; got "
                         f"{codes.shape} and {factors.shape}")


def _check_sets(x_train, y_train, x_test, y_test) -> tuple[np.ndarray, ...]:
    """The four arrays as float64 codes [N, d] and int factors [N, K], rows matching (ValueError)."""
    out = (np.asarray(x_train, np.float64), np.asarray(y_train), np.asarray(x_test, np.float64), np.asarray(y_test))
    _check_pair(out[0], out[1], "x_train and y_train")
    _check_pair(out[2], out[3], "x_test and y_test")
    if out[0].shape[1] != out[2].shape[1] or out[1].shape[1] != out[3].shape[1]:
        raise ValueError(f"the training and test sets differ in width: codes {out[0].shape[1]} and "
                         f"{out[2].shape[1]}, factors {out[1].shape[1]} and {out[3].shape[1]}")
    return out
