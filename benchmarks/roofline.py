"""The roofline of the MLP train step: a square float32 matmul timed in the same run (1024^2 on
the CPU, 4096^2 on a GPU) as the machine's attainable GFLOP/s, the step's analytic matmul FLOPs
(checked against XLA's cost analysis), and the step's matrix products alone (the gradient of a
linear copy of the network, same shapes and dependencies) as the floor its own GEMMs set; the
train-step section times these runners next to the step and reports the ratios.
"""

from __future__ import annotations

import numpy as np

from benchmarks.sizes import MLP_HIDDEN, MLP_LATENT
from benchmarks.timing import paired_ratio


def matmul_runner(n=1024):
    """An n x n float32 matmul at JAX's default precision (TF32 on recent NVIDIA GPUs)."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32)
    f = jax.jit(lambda a, b: a @ b)

    def run(k):
        for _ in range(k):
            out = f(a, b)
        jax.block_until_ready(out)

    return run, 2.0 * n**3


def mlp_gemms_runner(batch: int, seed=0):
    """Only the matrix products of the MLP train step, with its shapes and dependencies: the gradient
    of a linear version of the network (no biases, activations, sampling, loss or optimizer), so the
    same forward, input-gradient and weight-gradient products. Its time is the floor the step's
    own GEMMs set at this batch size."""
    import jax
    import jax.numpy as jnp

    enc = [784, *MLP_HIDDEN]
    dec = [MLP_LATENT, *reversed(MLP_HIDDEN), 784]
    shapes = ([(a, b) for a, b in zip(enc[:-1], enc[1:])] + [(enc[-1], MLP_LATENT)] * 2
              + [(a, b) for a, b in zip(dec[:-1], dec[1:])])
    keys = jax.random.split(jax.random.PRNGKey(seed), len(shapes) + 3)
    ws = [jax.random.normal(k, s, jnp.float32) * s[0] ** -0.5 for k, s in zip(keys, shapes)]
    x = jax.random.normal(keys[-3], (batch, 784), jnp.float32)
    r_out = jax.random.normal(keys[-2], (batch, 784), jnp.float32)
    r_var = jax.random.normal(keys[-1], (batch, MLP_LATENT), jnp.float32)
    n_enc = len(enc) - 1

    def loss(ws):
        h = x
        for w in ws[:n_enc]:
            h = h @ w
        mu, log_var = h @ ws[n_enc], h @ ws[n_enc + 1]
        y = mu
        for w in ws[n_enc + 2:]:
            y = y @ w
        return jnp.sum(y * r_out) + jnp.sum(log_var * r_var)

    grad = jax.jit(jax.grad(loss))
    box = {"ws": ws}

    def run(k):
        ws = box["ws"]
        for _ in range(k):
            gs = grad(ws)
        jax.block_until_ready(gs)

    return run


def mlp_step_flops(batch: int) -> float:
    """Analytic FLOPs of one MLP train step: matmuls only, 2*M*K*N forward, twice that backward
    (input and weight gradients; the first layer's input gradient is not needed, so subtracted)."""
    dims = [(784, MLP_HIDDEN[0]), (MLP_HIDDEN[0], MLP_HIDDEN[1]), (MLP_HIDDEN[1], MLP_LATENT),
            (MLP_HIDDEN[1], MLP_LATENT), (MLP_LATENT, MLP_HIDDEN[1]), (MLP_HIDDEN[1], MLP_HIDDEN[0]),
            (MLP_HIDDEN[0], 784)]
    fwd = sum(2 * batch * k * n for k, n in dims)
    return 3 * fwd - 2 * batch * 784 * MLP_HIDDEN[0]

def mlp_flops_entry(samples: dict[str, list[float]], batch: int, mm_flops: float, matmul_size: int, step, state,
                    step_batch) -> dict:
    """The train-step entry's "flops": the MLP step's analytic matmul FLOPs (and XLA's cost analysis of
    the timed toolkit `step` at `state`, `step_batch`) against the square matmul and the step's GEMMs
    alone, from the interleaved samples of the runners "toolkit", "matmul" and "gemms_only"."""
    flops = mlp_step_flops(batch)
    model_ts, mm_ts = np.asarray(samples["toolkit"]), np.asarray(samples["matmul"])
    gemm_ts = np.asarray(samples["gemms_only"])
    achieved = flops / np.median(model_ts) / 1e9
    mm_rate = mm_flops / np.median(mm_ts) / 1e9
    try:
        cost = step.lower(state, step_batch).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        xla_flops = float(cost.get("flops", float("nan")))
    except Exception:  # noqa: BLE001 - cost analysis is optional
        xla_flops = float("nan")
    return {"analytic_matmul_flops_per_step": flops, "xla_cost_analysis_flops_per_step": xla_flops,
            "achieved_gflops": achieved, "matmul_size": matmul_size,
            "matmul_gflops": mm_rate,
            "roofline_ratio": float(np.median((flops / model_ts) / (mm_flops / mm_ts))),
            # the same products alone, at the step's shapes: what the GEMMs themselves
            # reach against the square matmul, and the step against them
            "gemms_only_gflops": flops / float(np.median(gemm_ts)) / 1e9,
            "gemms_only_vs_matmul": float(np.median((mm_ts / mm_flops) / (gemm_ts / flops))),
            "step_vs_gemms_only": paired_ratio(samples["gemms_only"], samples["toolkit"])}
