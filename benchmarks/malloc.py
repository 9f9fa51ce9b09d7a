"""The toolkit's glibc thresholds (vae.memory) against glibc's defaults, on the same train steps.

    python -m benchmarks.malloc [--quick] [--repeats R] [--steps S] [--cases a,b]
                                [--out benchmarks/results_malloc.json]

Each (case, allocator) runs in its own child process, since the thresholds are process-wide: the
toolkit's jitted step (vae.make_train_step, Adam, the ELBO) on a random binary batch, 3 warm-up
steps, then S timed steps (S x STEP_SCALE for some cases); the child reports ms per step and its
peak resident memory (VmHWM).
'tuned' calls vae.memory.keep_large_buffers() first, 'default' leaves glibc as it is. The two
children of a case alternate, their order rotated every repeat; reported: medians over repeats
and the paired default / tuned time ratio (> 1: the tuned allocator is faster). Cases:
  * chen-mlp: the MLP of Chen et al. 2018 on 64x64 sprites (1200-1200, 10 latents; 12.7M
    parameters), the disentanglement study's network, at batch 256 (the study's) and 64;
  * mlp: the speed table's MLP on 28x28 (512-256, 32 latents; 0.9M parameters), batch 128;
  * burgess: the Burgess net on 64x64, batch 64;
  * chen-mlp b256 in vae.run.train: the whole training loop (vae.run.train, which calls
    keep_large_buffers itself) on the study's VAE, sprites' first 20,000 images; its ms per step
    from the run's summary.json (compilation and evaluation left out).
Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap

from benchmarks.timing import loadavg, usable_cores

CASES = {"chen-mlp b256": ("mlp", (1200, 1200), 10, (64, 64, 1), 256),
         "chen-mlp b64": ("mlp", (1200, 1200), 10, (64, 64, 1), 64),
         "mlp b128": ("mlp", (512, 256), 32, (28, 28, 1), 128),
         "burgess b64": ("burgess", None, 10, (64, 64, 1), 64),
         "chen-mlp b256 in vae.run.train": ("loop", (1200, 1200), 10, (64, 64, 1), 256)}
QUICK_CASES = ("chen-mlp b64",)
# steps per timing, as a multiple of --steps: the small MLP's 4 ms step needs more of them to time, and the
# loop's own timing (summary.json) leaves out compilation but not its first steps
STEP_SCALE = {"mlp b128": 20, "chen-mlp b256 in vae.run.train": 10}

# vae.run.train on the disentanglement study's VAE (sprites' first 20,000 training images), which
# calls keep_large_buffers itself; the default side turns it off with VAE_MALLOC_TUNING=0
LOOP_CHILD = textwrap.dedent("""
    import json, sys, tempfile
    from vae.presets import get_preset
    from vae.config import apply_overrides
    from vae.memory import keep_large_buffers
    from vae.run import train
    arch, hidden, latent, shape, batch, steps, tuned = json.loads(sys.argv[1])
    cfg = apply_overrides(get_preset("conv_sprites"), [
        "model.architecture=mlp", f"model.hidden={list(hidden)}", f"train.batch_size={batch}",
        f"train.steps={steps}", f"train.eval_every={steps}", "train.progress=false", "train.final_iwae_samples=0",
        "train.loggers=[jsonl]", "optim.learning_rate=1e-3"])
    with tempfile.TemporaryDirectory() as tmp:
        summary = train(cfg, tmp + "/run")
    hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
    print(json.dumps({"ms_per_step": 1000 / summary["train_steps_per_s"], "peak_rss_mib": int(hwm.split()[1]) / 1024,
                      "applied": keep_large_buffers() if tuned else {}}))
""")

CHILD = textwrap.dedent("""
    import json, sys, time
    import jax, numpy as np
    import vae
    from vae.memory import keep_large_buffers
    arch, hidden, latent, shape, batch, steps, tuned = json.loads(sys.argv[1])
    applied = keep_large_buffers() if tuned else {}
    cfg = vae.ModelConfig(architecture=arch, latent_dim=latent, **({"hidden": tuple(hidden)} if hidden else {}))
    model = vae.build_model(cfg, tuple(shape))
    optimizer = vae.make_optimizer(vae.OptimConfig(learning_rate=1e-3), total_steps=10_000)
    state = vae.create_train_state(model, optimizer, tuple(shape), seed=0)
    step = vae.make_train_step(model, vae.ELBO(), optimizer)
    x = (np.random.default_rng(0).random((batch, *shape)) < 0.3).astype(np.float32)
    data = {"image": jax.numpy.asarray(x), "label": jax.numpy.zeros(batch, jax.numpy.int32)}
    for _ in range(3):
        state, metrics = step(state, data)
    jax.block_until_ready(metrics["loss"])
    start = time.perf_counter()
    for _ in range(steps):
        state, metrics = step(state, data)
    jax.block_until_ready(metrics["loss"])
    ms = (time.perf_counter() - start) / steps * 1000
    hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
    print(json.dumps({"ms_per_step": ms, "peak_rss_mib": int(hwm.split()[1]) / 1024, "applied": applied}))
""")


def child(case: str, steps: int, tuned: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "VAE_MALLOC_TUNING"}
    arch, hidden, latent, shape, batch = CASES[case]
    if arch == "loop":
        env["VAE_MALLOC_TUNING"] = "1" if tuned else "0"
    spec = json.dumps([arch, hidden, latent, shape, batch, steps * STEP_SCALE.get(case, 1), tuned])
    code = LOOP_CHILD if arch == "loop" else CHILD
    out = subprocess.run([sys.executable, "-c", code, spec], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one case, one repeat, a few steps (a smoke test)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of: {', '.join(CASES)}")
    parser.add_argument("--out", default="benchmarks/results_malloc.json")
    args = parser.parse_args(argv)
    cases = QUICK_CASES if args.quick else tuple(c for c in args.cases.split(",") if c)
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise SystemExit(f"unknown case {unknown[0]!r}; allowed: {', '.join(CASES)}")
    repeats, steps = (1, 3) if args.quick else (args.repeats, args.steps)
    rows = {}
    for case in cases:
        runs = {"tuned": [], "default": []}
        for r in range(repeats):
            for side in (("tuned", "default") if r % 2 == 0 else ("default", "tuned")):
                runs[side].append(child(case, steps, side == "tuned"))
        ratios = [d["ms_per_step"] / t["ms_per_step"] for d, t in zip(runs["default"], runs["tuned"])]
        rows[case] = {side: {"ms_per_step": statistics.median(x["ms_per_step"] for x in runs[side]),
                             "peak_rss_mib": statistics.median(x["peak_rss_mib"] for x in runs[side])}
                      for side in runs}
        rows[case]["default_over_tuned"] = statistics.median(ratios)
        rows[case]["applied"] = runs["tuned"][0]["applied"]
    lines = ["| case | default ms/step, peak MiB | tuned ms/step, peak MiB | default / tuned |", "|---|---|---|---|"]
    for case, row in rows.items():
        d, t = row["default"], row["tuned"]
        lines.append(f"| {case} | {d['ms_per_step']:.1f}, {d['peak_rss_mib']:.0f} | {t['ms_per_step']:.1f}, "
                     f"{t['peak_rss_mib']:.0f} | {row['default_over_tuned']:.2f}x |")
    print("\n".join(lines))
    result = {"repeats": repeats, "steps": steps, "quick": args.quick,
              "machine": {"cores": usable_cores(), "loadavg": loadavg()}, "cases": rows}
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
