"""The compile section: a short `vae.run.train` run (300 steps; 60 with --quick) of the default
config with the train-step factories wrapped to capture the jitted step, counting the backend
compilations of the train step from JAX's dispatch log and reading its jit cache size, so that a
recompilation per step or per epoch shows; also the first step's time including trace and
compile, and the run's steps/s.
"""

from __future__ import annotations

import logging
import os
import tempfile

from benchmarks.sizes import MLP_LATENT


def bench_compiles(args, results):
    import vae
    import vae.run.loop as vrun
    from vae.config import Config

    captured = {}
    originals = {"make_train_step": vrun.make_train_step, "make_fused_train_step": vrun.make_fused_train_step}

    def capturing(name):
        def capture(*a, **kw):
            fn = originals[name](*a, **kw)
            captured["fn"] = fn
            return fn
        return capture

    compiles: list[tuple[str, float]] = []

    class Handler(logging.Handler):
        def emit(self, record):
            msg = record.getMessage()
            if msg.startswith("Finished XLA compilation of"):
                name = msg.split(" of ", 1)[1].rsplit(" in ", 1)
                compiles.append((name[0], float(name[1].split()[0])))

    logger = logging.getLogger("jax._src.dispatch")
    handler, level, propagate = Handler(), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # keep jax's debug lines off the console
    steps = 60 if args.quick else 300
    config = Config().replace(**{"train.steps": steps, "train.eval_every": steps // 2, "train.log_every": 20,
                                 "train.final_iwae_samples": 0, "train.progress": False,
                                 "model.latent_dim": MLP_LATENT})
    for name in originals:
        setattr(vrun, name, capturing(name))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            summary = vrun.train(config, os.path.join(tmp, "run"))
    finally:
        for name, fn in originals.items():
            setattr(vrun, name, fn)
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
    train_compiles = [c for c in compiles if c[0] in ("jit(train_step)", "jit(fused)")]
    results["compile"] = {
        "run_steps": steps,
        "train_step_cache_size": int(captured["fn"]._cache_size()),
        "train_step_backend_compiles": len(train_compiles),
        "train_step_backend_compile_s": sum(c[1] for c in train_compiles),
        "first_step_s_incl_compile": summary["compile_time_s"],
        "run_train_steps_per_s": summary["train_steps_per_s"],
        "all_backend_compiles_in_run": len(compiles),
    }
