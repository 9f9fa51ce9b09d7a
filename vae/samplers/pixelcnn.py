"""A gated PixelCNN prior over a 2-D map of code indices (van den Oord et al. 2016, "Conditional
Image Generation with PixelCNN Decoders", eq. 2 and fig. 2), the prior of the VQ-VAE paper (van
den Oord et al. 2017, sec. 3.2 and 4.1), for VQ-VAEs with `model.code_map`.

p(c) = prod_{i, j} p(c_ij | codes above row i, and left of j in row i), raster order. Two stacks
remove the blind spot of masked convolutions: a vertical stack that sees only the rows above
(its input shifted down one row) and a horizontal stack that sees the codes to the left in the
row (its input shifted right one column) plus the vertical stack's features at the same
position. Each layer is gated, tanh(W_f * h) . sigmoid(W_g * h) (eq. 2), with a residual
connection in the horizontal stack. Weights are shared across positions, which is why it learns
from a few thousand code maps where a model of the whole sequence overfits.
Left out: class conditioning (eq. 4), dropout; no 1x1 mixing inside the vertical stack.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae.samplers.base import SamplerError, positive, register_sampler
from vae.samplers.code_prior import AutoregressiveCodePrior


def down_shift(x: jax.Array) -> jax.Array:
    """x [n, h, w, c] moved down one row (row 0 zeros): position (i, j) holds row i - 1."""
    return jnp.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


def right_shift(x: jax.Array) -> jax.Array:
    """x [n, h, w, c] moved right one column (column 0 zeros)."""
    return jnp.pad(x, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]


def _gate(h: jax.Array) -> jax.Array:
    a, b = jnp.split(h, 2, axis=-1)
    return jnp.tanh(a) * jax.nn.sigmoid(b)


class GatedPixelCNN(nn.Module):
    """codes [n, h * w] int (raster order) -> logits [n, h * w, vocab]; the logits at (i, j) are
    a function of the codes at rows < i and at (i, < j) only.

    The vertical convolution (kernel (k // 2 + 1) x k) at (i, j) covers rows i - k // 2 .. i of
    its input; fed the input shifted down a row, it sees only rows above i, and every later layer
    keeps that. The horizontal convolution (1 x (k // 2 + 1)) covers columns j - k // 2 .. j;
    fed the input shifted right, it sees only columns left of j."""

    vocab: int
    height: int
    width: int
    features: int = 64
    depth: int = 6
    kernel: int = 3

    def _vconv(self, features: int, name: str) -> nn.Conv:
        half = self.kernel // 2
        return nn.Conv(features, (half + 1, self.kernel), padding=((half, 0), (half, half)), name=name)

    def _hconv(self, features: int, name: str) -> nn.Conv:
        half = self.kernel // 2
        return nn.Conv(features, (1, half + 1), padding=((0, 0), (half, 0)), name=name)

    @nn.compact
    def __call__(self, codes: jax.Array) -> jax.Array:
        n = codes.shape[0]
        c = self.features
        e = nn.Embed(self.vocab, c, name="embed")(codes.reshape(n, self.height, self.width))
        v = self._vconv(c, "v_in")(down_shift(e))
        h = self._hconv(c, "h_in")(right_shift(e))
        for layer in range(self.depth):
            v_feat = self._vconv(2 * c, f"v{layer}")(v)
            h_feat = self._hconv(2 * c, f"h{layer}")(h) + nn.Dense(2 * c, name=f"v_to_h{layer}")(v_feat)
            v = _gate(v_feat)
            h = h + nn.Dense(c, name=f"h_out{layer}")(_gate(h_feat))
        out = nn.Dense(self.vocab, name="logits")(nn.relu(nn.Dense(c, name="head")(nn.relu(h))))
        return out.reshape(n, self.height * self.width, self.vocab)


@register_sampler
@dataclasses.dataclass(frozen=True)
class PixelCNNSampler(AutoregressiveCodePrior):
    """A gated PixelCNN prior over the code map of a VQ-VAE with `model.code_map` (see
    AutoregressiveCodePrior for the shared options: steps, batch_size, learning_rate, held_out,
    check_every, top_k, num_codes). features: the channels of both stacks; depth: gated layers;
    kernel: the (odd) kernel width. map_height, map_width: the code map's size (0: the model's,
    set by `bind`)."""

    name = "pixelcnn"
    summary = "gated PixelCNN over a 2-D code map (vqvae with model.code_map)"
    paper = "van den Oord et al. 2016 (gated PixelCNN, eq. 2), the prior of van den Oord et al. 2017, sec. 4.1"

    features: int = 64
    depth: int = 6
    kernel: int = 3
    map_height: int = 0
    map_width: int = 0

    def __post_init__(self):
        super().__post_init__()
        for name in ("features", "depth", "kernel"):
            positive(name, getattr(self, name))
        if self.kernel % 2 == 0:
            raise SamplerError(f"kernel={self.kernel} must be odd (a centred vertical stack)")
        if self.map_height < 0 or self.map_width < 0:
            raise SamplerError(f"map_height={self.map_height} and map_width={self.map_width} must be >= 0")

    def check_model(self, model) -> None:
        super().check_model(model)
        if getattr(model, "code_map", None) is None:
            raise SamplerError("sampler 'pixelcnn' needs a 2-D map of codes (a vqvae trained with model.code_map"
                               "=true); this model's codes are a sequence: use code_prior")
        if model.tokens_per_latent != 1:
            raise SamplerError(f"sampler 'pixelcnn' models one code per map position; this model has "
                               f"{model.tokens_per_latent} per position ({model.quantizer}): use code_prior")

    def bind(self, model) -> "PixelCNNSampler":
        bound = super().bind(model)
        return dataclasses.replace(bound, map_height=int(model.code_map[0]), map_width=int(model.code_map[1]))

    def check_codes(self, codes) -> None:
        if not (self.map_height and self.map_width):
            raise SamplerError("pixelcnn needs the code map's size: fit it on a vqvae run with model.code_map, "
                               "or set map_height and map_width")
        if codes.shape[1] != self.map_height * self.map_width:
            raise SamplerError(f"codes have {codes.shape[1]} positions, not map_height * map_width = "
                               f"{self.map_height} * {self.map_width}")

    def network(self, vocab: int) -> GatedPixelCNN:
        return GatedPixelCNN(vocab, self.map_height, self.map_width, self.features, self.depth, self.kernel)
