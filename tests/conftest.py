import os
import shutil
import tempfile

# Tests run on the CPU with a fixed small thread pool; keep XLA from grabbing every core twice.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# XLA's backend (LLVM) optimizations off for the test run: the suite's tiny models spend far more
# time compiling than running, and most of the compile time is LLVM on many small fusions. The
# programs compute the same values (to float rounding); the convolutions and matmuls are library
# calls either way. A user's run compiles with the defaults.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

# One XLA compilation cache for the test run, shared by both xdist workers and the processes they
# start (command-line tests, notebook kernels): many tests compile the same programs (the same
# model's eval step, IWAE, encoder and decoder). Fresh for every run, so a run never reads what an
# earlier version compiled, and removed at the end.
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid())
XLA_CACHE = os.path.join(tempfile.gettempdir(), f"vae-tests-xla-cache-{_RUN}")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", XLA_CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.3")


def pytest_sessionfinish(session, exitstatus):
    if not hasattr(session.config, "workerinput"):  # the controlling process, after the workers
        shutil.rmtree(XLA_CACHE, ignore_errors=True)


import pytest  # noqa: E402

TINY_RUN = {"train.steps": 10, "train.eval_every": 10, "model.hidden": (32,), "model.latent_dim": 4,
            "train.progress": False, "train.final_iwae_samples": 0, "train.num_samples": 4,
            "data.train_split": "train[:512]", "data.test_split": "test[:128]"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(unconditional, conditional) runs trained 10 steps on a slice of mnist5k, loaded back."""
    import vae.config
    import vae.run

    base = tmp_path_factory.mktemp("runs")
    cfg = vae.config.Config().replace(**TINY_RUN)
    vae.run.train(cfg, str(base / "run"))
    vae.run.train(cfg.replace(**{"model.name": "cvae"}), str(base / "crun"))
    return vae.run.load_run(str(base / "run")), vae.run.load_run(str(base / "crun"))
