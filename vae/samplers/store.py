"""Fitting a sampler to a trained run, saving it in the run directory, and loading it back.

    RUN_DIR/samplers/<name>/sampler.json   what was fitted, its options, what fitting measured,
                                           and its provenance: the checkpoint step and a SHA-256
                                           of that checkpoint's params, the data, seed, version
    RUN_DIR/samplers/<name>/state.npz      the fitted arrays (read with allow_pickle=False)

A sampler is stale when the run's checkpoint it would sample with is not the one it was fitted to
(another step, or the same step retrained): loading it then raises StaleSamplerError, which says
how to refit. 'normal' and 'vamp' need no fitting (they are the model's own prior).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from vae import data as vdata
from vae.data.pipeline import prepare
from vae.samplers.base import LatentSampler, SamplerError, make_sampler
from vae.trained.inference import TrainedModel
from vae.trained.rundir import EVAL_SEED, LoadedRun, load_run
from vae.version import __version__

SAMPLERS_DIR = "samplers"
RECORD_FILE = "sampler.json"
STATE_FILE = "state.npz"


class StaleSamplerError(SamplerError):
    """A saved sampler fitted to another checkpoint than the one in use."""


def params_fingerprint(params: Any) -> str:
    """SHA-256 of a params tree: every leaf's path, dtype, shape and bytes, in path order."""
    digest = hashlib.sha256()
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    for path, leaf in sorted(leaves, key=lambda item: jax.tree_util.keystr(item[0])):
        array = np.ascontiguousarray(np.asarray(leaf))
        digest.update(f"{jax.tree_util.keystr(path)}|{array.dtype}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def sampler_dir(run_dir: str, name: str) -> str:
    return os.path.join(run_dir, SAMPLERS_DIR, name)


def fitted_samplers(run_dir: str) -> list[str]:
    """Names of the samplers saved in RUN_DIR (sorted)."""
    root = os.path.join(run_dir, SAMPLERS_DIR)
    if not os.path.isdir(root):
        return []
    return sorted(n for n in os.listdir(root) if os.path.isfile(os.path.join(root, n, RECORD_FILE)))


def _as_run(run_or_dir: LoadedRun | str | os.PathLike, step: int | None) -> LoadedRun:
    if isinstance(run_or_dir, LoadedRun):
        return run_or_dir
    return load_run(os.fspath(run_or_dir), step=step)


def training_latents(run: LoadedRun, sampler: LatentSampler, seed: int = 0,
                     max_examples: int | None = None) -> tuple[np.ndarray, dict]:
    """What `sampler` is fitted to, from the run's training split (binarized once with the
    evaluation seed): code indices [N, L] for kind 'codes', else posterior means or one posterior
    sample per image [N, d] (sampler.fit_on). Returns (data, description)."""
    cfg = run.config
    ds = vdata.load_split(cfg.data, cfg.data.train_split)
    images = prepare(ds, cfg.data.binarize, train=False, seed=EVAL_SEED)
    labels = getattr(ds, "labels", None) if getattr(run.model, "num_classes", 0) else None
    if max_examples is not None:
        images = images[:max_examples]
        labels = None if labels is None else labels[:max_examples]
    trained = TrainedModel(run.model, run.params, batch_size=500, pad="batch")
    if sampler.kind == "codes":
        data = trained.map_apply("encode_codes", lambda m, x, y: m.encode_codes(x, y), images, labels)
        what = "code indices"
    elif getattr(sampler, "fit_on", "mean") == "sample":
        data = trained.map_apply("posterior_sample", lambda m, x, y: m.encode(x, y).sample(m.make_rng("sample")),
                                 images.astype(np.float32), labels, key=jax.random.PRNGKey(seed))
        what = "one posterior sample z ~ q(z|x) per image"
    else:
        data = trained.encode(images, labels)[0]
        what = "posterior means"
    if not np.all(np.isfinite(data)):
        raise SamplerError("the encoder's outputs on the training split are not all finite; nothing was fitted")
    return data, {"split": cfg.data.train_split, "num_examples": int(data.shape[0]), "what": what}


def fit_sampler(run_or_dir: LoadedRun | str | os.PathLike, name: str, options: dict | list[str] | None = None, *,
                seed: int = 0, step: int | None = None, save_as: str | None = None,
                max_examples: int | None = None) -> dict:
    """Fits sampler `name` (options: {'components': 20} or ['components=20']) to a run's training
    latents and writes RUN_DIR/samplers/<save_as or name>/; returns its record (sampler.json).
    The directory is replaced only once the new one is complete."""
    run = _as_run(run_or_dir, step)
    sampler = make_sampler(name, options).bind(run.model)
    save_as = save_as or name
    if not save_as.replace("_", "").replace("-", "").isalnum():
        raise SamplerError(f"save_as={save_as!r} must be letters, digits, '_' or '-'")
    start = time.perf_counter()
    if sampler.uses_model:
        state, report, fitted_on = {}, {}, None
    else:
        data, fitted_on = training_latents(run, sampler, seed, max_examples)
        state, report = sampler.fit(data, jax.random.PRNGKey(seed))
        leaves = jax.tree_util.tree_leaves(state)
        if not all(np.all(np.isfinite(np.asarray(leaf))) for leaf in leaves):
            raise SamplerError(f"fitting {name!r} gave non-finite values; nothing was written")
    record = {
        "sampler": name, "kind": sampler.kind, "options": sampler.options(), "summary": sampler.summary,
        "paper": sampler.paper, "report": report,
        "provenance": {"run_dir": os.path.abspath(run.run_dir), "checkpoint_step": int(run.step),
                       "params_sha256": params_fingerprint(run.params), "fitted_on": fitted_on, "seed": int(seed),
                       "toolkit_version": __version__, "fit_seconds": round(time.perf_counter() - start, 3),
                       "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
    }
    target = sampler_dir(run.run_dir, save_as)
    tmp = target + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    flat = traverse_util.flatten_dict(jax.tree_util.tree_map(np.asarray, state), sep="/") if state else {}
    np.savez(os.path.join(tmp, STATE_FILE), **flat)
    with open(os.path.join(tmp, RECORD_FILE), "w") as f:
        json.dump(record, f, indent=2)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return record


class FittedSampler:
    """A sampler loaded from a run (or the model's own prior for 'normal' / 'vamp'), bound to the
    run's model and params. `latents(key, num, temperature)` -> z [num, latent_dim] to decode;
    `codes(...)` for discrete samplers; `log_prob(z)` where the sampler has a density."""

    def __init__(self, sampler: LatentSampler, state: dict, record: dict, run: LoadedRun):
        self.sampler, self.state, self.record = sampler, state, record
        self.name = record.get("name", sampler.name)
        self.trained = TrainedModel(run.model, run.params)
        sample = sampler.sample
        self._draw = jax.jit(lambda s, key, t, num: sample(s, key, num, t), static_argnums=3)

    @property
    def uses_model(self) -> bool:
        return self.sampler.uses_model

    def draw(self, key: jax.Array, num: int, temperature: float = 1.0) -> np.ndarray:
        """The sampler's own output: latents [num, d], or codes [num, L] for kind 'codes'."""
        if self.sampler.uses_model:
            return self.trained.sample_prior(key, num) * temperature
        return np.asarray(self._draw(self.state, key, jnp.asarray(temperature, jnp.float32), int(num)))

    def latents(self, key: jax.Array, num: int, temperature: float = 1.0) -> np.ndarray:
        """z [num, latent_dim] for the decoder (codes are mapped to their codebook vectors)."""
        out = self.draw(key, num, temperature)
        if self.sampler.kind == "codes":
            out = self.trained.map_apply("decode_codes", lambda m, c, y: m.decode_codes(c), out)
        return out

    def log_prob(self, z: np.ndarray) -> np.ndarray:
        """log-density of z [n, d] (or codes [n, L]) under the sampler: [n]."""
        out = None if self.sampler.uses_model else self.sampler.log_prob(self.state, jnp.asarray(z))
        if out is None:
            raise SamplerError(f"sampler {self.sampler.name!r} has no log-density")
        return np.asarray(out)


def load_sampler(run_or_dir: LoadedRun | str | os.PathLike, name: str, *, step: int | None = None) -> FittedSampler:
    """The sampler saved as RUN_DIR/samplers/<name>/, checked against the run's checkpoint; 'normal'
    and 'vamp' need nothing saved. FileNotFoundError when it is missing, StaleSamplerError when
    it was fitted to another checkpoint."""
    run = _as_run(run_or_dir, step)
    path = sampler_dir(run.run_dir, name)
    record_path = os.path.join(path, RECORD_FILE)
    if not os.path.isfile(record_path):
        if name in ("normal", "vamp"):
            sampler = make_sampler(name).bind(run.model)
            return FittedSampler(sampler, {}, {"sampler": name, "name": name}, run)
        saved = fitted_samplers(run.run_dir)
        raise FileNotFoundError(f"no sampler {name!r} in {os.path.join(run.run_dir, SAMPLERS_DIR)} (fitted there: "
                                f"{', '.join(saved) or 'none'}); fit it first: vae fit-sampler {run.run_dir} "
                                f"--sampler {name}")
    with open(record_path) as f:
        record = json.load(f)
    prov = record["provenance"]
    fingerprint = params_fingerprint(run.params)
    if prov["checkpoint_step"] != run.step or prov["params_sha256"] != fingerprint:
        raise StaleSamplerError(
            f"sampler {name!r} in {path} is stale: it was fitted to checkpoint step {prov['checkpoint_step']} "
            f"(params {prov['params_sha256'][:12]}), but the run's checkpoint in use is step {run.step} (params "
            f"{fingerprint[:12]}); refit it: vae fit-sampler {run.run_dir} --sampler {record['sampler']}"
            + (f" --as {name}" if name != record["sampler"] else "") + f" --step {run.step}")
    sampler = make_sampler(record["sampler"], record["options"]).bind(run.model)
    with np.load(os.path.join(path, STATE_FILE), allow_pickle=False) as f:
        flat = {k: f[k] for k in f.files}
    state = jax.tree_util.tree_map(jnp.asarray, traverse_util.unflatten_dict(flat, sep="/")) if flat else {}
    record["name"] = name
    return FittedSampler(sampler, state, record, run)


def latent_source(run: LoadedRun, name: str | None) -> tuple[Any, dict]:
    """(latents function or None, provenance) for sampling `run` with sampler `name`: None (and the
    model's own `generate`, bit for bit as without a sampler) for None, 'normal' and 'vamp' (after
    checking that 'vamp' applies); otherwise the saved sampler's `latents`, checked for staleness."""
    if name is None or name == "normal":
        return None, {"name": "normal", "what": "the model's prior p(z)"}
    fitted = load_sampler(run, name)
    if fitted.uses_model:
        return None, {"name": name, "what": fitted.sampler.summary}
    prov = fitted.record["provenance"]
    return fitted.latents, {"name": name, "sampler": fitted.sampler.name, "what": fitted.sampler.summary,
                            "options": fitted.record["options"], "fitted_to_step": prov["checkpoint_step"],
                            "params_sha256": prov["params_sha256"], "fitted_on": prov["fitted_on"],
                            "report": fitted.record["report"]}
