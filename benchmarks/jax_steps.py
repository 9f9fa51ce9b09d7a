"""The JAX contestants of the train-step section: the toolkit's own jitted step through its public
API (vae.build_model / vae.VAE, vae.make_optimizer, vae.create_train_state, vae.make_train_step,
vae.ELBO) for the MLP, conv and Burgess nets, optionally with `conv_impl='xla'` or the batch in
splits, and a hand-written flax/optax MLP step with no toolkit code, the reference for the
toolkit's own overhead. Each returns a runner: runner(n) runs n steps and blocks.
"""

from __future__ import annotations

from benchmarks.sizes import BURGESS_LATENT, CONV_CHANNELS, CONV_LATENT, MLP_HIDDEN, MLP_LATENT


def toolkit_model(arch: str, conv_impl: str = "auto"):
    import vae
    from vae.models import BernoulliLikelihood, StandardNormalPrior
    from vae.models.networks import BurgessDecoder, BurgessEncoder, ConvDecoder, ConvEncoder

    if arch == "mlp":
        return vae.build_model(vae.ModelConfig(architecture="mlp", latent_dim=MLP_LATENT, hidden=MLP_HIDDEN),
                               (28, 28, 1)), (28, 28, 1)
    if arch == "conv":
        # ModelConfig's conv family always has a dense layer (hidden[0]); the benchmark net goes from the
        # conv features straight to the latent, so the modules are built directly (ConvEncoder hidden=None)
        enc = ConvEncoder(CONV_LATENT, channels=CONV_CHANNELS, hidden=None, conv_impl=conv_impl)
        dec = ConvDecoder((28, 28, 1), channels=tuple(reversed(CONV_CHANNELS)), hidden=None, conv_impl=conv_impl)
        return vae.VAE(encoder=enc, decoder=dec, prior=StandardNormalPrior(), likelihood=BernoulliLikelihood(),
                       latent_dim=CONV_LATENT), (28, 28, 1)
    if arch == "burgess":
        if conv_impl == "auto":
            return vae.build_model(vae.ModelConfig(architecture="burgess", latent_dim=BURGESS_LATENT),
                                   (64, 64, 1)), (64, 64, 1)
        return vae.VAE(encoder=BurgessEncoder(BURGESS_LATENT, conv_impl=conv_impl),
                       decoder=BurgessDecoder((64, 64, 1), conv_impl=conv_impl),
                       prior=StandardNormalPrior(), likelihood=BernoulliLikelihood(),
                       latent_dim=BURGESS_LATENT), (64, 64, 1)
    raise ValueError(arch)


def toolkit_runner(model, shape, batch_np, seed=0, splits=1, compute_dtype="float32"):
    """The toolkit's step through its public API; returns (runner, step, state_box, batch).
    splits: make_train_step's batch splits (vae.run's train.batch_splits); compute_dtype: the
    networks' arithmetic in the step (vae.run's train.compute_dtype; params stay float32)."""
    import jax
    import jax.numpy as jnp
    import vae
    from vae.models.precision import with_compute_dtype

    optimizer = vae.make_optimizer(vae.OptimConfig(learning_rate=1e-3), total_steps=100_000)
    box = {"state": vae.create_train_state(model, optimizer, shape, seed=seed)}
    step = vae.make_train_step(with_compute_dtype(model, compute_dtype), vae.ELBO(), optimizer, splits=splits)
    batch = {"image": jnp.asarray(batch_np), "label": jnp.zeros(batch_np.shape[0], jnp.int32)}

    def run(n):
        state = box["state"]
        for _ in range(n):
            state, metrics = step(state, batch)
        jax.block_until_ready(metrics["loss"])
        box["state"] = state

    return run, step, box, batch


def plain_mlp_runner(batch_np, seed=0):
    """A hand-written flax/optax MLP VAE step, no toolkit code (same sizes as the toolkit's)."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x, eps):
            h = x.reshape(x.shape[0], -1)
            for w in MLP_HIDDEN:
                h = nn.relu(nn.Dense(w)(h))
            mean, log_var = nn.Dense(MLP_LATENT)(h), nn.Dense(MLP_LATENT)(h)
            z = mean + jnp.exp(0.5 * log_var) * eps
            h = z
            for w in reversed(MLP_HIDDEN):
                h = nn.relu(nn.Dense(w)(h))
            logits = nn.Dense(784)(h)
            recon = jnp.sum(optax.sigmoid_binary_cross_entropy(logits, x.reshape(x.shape[0], -1)), -1)
            kl = 0.5 * jnp.sum(jnp.exp(log_var) + mean**2 - 1.0 - log_var, -1)
            return jnp.mean(recon + kl)

    net = Net()
    x = jnp.asarray(batch_np)
    params = net.init(jax.random.PRNGKey(seed), x, jnp.zeros((x.shape[0], MLP_LATENT)))
    opt = optax.adam(1e-3)
    carry = {"s": (params, opt.init(params), jax.random.PRNGKey(seed + 1))}

    def step(s, x):
        params, opt_state, key = s
        key, sub = jax.random.split(key)
        eps = jax.random.normal(sub, (x.shape[0], MLP_LATENT))
        loss, grads = jax.value_and_grad(lambda p: net.apply(p, x, eps))(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, key), loss

    step = jax.jit(step, donate_argnums=0)

    def run(n):
        s = carry["s"]
        for _ in range(n):
            s, loss = step(s, x)
        jax.block_until_ready(loss)
        carry["s"] = s

    return run
