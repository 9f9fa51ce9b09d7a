"""RUN_DIR/MODEL_CARD.md: what a trained run is, what it was trained on, how it scored, what was
generated from it, and what it should not be used for, so that a shared model or a synthetic
dataset carries its context (after Mitchell et al. 2019, "Model Cards for Model Reporting").

Written from the run's own files (config.json with its dataset record, summary.json, eval.json,
samplers/*/sampler.json, synthetic/*.npz metadata) at the end of training and again whenever
`vae evaluate`, `vae synthesize` or `vae fit-sampler` adds to them; it states only what those
files say.
"""

from __future__ import annotations

import datetime
import glob
import json
import os
import zipfile

import numpy as np

from vae import registry
from vae.errors import ConfigError
from vae.version import __version__

CARD_FILE = "MODEL_CARD.md"
VALUE_WORDS = {"8bit": "8-bit levels k/255", "binary": "binary (0 or 1)",
               "continuous": "continuous (real values, not on the 8-bit grid)"}


def _read(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _synthetic_records(run_dir: str) -> list[dict]:
    """The metadata of the .npz files under RUN_DIR/synthetic/ (read from the zip, no pickle)."""
    out = []
    for path in sorted(glob.glob(os.path.join(run_dir, "synthetic", "*.npz"))):
        try:
            with zipfile.ZipFile(path) as z, z.open("metadata.npy") as f:
                meta = json.loads(str(np.lib.format.read_array(f, allow_pickle=False)))
            out.append({"file": os.path.relpath(path, run_dir), **meta})
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            continue
    return out


def _fmt(value, digits: int = 2) -> str:
    return "—" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))


