"""The dataset classifier's network, and its convolutional features as a perceptual feature map.

`ConvClassifier` is the small convnet `vae.trained.classifier` trains on a run's own training
split (for the sample-quality metrics and for labelling samples); `ConvFeatures` is its
convolutional stack alone, with the same parameter names (`Conv_0`, `Conv_1`, ...), so the
trained classifier's conv params drive it (DFC-VAE's feature-perceptual loss, `dfc_vae`).
"""

from __future__ import annotations

import flax.linen as nn
import jax

DEFAULT_CHANNELS = (32, 64)
DEFAULT_HIDDEN = 128


def _conv_stack(x: jax.Array, channels: tuple[int, ...]) -> list[jax.Array]:
    """Average pooling down to at most 32x32, then one 3x3 conv + ReLU per entry of `channels`
    (stride 2 while the map is at least 8x8). Called inside a compact method, so the layers are
    that module's `Conv_i`. Returns every conv's activations."""
    while x.shape[1] > 32 and x.shape[2] > 32:  # large images: average down to at most 32x32 first
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
    activations = []
    for c in channels:
        stride = 2 if x.shape[1] >= 8 and x.shape[2] >= 8 else 1
        x = nn.relu(nn.Conv(c, (3, 3), strides=(stride, stride))(x))
        activations.append(x)
    return activations


class ConvClassifier(nn.Module):
    """`_conv_stack`, a dense ReLU layer of `hidden` units (the features), and a linear layer to
    the class logits. __call__(x [N, H, W, C]) -> (logits [N, num_classes], features [N, hidden])."""

    num_classes: int
    channels: tuple[int, ...] = DEFAULT_CHANNELS
    hidden: int = DEFAULT_HIDDEN

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = _conv_stack(x, self.channels)[-1]
        x = x.reshape(x.shape[0], -1)
        features = nn.relu(nn.Dense(self.hidden)(x))
        return nn.Dense(self.num_classes)(features), features


class ConvFeatures(nn.Module):
    """The classifier's conv stack alone: x [N, H, W, C] -> [activations of each conv layer]
    ([N, h_i, w_i, channels[i]]). Its params are the `Conv_i` entries of a ConvClassifier's."""

    channels: tuple[int, ...] = DEFAULT_CHANNELS

    @nn.compact
    def __call__(self, x: jax.Array) -> list[jax.Array]:
        return _conv_stack(x, self.channels)
