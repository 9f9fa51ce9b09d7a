"""An adversarial reconstruction term that wraps any objective: a PatchGAN discriminator with
the hinge loss, weighted adaptively at the decoder's last layer (Esser et al. 2021, eq. 5-7),
the way the autoencoders of latent-diffusion systems are trained. `objective.adversarial=patchgan`."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from vae.objectives.base import Objective, forward
from vae.objectives.discriminators import (
    PatchDiscriminator,
    discriminator_update,
    hinge_discriminator_loss,
    init_discriminator,
)

# The decoders of every architecture name their output layer `out`; the adaptive weight is the
# ratio of gradient norms at its kernel.
LAST_LAYER = ("decoder", "out", "kernel")
DELTA = 1e-4  # Esser et al. 2021, eq. 7 (taming-transformers uses 1e-4)
MAX_WEIGHT = 1e4  # the reference implementation's clip of the adaptive weight


def _last_layer(params: dict) -> jax.Array:
    node: Any = params
    for key in LAST_LAYER:
        if not isinstance(node, dict) or key not in node:
            raise ValueError(f"the adaptive adversarial weight needs the decoder's output layer at params"
                             f"[{']['.join(map(repr, LAST_LAYER))}]; this model's decoder has "
                             f"{sorted(params.get('decoder', {}))}")
        node = node[key]
    return node


def _with_last_layer(params: dict, kernel: jax.Array) -> dict:
    out = dict(params["decoder"]["out"], kernel=kernel)
    return {**params, "decoder": {**params["decoder"], "out": out}}


@dataclasses.dataclass(frozen=True)
class AdversarialTerm(Objective):
    """`base`'s loss plus an adaptive adversarial term on its reconstructions (Esser et al. 2021):

        loss = L_base + f(t) * lambda * L_G,     L_G = -E[D(x_hat)] (hinge generator loss, eq. 5-6)
        lambda = weight * ||grad_{G_L} L_base|| / (||grad_{G_L} L_G|| + delta)         (eq. 7)

    where x_hat is the likelihood's mean of a forward pass (same sample key as the base loss),
    G_L the decoder's output-layer kernel, delta = 1e-4 and lambda clipped at 1e4; f(t) = 1 from
    step `start` on, 0 before (so the autoencoder learns to reconstruct first). The PatchGAN
    discriminator D (`PatchDiscriminator`) minimizes the hinge loss
    1/2 (E[relu(1 - D(x))] + E[relu(1 + D(x_hat))]) with its own Adam (lr `disc_learning_rate`,
    b1 = 0.5, b2 = 0.9), also from step `start` on, in the same jitted step. The base objective's
    own extra state is kept under extra['base']. Leaves out: the LPIPS perceptual term of the
    reference implementation (no ImageNet network offline) and the discriminator's batch norm.
    """

    base: Objective
    start: int = 0
    weight: float = 1.0
    disc_learning_rate: float = 1e-4
    disc_channels: tuple[int, ...] = (64, 128, 256)

    @property
    def discriminator(self) -> PatchDiscriminator:
        return PatchDiscriminator(tuple(self.disc_channels))

    @property
    def optimizer(self) -> optax.GradientTransformation:
        return optax.adam(self.disc_learning_rate, b1=0.5, b2=0.9)

    def init_extra(self, model, params, rng, image_shape):
        _last_layer(params)  # fails early, naming the layer, for a decoder without one
        base_rng, disc_rng = jax.random.split(rng)
        return {"base": self.base.init_extra(model, params, base_rng, image_shape),
                **init_discriminator(self.discriminator, disc_rng, jnp.zeros((1, *image_shape)), self.optimizer)}

    def _active(self, step) -> jax.Array:
        return (jnp.asarray(step) >= self.start).astype(jnp.float32)

    def compute(self, model, params, batch, rng, step, extra):
        disc_params = jax.lax.stop_gradient(extra["disc_params"])

        def generator_loss(p):
            x_hat = model.likelihood.mean(forward(model, p, batch, rng).decoded)
            return -jnp.mean(self.discriminator.apply({"params": disc_params}, x_hat)), x_hat

        def base_loss(p):
            return self.base.compute(model, p, batch, rng, step, extra["base"])[0]

        # lambda from params behind stop_gradient: the train step's gradient then does not
        # differentiate through these inner gradients (second order, ~10x the step's cost)
        frozen = jax.lax.stop_gradient(params)
        kernel = _last_layer(frozen)
        g_base = jax.grad(lambda w: base_loss(_with_last_layer(frozen, w)))(kernel)
        g_gen = jax.grad(lambda w: generator_loss(_with_last_layer(frozen, w))[0])(kernel)
        lam = jnp.linalg.norm(g_base) / (jnp.linalg.norm(g_gen) + DELTA)
        lam = jnp.clip(lam, 0.0, MAX_WEIGHT) * self.weight * self._active(step)
        loss, metrics, aux = self.base.compute(model, params, batch, rng, step, extra["base"])
        g_loss, x_hat = generator_loss(params)
        metrics = {**metrics, "loss": metrics["loss"] + lam * g_loss, "adversarial_weight": lam,
                   "generator_loss": g_loss}
        return loss + lam * g_loss, metrics, {"base": aux, "x_hat": jax.lax.stop_gradient(x_hat)}

    def update_extra(self, model, params, extra, aux, batch, rng, step):
        params, base_extra, metrics = self.base.update_extra(model, params, extra["base"], aux["base"], batch, rng,
                                                             step)
        disc, active = self.discriminator, self._active(step)

        def disc_loss(dp):
            b = batch["image"].shape[0]
            logits = disc.apply({"params": dp}, jnp.concatenate([batch["image"], aux["x_hat"]]))
            return active * hinge_discriminator_loss(logits[:b], logits[b:])

        new, loss = discriminator_update(disc_loss, extra, self.optimizer)
        return params, {"base": base_extra, **new}, {**metrics, "disc_loss": loss}
