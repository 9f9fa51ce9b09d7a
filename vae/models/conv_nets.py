"""The convolutional network families: `conv` (ConvEncoder / ConvDecoder) and `burgess`
(BurgessEncoder / BurgessDecoder, the 64x64 net of Burgess et al. 2018 as in disentanglement_lib).

Encoders map x: [batch, H, W, C] to (mean, log_var): [batch, latent_dim] each; decoders map
z: [batch, d] to [batch, H, W, P] (see vae.models.networks). Any H, W works: spatial sizes halve
with ceil and the decoders crop where their upsampling overshoots. Their strided and transposed
convolutions are built by `conv_layer` / `conv_transpose_layer` of vae.models.conv_kernels:
matrix-product forms on CPU and GPU, plain `nn.Conv` / `nn.ConvTranspose` with `conv_impl='xla'`,
with the same parameter names and shapes either way.
"""

from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax

from vae.models.conv_kernels import conv_layer, conv_output_size, conv_transpose_layer


class ConvEncoder(nn.Module):
    """Stride-2 convolutions with `channels` filters, then a dense head for mean and log-variance."""

    latent_dim: int
    channels: Sequence[int] = (32, 64)
    kernel_size: int = 4
    hidden: int | None = 256
    activation: Callable = nn.relu
    conv_impl: str = "auto"  # strided convolutions: 'auto' | 'matmul' | 'xla' (see conv_layer)

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = x
        k = (self.kernel_size, self.kernel_size)
        for i, c in enumerate(self.channels):  # named as nn.Conv auto-names them
            h = self.activation(conv_layer(self.conv_impl, c, k, (2, 2), name=f"Conv_{i}")(h))
        h = h.reshape(h.shape[0], -1)
        if self.hidden:
            h = self.activation(nn.Dense(self.hidden)(h))
        mean = nn.Dense(self.latent_dim, name="mean")(h)
        log_var = nn.Dense(self.latent_dim, name="log_var")(h)
        return mean, log_var


class ConvDecoder(nn.Module):
    """Mirror of ConvEncoder: dense to the encoder's last feature map, stride-2 transposed
    convolutions back up, cropped to the image size (so any H, W works, e.g. 28 or 64)."""

    image_shape: tuple[int, int, int]
    channels: Sequence[int] = (64, 32)
    kernel_size: int = 4
    hidden: int | None = 256
    activation: Callable = nn.relu
    conv_impl: str = "auto"  # transposed convolutions: 'auto' | 'matmul' | 'xla' (see conv_transpose_layer)

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        height, width, out_channels = self.image_shape
        n = len(self.channels)
        h0, w0 = conv_output_size(height, n), conv_output_size(width, n)
        k = (self.kernel_size, self.kernel_size)
        h = z
        if self.hidden:
            h = self.activation(nn.Dense(self.hidden)(h))
        h = self.activation(nn.Dense(h0 * w0 * self.channels[0])(h))
        h = h.reshape(z.shape[0], h0, w0, self.channels[0])
        for i, c in enumerate(self.channels[1:]):  # named as nn.ConvTranspose auto-names them
            h = self.activation(conv_transpose_layer(self.conv_impl, c, k, (2, 2), name=f"ConvTranspose_{i}")(h))
        h = conv_transpose_layer(self.conv_impl, out_channels, k, (2, 2), name="out")(h)
        return h[:, :height, :width, :]


# --------------------------------------------------------------------------------------------
# Burgess et al. 2018 / disentanglement_lib
# --------------------------------------------------------------------------------------------

