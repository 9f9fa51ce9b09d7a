"""Tools for trained models (the floor under the loop and the commands).

    rundir       load_run(RUN_DIR), EVAL_SEED: a run directory back as config, model, params, test split
    inference    TrainedModel / batched_map: batched, padded, jitted model calls, compiled once per shape
    estimators   iwae_log_likelihood, encode_split, latent_diagnostics
    sampling     Sampler, generate_arrays: decoder means of prior samples
    classifier   the dataset classifier behind the sample-quality metrics and balanced synthesis
"""

from vae.trained.estimators import encode_split, iwae_log_likelihood, latent_diagnostics
from vae.trained.inference import TrainedModel, batched_map
from vae.trained.rundir import EVAL_SEED, LoadedRun, load_run
from vae.trained.sampling import Sampler, SamplingError, generate_arrays

__all__ = ["EVAL_SEED", "LoadedRun", "load_run", "TrainedModel", "batched_map", "iwae_log_likelihood",
           "encode_split", "latent_diagnostics", "Sampler", "SamplingError", "generate_arrays"]
