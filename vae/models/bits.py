"""Bits per dimension: a negative log-likelihood in nats per example as bits per value, with the
8-bit dequantization offset where the likelihood is a density on 8-bit data (and only there).

    bits_per_dim(nll, D, continuous_8bit=...)    the number
    takes_8bit_offset(likelihood)                whether the offset applies to a likelihood
    bits_per_dim_convention(likelihood)          how the number was formed, in words
"""

from __future__ import annotations

import math

LOG_256 = math.log(256.0)  # log of the number of 8-bit levels


def bits_per_dim(nll_nats, num_dims: int, *, continuous_8bit: bool = False):
    """A negative log-likelihood in nats per example as bits per dimension: nll / (D ln 2).

    num_dims: D, the number of sub-pixels (H * W * C), or of values of a vector.
    continuous_8bit: the nll is of a *density* on 8-bit data scaled to [0, 1]. The probability
      of a quantization bin of width 1/256 is then ~ density * (1/256), so the discrete nll is
      nll + D log 256, i.e. exactly 8 more bits per dimension. This follows the usual
      dequantization convention ((k + u) / 256, Theis et al. 2016); with data at k/255 the bin
      width is 1/255 and the exact offset would be log2(255) = 7.9944 bits/dim.

    Which likelihoods need it (`takes_8bit_offset`: their class attribute `discrete` is False
    and the data are 8-bit levels):
      GaussianLikelihood on 8-bit (or binary) images -> continuous_8bit=True.
      GaussianLikelihood on continuous data (vectors, float images off the 8-bit grid) ->
      continuous_8bit=False: plain nll / (D ln 2), bits of a *differential* entropy, which
      depend on the data's units and can be negative; compare them on the same data only.
    Which don't (discrete = True, log_prob already a log-probability of discrete data):
      BernoulliLikelihood on binary data, DiscretizedLogisticMixture, Categorical256. (A
      Bernoulli on grey levels is the usual relaxation, not a likelihood; its bits/dim are not
      comparable with the others.)
    Works on floats, numpy and jax arrays.
    """
    nll = nll_nats + num_dims * LOG_256 if continuous_8bit else nll_nats
    return nll / (num_dims * math.log(2.0))


def takes_8bit_offset(likelihood) -> bool:
    """Whether bits/dim of `likelihood`'s nll take the 8-bit dequantization offset: it is a
    density (`discrete` False) on data that are 8-bit levels (`levels_8bit`, True when the
    likelihood does not say). None (no likelihood): False."""
    return not getattr(likelihood, "discrete", True) and bool(getattr(likelihood, "levels_8bit", True))


def bits_per_dim_convention(likelihood) -> str:
    """How bits/dim of `likelihood` are reported, in words (for summary.json and eval.json)."""
    if takes_8bit_offset(likelihood):
        return ("nll / (D ln 2) + 8: a density on 8-bit data, plus the 8-bit dequantization offset of 8 "
                "bits/dim (comparable with discrete likelihoods)")
    if not getattr(likelihood, "discrete", True):
        return ("nll / (D ln 2), no 8-bit offset: a density on continuous data (bits of a differential "
                "entropy; they depend on the data's units and can be negative)")
    return "nll / (D ln 2): a log-probability of discrete data"