class BurgessEncoder(nn.Module):
    """The convolutional encoder of Burgess et al. 2018, "Understanding disentangling in
    beta-VAE" (arXiv:1804.03599, Appendix A.1), as implemented by disentanglement_lib
    (Locatello et al. 2019) in `conv_encoder`, disentanglement_lib/methods/shared/architectures.py.

    x [batch, H, W, C] -> 4 convolutions, stride 2, 'same' padding, ReLU, with 32, 32, 64, 64
    filters of sizes 4x4, 4x4, 2x2, 2x2 -> flatten -> dense 256, ReLU -> dense heads `mean` and
    `log_var` [batch, latent_dim]. For 64x64 inputs the last feature map is 4x4x64, so the
    dense layer maps 1024 -> 256.

    Differences, all deliberate:
      * The kernel sizes are disentanglement_lib's (4, 4, 2, 2): its e3/e4 use kernel_size=2.
        The paper's appendix has four 4x4 layers of 32 channels and a second dense 256 layer;
        `kernel_sizes=(4, 4, 4, 4)` gives the 4x4-everywhere variant.
      * Any H, W works (disentanglement_lib assumes 64x64): each 'same' stride-2 layer gives
        ceil(size / 2). Flax's 'SAME' padding is TensorFlow's (extra padding at the end), so for
        64x64 inputs the function equals disentanglement_lib's given the same weights.
      * Weights start from Glorot-uniform kernels and zero biases, TensorFlow's `tf.layers`
        defaults (Flax's own default is LeCun-normal); only the random draws differ.
    Layers are named e1..e4 (convs), e5 (dense), mean, log_var.
    """

    latent_dim: int
    channels: Sequence[int] = (32, 32, 64, 64)
    kernel_sizes: Sequence[int] = (4, 4, 2, 2)
    hidden: int = 256
    activation: Callable = nn.relu
    kernel_init: Callable = nn.initializers.glorot_uniform()
    conv_impl: str = "auto"  # strided convolutions: 'auto' | 'matmul' | 'xla' (see conv_layer)

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        if len(self.kernel_sizes) != len(self.channels):
            raise ValueError(f"BurgessEncoder: kernel_sizes {tuple(self.kernel_sizes)} and channels "
                             f"{tuple(self.channels)} must have the same length")
        h = x
        for i, (c, k) in enumerate(zip(self.channels, self.kernel_sizes)):
            h = conv_layer(self.conv_impl, c, (k, k), (2, 2), kernel_init=self.kernel_init, name=f"e{i + 1}")(h)
            h = self.activation(h)
        h = h.reshape(h.shape[0], -1)
        h = self.activation(nn.Dense(self.hidden, kernel_init=self.kernel_init, name=f"e{len(self.channels) + 1}")(h))
        mean = nn.Dense(self.latent_dim, kernel_init=self.kernel_init, name="mean")(h)
        log_var = nn.Dense(self.latent_dim, kernel_init=self.kernel_init, name="log_var")(h)
        return mean, log_var


class BurgessDecoder(nn.Module):
    """The transposed-convolution decoder of Burgess et al. 2018 (Appendix A.1) as implemented by
    disentanglement_lib in `deconv_decoder` (disentanglement_lib/methods/shared/architectures.py).

    z [batch, d] -> dense 256, ReLU -> dense h0 * w0 * 64, ReLU -> reshape [h0, w0, 64] ->
    4x4 stride-2 'same' transposed convolutions with 64, 32, 32 filters (ReLU) -> a last 4x4
    stride-2 transposed convolution to P channels, no activation -> crop to [batch, H, W, P].
    h0, w0 = the size after len(channels) + 1 halvings (ceil): 4x4 for 64x64, so the second dense
    layer is 256 -> 1024 exactly as in disentanglement_lib (which hard-codes 4x4x64).

    Differences, all deliberate:
      * Any H, W works: the initial map is sized from the image and the output cropped (e.g.
        28x28: 2x2 -> 32x32 -> crop), like ConvDecoder.
      * The transposed convolutions use `transpose_kernel=True`, so their kernels have
        TensorFlow's conv2d_transpose layout (kh, kw, out, in) and meaning (the gradient of a
        'same' convolution); with the same weights the function equals disentanglement_lib's.
      * Glorot-uniform kernels, zero biases (the `tf.layers` defaults), as in BurgessEncoder.
    Layers are named d1, d2 (dense), d3..d5 (transposed convs), out.
    """

    image_shape: tuple[int, int, int]
    channels: Sequence[int] = (64, 32, 32)
    map_channels: int = 64
    kernel_size: int = 4
    hidden: int = 256
    activation: Callable = nn.relu
    kernel_init: Callable = nn.initializers.glorot_uniform()
    conv_impl: str = "auto"  # transposed convolutions: 'auto' | 'matmul' | 'xla' (see conv_transpose_layer)

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        height, width, out_channels = self.image_shape
        n = len(self.channels) + 1
        h0, w0 = conv_output_size(height, n), conv_output_size(width, n)
        k = (self.kernel_size, self.kernel_size)
        h = self.activation(nn.Dense(self.hidden, kernel_init=self.kernel_init, name="d1")(z))
        h = self.activation(nn.Dense(h0 * w0 * self.map_channels, kernel_init=self.kernel_init, name="d2")(h))
        h = h.reshape(z.shape[0], h0, w0, self.map_channels)
        for i, c in enumerate(self.channels):
            h = conv_transpose_layer(self.conv_impl, c, k, (2, 2), transpose_kernel=True,
                                     kernel_init=self.kernel_init, name=f"d{i + 3}")(h)
            h = self.activation(h)
        h = conv_transpose_layer(self.conv_impl, out_channels, k, (2, 2), transpose_kernel=True,
                                 kernel_init=self.kernel_init, name="out")(h)
        return h[:, :height, :width, :]