def model_card(run_dir: str) -> str:
    """The model card of RUN_DIR as Markdown (see the module docstring)."""
    config = _read(os.path.join(run_dir, "config.json")) or {}
    summary = _read(os.path.join(run_dir, "summary.json")) or {}
    evaluation = _read(os.path.join(run_dir, "eval.json"))
    data, model, train, optim = (config.get(k, {}) for k in ("dataset", "model", "train", "optim"))
    cfg_data = config.get("data", {})
    name = model.get("name", "?")
    vectors = data.get("kind") == "vectors"
    examples = "vectors" if vectors else "images"
    shape = (f"of dimension {data['image_shape'][-1]}" if vectors and data.get("image_shape")
             else f"of shape {data.get('image_shape')}")
    try:
        variant = registry.get(name)
        paper, what = variant.paper, variant.summary
    except ConfigError:  # a variant registered outside the package and not imported here
        paper, what = "not recorded (a variant registered outside the toolkit)", name
    lines = [f"# Model card: {config.get('name', os.path.basename(os.path.abspath(run_dir)))}", "",
             f"Written by vae {__version__} on {datetime.date.today().isoformat()} from the files of "
             f"`{os.path.abspath(run_dir)}`; every number below is copied from them.", "",
             "## Model", "",
             f"- Variant: `{name}`, {what}. Paper: {paper}.",
             f"- Architecture: {model.get('architecture')}, latent size {model.get('latent_dim')}, likelihood "
             f"{model.get('likelihood')}, prior {model.get('prior')}; {_fmt(summary.get('num_params'))} parameters.",
             "", "## Data", "",
             f"- Dataset: `{cfg_data.get('name')}`"
             f"{' (arrays passed in memory, copied into the run)' if data.get('source') == 'memory' else ''}; "
             f"{data.get('description', '')}".rstrip("; "),
             f"- Splits: {_fmt(data.get('train_examples'))} training and {_fmt(data.get('test_examples'))} test "
             f"{examples} {shape}; preprocessing: binarize={cfg_data.get('binarize')}.",
             ]
    if data.get("values"):
        override = f", set by data.values={cfg_data['values']}" if cfg_data.get("values", "auto") != "auto" else ""
        lines.append(f"- Values: {VALUE_WORDS.get(data['values'], data['values'])}{override}.")
    counts = data.get("train_class_counts")
    if counts:
        names = data.get("class_names") or [str(i) for i in range(len(counts))]
        lines.append("- Class balance (training split): " + ", ".join(f"{n}: {c}" for n, c in zip(names, counts))
                     + ".")
    lines += ["", "## Training", "",
              f"- Budget: {_fmt(summary.get('steps'))} steps of batch {train.get('batch_size')}, "
              f"{optim.get('optimizer')} at learning rate {optim.get('learning_rate')} "
              f"({optim.get('schedule')} schedule), seed "
              f"{config.get('seed')}.",
              f"- Wall time {_fmt(summary.get('wall_time_s'), 1)} s on {', '.join(summary.get('devices') or ['?'])}."]
    lines += ["", "## Evaluation", ""]
    iwae = summary.get("test_iwae") or {}
    iwae_text = f"IWAE log p(x) {_fmt(iwae['log_px'])} (k = {iwae.get('k')}), " if "log_px" in iwae else ""
    lines.append(f"- At the end of training (test split): ELBO {_fmt(summary.get('test_elbo'))} nats, {iwae_text}"
                 f"{_fmt(summary.get('active_units'))} active units." if summary.get("has_density", True)
                 else "- No density (an autoencoder): no ELBO or log-likelihood; reconstruction "
                      f"{_fmt(summary.get('test_recon'))} nats.")
    if summary.get("test_bits_per_dim") is not None:
        lines.append(f"- Bits/dim (test ELBO): {_fmt(summary['test_bits_per_dim'], 3)}; "
                     f"{summary.get('bits_per_dim_convention') or 'convention not recorded'}.")
    if evaluation:
        e_iwae = evaluation.get("iwae", {})
        if "log_px" in e_iwae:
            lines.append(f"- `vae evaluate` (step {evaluation.get('checkpoint_step')}): IWAE log p(x) "
                         f"{_fmt(e_iwae['log_px'])} nats with k = {e_iwae.get('k')} (Monte-Carlo error "
                         f"{_fmt(e_iwae.get('mc_stderr'), 3)}).")
        quality = evaluation.get("sample_quality")
        if quality:
            dist = quality.get("label_distribution", {})
            sampler = (quality.get("settings", {}).get("sampler") or {}).get("name", "normal")
            lines.append(f"- Samples (sampler `{sampler}`): fd_classifier {_fmt(quality.get('fd_classifier'))} "
                         f"(a Fréchet distance in a small classifier's features, not Inception FID), precision "
                         f"{_fmt(quality.get('precision'), 3)}, recall {_fmt(quality.get('recall'), 3)}.")
            if dist.get("under_represented"):
                lines.append(f"- Under-represented classes in the samples (bias report): "
                             f"{', '.join(map(str, dist['under_represented']))}.")
    samplers = sorted(glob.glob(os.path.join(run_dir, "samplers", "*", "sampler.json")))
    if samplers:
        lines += ["", "## Samplers fitted after training", ""]
        for path in samplers:
            rec = _read(path) or {}
            prov, rep = rec.get("provenance", {}), rec.get("report", {})
            lines.append(f"- `{os.path.basename(os.path.dirname(path))}`: {rec.get('summary', '')}, fitted to "
                         f"checkpoint step {prov.get('checkpoint_step')} on {(prov.get('fitted_on') or {}).get('what')}"
                         f"; held-out log-density {_fmt(rep.get('held_out_log_prob', rep.get('held_out_elbo')))}.")
    synthetic = _synthetic_records(run_dir)
    if synthetic:
        lines += ["", "## Synthetic data generated from this model", ""]
        for meta in synthetic:
            lines.append(f"- `{meta['file']}`: {meta.get('num')} images, seed {meta.get('seed')}, temperature "
                         f"{meta.get('temperature')}, sampler {(meta.get('sampler') or {}).get('name', 'normal')}, "
                         f"checkpoint step {meta.get('checkpoint_step')}, labels from {meta.get('labels_from')}; "
                         f"marked synthetic in the file and in every PNG.")
    lines += ["", "## Intended use and limitations", "",
              "- Research and teaching: comparing variants, estimating likelihoods, exploring latent spaces, "
              "generating synthetic data that is labelled as synthetic.",
              f"- Trained on {_fmt(data.get('train_examples'))} {examples} of `{cfg_data.get('name')}` only; it "
              f"describes that data and its biases, and says nothing reliable about {examples} unlike them.",
              "- Synthetic samples are not real data: do not use them as evidence about the world, and keep their "
              "provenance metadata with them.",
              "- Sample-quality numbers use a classifier trained on the run's own data, so they compare runs on the "
              "same data, not with published FID."]
    return "\n".join(lines) + "\n"


def write_model_card(run_dir: str) -> str:
    """Writes RUN_DIR/MODEL_CARD.md (replacing it) and returns its path."""
    path = os.path.join(run_dir, CARD_FILE)
    with open(path, "w") as f:
        f.write(model_card(run_dir))
    return path
