"""Objectives with a discriminator trained in the same jitted step: the adversarial autoencoder
(Makhzani et al. 2016; discriminator on codes) and VAE-GAN (Larsen et al. 2016; discriminator
on images, reconstruction measured in its features)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from vae.objectives.autoencoders import autoencoder_metrics
from vae.objectives.base import Objective, elbo_metrics, forward
from vae.objectives.discriminators import (
    CodeDiscriminator,
    ImageDiscriminator,
    discriminator_update,
    init_discriminator,
    sigmoid_cross_entropy,
)
from vae.objectives.divergences import prior_draws


def _disc_optimizer(learning_rate: float) -> optax.GradientTransformation:
    # Adam with b1 = 0.5, as GAN discriminators are usually trained (and FactorVAE's is)
    return optax.adam(learning_rate, b1=0.5, b2=0.9)


@dataclasses.dataclass(frozen=True)
class AAE(Objective):
    """The adversarial autoencoder (Makhzani et al. 2016, sec. 2, eq. 1 as a two-player game on
    the codes): a deterministic encoder, a discriminator D on z telling draws of p(z) = N(0, I)
    from codes E(x), and

        loss (encoder, decoder) = -log p(x | D(E(x))) - weight * log D(E(x))
        loss (discriminator)    = -log D(z ~ p(z)) - log(1 - D(E(x)))

    (the encoder's term is the non-saturating form). The reconstruction and regularization
    phases of the paper become one jitted step: the model's optimizer takes the first loss,
    the discriminator's own Adam (lr `disc_learning_rate`, b1 = 0.5, b2 = 0.9) the second,
    after it, on the same batch's detached codes. The discriminator has two layers of 1000 units
    as in the paper's MNIST model. Leaves out: the paper's SGD with momentum schedules and its
    semi-supervised and clustering variants.
    """

    weight: float = 1.0
    disc_learning_rate: float = 1e-4
    disc_hidden: int = 1000
    disc_layers: int = 2

    @property
    def discriminator(self) -> CodeDiscriminator:
        return CodeDiscriminator(self.disc_hidden, self.disc_layers, outputs=1)

    def init_extra(self, model, params, rng, image_shape):
        return init_discriminator(self.discriminator, rng, jnp.zeros((1, model.latent_dim)),
                                  _disc_optimizer(self.disc_learning_rate))

    def compute(self, model, params, batch, rng, step, extra):
        model_rng, prior_rng = jax.random.split(rng)
        out = forward(model, params, batch, model_rng)
        recon = -out.log_px_z
        logits = self.discriminator.apply({"params": jax.lax.stop_gradient(extra["disc_params"])}, out.z)[:, 0]
        fool = sigmoid_cross_entropy(logits, 1.0)
        loss_ex = recon + self.weight * fool
        prior = prior_draws(prior_rng, out.z)
        aux = {"z": jax.lax.stop_gradient(out.z), "prior": prior}
        return jnp.mean(loss_ex), autoencoder_metrics(recon, loss_ex, generator_loss=jnp.mean(fool)), aux

    def update_extra(self, model, params, extra, aux, batch, rng, step):
        disc = self.discriminator

        def disc_loss(dp):
            real = disc.apply({"params": dp}, aux["prior"])[:, 0]
            fake = disc.apply({"params": dp}, aux["z"])[:, 0]
            return jnp.mean(sigmoid_cross_entropy(real, 1.0)) + jnp.mean(sigmoid_cross_entropy(fake, 0.0))

        new, loss = discriminator_update(disc_loss, extra, _disc_optimizer(self.disc_learning_rate))
        return params, new, {"disc_loss": loss}


def _frozen(params: dict, part: str) -> dict:
    """params with the sub-tree `part` behind stop_gradient."""
    return {**params, part: jax.lax.stop_gradient(params[part])}


@dataclasses.dataclass(frozen=True)
class VAEGAN(Objective):
    """VAE-GAN (Larsen et al. 2016, sec. 2 and algorithm 1): a VAE whose reconstruction error is
    measured in the features Dis_l of a GAN discriminator, with the paper's three-way split:

        encoder:        L_prior + L_llike                  L_prior = KL(q(z|x) || p(z))
        decoder:        gamma * L_llike + L_gen            L_llike = 1/2 ||Dis_l(x) - Dis_l(x~)||^2
        discriminator:  -log D(x) - log(1 - D(x~)) - log(1 - D(x_p))

    with x~ = Dec(z), z ~ q(z|x), and x_p = Dec(z_p), z_p ~ p(z). L_gen = -log D(x~) - log D(x_p),
    the non-saturating form of the decoder's -L_GAN. Each network gets only its own terms:
    the encoder's loss is computed with the decoder's params behind stop_gradient, the decoder's
    with the encoder's. gamma = 10 weights the decoder's feature reconstruction against the
    GAN term (this toolkit's default, not the paper's; 1e-6 collapsed here). The discriminator
    (`ImageDiscriminator`; Dis_l is its last convolution) has its own Adam (lr
    `disc_learning_rate`). The reported `elbo` is the bound under the model's pixel likelihood
    (not what this objective trains). Leaves out: batch normalization and the paper's
    equilibrium heuristics for pausing the discriminator.
    """

    gamma: float = 10.0
    disc_learning_rate: float = 1e-4
    disc_channels: tuple[int, ...] = (32, 64, 128)

    @property
    def discriminator(self) -> ImageDiscriminator:
        return ImageDiscriminator(tuple(self.disc_channels))

    def init_extra(self, model, params, rng, image_shape):
        return init_discriminator(self.discriminator, rng, jnp.zeros((1, *image_shape)),
                                  _disc_optimizer(self.disc_learning_rate))

    def compute(self, model, params, batch, rng, step, extra):
        x = batch["image"]
        model_rng, prior_rng = jax.random.split(rng)
        # the encoder's terms (decoder frozen) and the decoder's (encoder frozen): the same z
        out_enc = forward(model, _frozen(params, "decoder"), batch, model_rng)
        out_dec = forward(model, _frozen(params, "encoder"), batch, model_rng)
        x_tilde = model.likelihood.mean(out_dec.decoded)
        z_p = jax.random.normal(prior_rng, out_dec.z.shape, out_dec.z.dtype)
        x_p = model.apply({"params": _frozen(params, "encoder")}, z_p,
                          method=lambda m, z: m.likelihood.mean(m.decode(z)))
        # one pass of the (frozen) discriminator over real, both reconstructions and the samples
        images = jnp.concatenate([x, model.likelihood.mean(out_enc.decoded), x_tilde, x_p])
        logits, features = self.discriminator.apply({"params": jax.lax.stop_gradient(extra["disc_params"])}, images)
        b = x.shape[0]
        real = jax.lax.stop_gradient(features[:b])
        llike_enc, llike_dec = (0.5 * jnp.sum((features[i * b:(i + 1) * b] - real) ** 2, axis=(1, 2, 3))
                                for i in (1, 2))
        gen = sigmoid_cross_entropy(logits[2 * b:3 * b], 1.0) + sigmoid_cross_entropy(logits[3 * b:], 1.0)
        loss_ex = out_enc.kl + llike_enc + self.gamma * llike_dec + gen
        metrics = elbo_metrics(x, -out_enc.log_px_z, out_enc.kl, loss_ex, model)
        metrics.update(feature_recon=llike_enc, generator_loss=gen)
        aux = {"x_tilde": jax.lax.stop_gradient(x_tilde), "x_p": jax.lax.stop_gradient(x_p)}
        return jnp.mean(loss_ex), metrics, aux

    def update_extra(self, model, params, extra, aux, batch, rng, step):
        disc = self.discriminator

        def disc_loss(dp):
            b = batch["image"].shape[0]
            logits, _ = disc.apply({"params": dp}, jnp.concatenate([batch["image"], aux["x_tilde"], aux["x_p"]]))
            return jnp.mean(sigmoid_cross_entropy(logits[:b], 1.0) + sigmoid_cross_entropy(logits[b:2 * b], 0.0)
                            + sigmoid_cross_entropy(logits[2 * b:], 0.0))

        new, loss = discriminator_update(disc_loss, extra, _disc_optimizer(self.disc_learning_rate))
        return params, new, {"disc_loss": loss}
