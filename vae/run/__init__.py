"""A training run: the loop that ties data, model, objective and checkpoints to a run directory.

    runs/<name>/
      config.json        the full resolved config
      variant.json       which module declared the variant (so a run of your own variant reloads)
      metrics.jsonl      one JSON object per logged step (train and test)
      checkpoints/       orbax checkpoints: the latest N and the best
      figures/           reconstructions.png, samples.png, traversals.png, interpolations.png (images only)
      summary.json       final test metrics, steps, wall time, steps/s
      MODEL_CARD.md      data, model, budget, evaluation, synthetic samples, intended use and limits
      data/              a copy of data passed in memory (train(..., data=...)), when it was

    setup    the run directory, data checks, how the step is built, resuming
    loop     train(config, out_dir): set up, step, evaluate and checkpoint, finish
    finish   final estimates, figures, summary.json
    card     MODEL_CARD.md from the run's files (refreshed by evaluate, synthesize, fit-sampler)
Loading a finished run back is `vae.trained.load_run` (re-exported here).
"""

from vae.errors import NonFiniteError, RunDirError
from vae.run.card import write_model_card
from vae.run.loop import train
from vae.run.setup import batch_in_step, batch_splits, default_out_dir
from vae.trained.rundir import EVAL_SEED, LoadedRun, load_run

__all__ = ["train", "load_run", "LoadedRun", "EVAL_SEED", "RunDirError", "NonFiniteError", "batch_in_step",
           "batch_splits", "default_out_dir", "write_model_card"]
