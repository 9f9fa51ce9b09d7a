import os

# Tests run on the CPU with a fixed small thread pool; keep XLA from grabbing every core twice.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
