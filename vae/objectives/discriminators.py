"""Discriminator networks of the adversarial objectives, and the one update they share.

    CodeDiscriminator   dense layers on a latent code (FactorVAE, AAE)
    ImageDiscriminator  strided convolutions on an image, with an intermediate feature layer
                        (VAE-GAN's learned similarity)
    PatchDiscriminator  a PatchGAN (Isola et al. 2017): one logit per image patch

Each objective keeps its discriminator's params and optax state in the train state's `extra`
and updates them with `discriminator_update` in the same jitted step as the model. The conv
layers are `conv_layer('auto', ...)`: on CPU their input gradient avoids XLA's slow
input-dilated convolution (vae.models.conv_kernels), which the generator's loss needs.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from vae.models.conv_kernels import conv_layer


class CodeDiscriminator(nn.Module):
    """`layers` dense layers of `hidden` units with LeakyReLU(0.2), then `outputs` logits.
    z: [batch, d] -> [batch, outputs]."""

    hidden: int = 1000
    layers: int = 6
    outputs: int = 2

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        h = z
        for _ in range(self.layers):
            h = nn.leaky_relu(nn.Dense(self.hidden)(h), 0.2)
        return nn.Dense(self.outputs)(h)


class ImageDiscriminator(nn.Module):
    """Stride-2 4x4 convolutions with `channels` filters and LeakyReLU(0.2), a dense layer of
    `hidden` units, and one logit. x: [batch, H, W, C] -> (logit [batch], features
    [batch, h, w, channels[-1]]: the last convolution's activations, VAE-GAN's Dis_l)."""

    channels: Sequence[int] = (32, 64, 128)
    hidden: int = 256

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = x
        for i, c in enumerate(self.channels):
            h = nn.leaky_relu(conv_layer("auto", c, (4, 4), (2, 2), name=f"Conv_{i}")(h), 0.2)
        features = h
        h = nn.leaky_relu(nn.Dense(self.hidden)(h.reshape(h.shape[0], -1)), 0.2)
        return nn.Dense(1)(h)[:, 0], features


class PatchDiscriminator(nn.Module):
    """A PatchGAN discriminator (Isola et al. 2017; as in Esser et al. 2021): 4x4 convolutions,
    stride 2 for each of `channels` but the last, which has stride 1, LeakyReLU(0.2), then a
    4x4 stride-1 convolution to one logit per patch. x: [batch, H, W, C] -> [batch, h, w].
    Leaves out: the batch normalization of the original (no state besides params here)."""

    channels: Sequence[int] = (64, 128, 256)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = x
        for i, c in enumerate(self.channels):
            stride = 1 if i == len(self.channels) - 1 else 2
            h = nn.leaky_relu(conv_layer("auto", c, (4, 4), (stride, stride), name=f"Conv_{i}")(h), 0.2)
        return nn.Conv(1, (4, 4), name=f"Conv_{len(self.channels)}")(h)[..., 0]


def discriminator_update(loss_fn: Callable[[Any], jax.Array], extra: dict,
                         optimizer: optax.GradientTransformation) -> tuple[dict, jax.Array]:
    """One optax step on extra['disc_params'] down the gradient of loss_fn(disc_params):
    returns (the new {'disc_params', 'disc_opt_state'}, the loss before the step)."""
    loss, grads = jax.value_and_grad(loss_fn)(extra["disc_params"])
    updates, opt_state = optimizer.update(grads, extra["disc_opt_state"], extra["disc_params"])
    return {"disc_params": optax.apply_updates(extra["disc_params"], updates), "disc_opt_state": opt_state}, loss


def init_discriminator(module: nn.Module, rng: jax.Array, example: jax.Array,
                       optimizer: optax.GradientTransformation) -> dict:
    """{'disc_params', 'disc_opt_state'} of `module` initialized on an example input."""
    params = module.init(rng, example)["params"]
    return {"disc_params": params, "disc_opt_state": optimizer.init(params)}


def sigmoid_cross_entropy(logits: jax.Array, label: float) -> jax.Array:
    """-log sigmoid(logits) for label 1, -log(1 - sigmoid(logits)) for label 0 (elementwise)."""
    return jax.nn.softplus(-logits) if label else jax.nn.softplus(logits)


def hinge_discriminator_loss(real: jax.Array, fake: jax.Array) -> jax.Array:
    """1/2 (E[relu(1 - D(x))] + E[relu(1 + D(x_hat))]) (Lim & Ye 2017; Esser et al. 2021)."""
    return 0.5 * (jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake)))
