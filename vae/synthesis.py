"""Synthetic data export: samples of a trained run as a `.npz` (and optionally PNGs), with provenance.

    synthesize("runs/quickstart", 10_000, out="synthetic.npz", balanced=True)

The `.npz` holds
  images    [N, H, W, C] float32 decoder means in [0, 1] (clipped there; the default), or uint8
            round(255 * mean) with dtype='uint8' (4x smaller, what image files hold); for a model
            of vectors instead `vectors` [N, D] float32 decoder means, not clipped (no PNGs, no uint8);
  labels    [N] int32: the class of each sample, -1 where unknown;
  metadata  a 0-d string array holding JSON: toolkit version, run directory name, checkpoint
            step, seed, temperature, "synthetic": true, and how the labels were obtained.
Read it back with `np.load(path)`; `json.loads(str(f["metadata"]))` gives the metadata.

Labels: a conditional model (`model.num_classes > 0`) generates the requested `label`, or all
classes in equal shares with `balanced=True` (the first N mod C classes get one more), or
uniformly random classes otherwise. An unconditional model with `balanced=True` labels its
samples with the dataset classifier (`vae.trained.classifier`) and keeps drawing batches until every class
has its share (rejection by predicted label, up to `max_draws` samples); given a `classifier`
without `balanced`, it labels the samples with it; otherwise labels are -1.

Generation is batched and jitted (one compiled batch shape), and images stream into the zip
entry batch by batch, so memory is one batch whatever N. The file is written under a
temporary name and renamed when complete. Samples are a function of (seed, batch_size).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import sys
import time
import zipfile

import numpy as np

from vae.run.card import write_model_card
from vae.samplers import latent_source
from vae.trained.classifier import DEFAULT_CLASSIFIER_STEPS, load_or_train_classifier
from vae.trained.rundir import load_run
from vae.trained.sampling import Sampler, SamplingError, generate_arrays
from vae.version import __version__

IMAGE_DTYPES = ("float32", "uint8")

# A synthesis request that cannot be met (bad arguments, or a class the model never generates).
SynthesisError = SamplingError


def _as_run(run_or_dir, step: int | None = None):
    if isinstance(run_or_dir, (str, os.PathLike)):
        return load_run(os.fspath(run_or_dir), step=step)
    return run_or_dir


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------

def _npy_header(fp, shape: tuple[int, ...], dtype: np.dtype) -> None:
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": tuple(int(s) for s in shape)}
    np.lib.format.write_array_header_2_0(fp, header)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


class _Sink:
    """Streams accepted batches into the npz's images entry, the PNG folder and a labels array."""

    def __init__(self, path: str, num: int, image_shape: tuple[int, ...], dtype: str, compress: bool,
                 png_dir: str | None, png_text: dict[str, str], vectors: bool = False):
        self.num, self.dtype, self.filled = num, np.dtype(dtype), 0
        self.labels = np.full(num, -1, np.int32)
        self.clipped = 0
        # vectors: written as `vectors` [N, D] (as vae.data reads them), as decoded: not clipped
        self.vectors, self.shape = vectors, ((image_shape[-1],) if vectors else tuple(image_shape))
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED,
                                   allowZip64=True)
        self.images = self.zip.open("vectors.npy" if vectors else "images.npy", "w", force_zip64=True)
        _npy_header(self.images, (num, *self.shape), self.dtype)
        self.png_dir, self.png_text = png_dir, png_text
        self.png_width = max(6, len(str(num - 1)))
        self.num_png = 0
        if png_dir:
            channels = image_shape[-1]
            if channels not in (1, 3, 4):
                raise SynthesisError(f"PNG export takes images with 1, 3 or 4 channels; these have {channels}")
            os.makedirs(png_dir, exist_ok=True)

    def write(self, x: np.ndarray, labels: np.ndarray) -> None:
        n = x.shape[0]
        if n == 0:
            return
        if self.vectors:
            self.images.write(np.ascontiguousarray(x.reshape(n, *self.shape), np.float32).tobytes())
            self.labels[self.filled:self.filled + n] = labels
            self.filled += n
            return
        outside = (x < 0.0) | (x > 1.0)
        self.clipped += int(outside.sum())
        x = np.clip(x, 0.0, 1.0)
        stored = _to_uint8(x) if self.dtype == np.uint8 else x.astype(np.float32)
        self.images.write(np.ascontiguousarray(stored).tobytes())
        self.labels[self.filled:self.filled + n] = labels
        if self.png_dir:
            self._write_pngs(_to_uint8(x), labels)
        self.filled += n

    def _write_pngs(self, x8: np.ndarray, labels: np.ndarray) -> None:
        from PIL import Image
        from PIL.PngImagePlugin import PngInfo

        for j in range(x8.shape[0]):
            index, label = self.filled + j, int(labels[j])
            info = PngInfo()
            for key, value in self.png_text.items():
                info.add_text(key, value)
            info.add_text("index", str(index))
            info.add_text("label", str(label))
            img = x8[j]
            img = Image.fromarray(img[..., 0], mode="L") if img.shape[-1] == 1 else Image.fromarray(img)
            name = f"{index:0{self.png_width}d}_label{label if label >= 0 else 'unknown'}.png"
            img.save(os.path.join(self.png_dir, name), pnginfo=info)
            self.num_png += 1

    def finish(self, metadata: dict) -> None:
        if self.filled != self.num:
            raise RuntimeError(f"internal error: wrote {self.filled} of {self.num} images")
        self.images.close()
        for name, array in (("labels", self.labels), ("metadata", np.array(json.dumps(metadata)))):
            with self.zip.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, array, allow_pickle=False)
        self.zip.close()

    def abort(self) -> None:
        try:
            self.images.close()
        except Exception:  # noqa: BLE001 - cleaning up after another error
            pass
        self.zip.close()


# ----------------------------------------------------------------------------------------------
# synthesize
# ----------------------------------------------------------------------------------------------

def _balanced_targets(num: int, num_classes: int) -> np.ndarray:
    targets = np.full(num_classes, num // num_classes, np.int64)
    targets[: num % num_classes] += 1
    return targets


def _dataset_classes(run) -> int | None:
    n = getattr(run.model, "num_classes", 0) or run.test.info.num_classes
    return int(n) if n and run.test.labels is not None else None


def synthesize(run_or_dir, num: int, *, out: str, label: int | None = None, balanced: bool = False,
               temperature: float = 1.0, seed: int = 0, batch_size: int = 500, png_dir: str | None = None,
               classifier=None, dtype: str = "float32", compress: bool = False, max_draws: int | None = None,
               classifier_steps: int | None = None, step: int | None = None, sampler: str | None = None,
               verbose: bool = False) -> dict:
    """Generates `num` samples of a trained run and writes them to `out` (.npz; see the module doc).

    run_or_dir: a RUN_DIR path (loaded at checkpoint `step`, default best else latest) or a
      `vae.trained.LoadedRun`.
    label: (conditional models) generate this class only. balanced: equal shares of every
      class: exact for a conditional model; for an unconditional one through rejection by the
      dataset classifier's predicted label (`classifier`, default `vae.trained.classifier.
      load_or_train_classifier(run)`, cached in RUN_DIR/classifier/), drawing at most
      `max_draws` samples (default max(50 * num, 20 batches)) before giving up with an error that
      names the classes not reached. A `classifier` (anything with `num_classes` and
      `predict(images) -> labels`) labels an unconditional model's samples even when not balanced.
    temperature: z ~ temperature * p(z) (>= 0). dtype: 'float32' (decoder means, the default)
      or 'uint8' (round(255 * mean)). compress: deflate the npz (slower, smaller).
    png_dir: also write one PNG per sample there, each carrying provenance in PNG tEXt chunks
      (toolkit, toolkit_version, run, checkpoint_step, seed, temperature, sampler, index, label,
      label_source, synthetic).
    sampler: draw z from the sampler saved as RUN_DIR/samplers/<sampler>/ (`vae fit-sampler`)
      instead of the prior (None or 'normal': the prior); a missing or stale one is an error
      before anything is written. The metadata records it and its provenance.
    Returns: path, num, shape, dtype, label_counts, draws (samples generated), png_dir,
    num_png, metadata, seconds.
    """
    t0 = time.perf_counter()
    num = _check_request(num, label, balanced, temperature, batch_size, dtype, max_draws)
    run = _as_run(run_or_dir, step)
    conditional = _check_labels(run, label, balanced)
    latents, sampler_info = latent_source(run, sampler)
    if balanced and not conditional and classifier is None:
        classifier = load_or_train_classifier(run, steps=classifier_steps or DEFAULT_CLASSIFIER_STEPS, verbose=verbose)
    if classifier is not None and not hasattr(classifier, "predict"):
        raise SynthesisError("classifier must have predict(images) -> labels and num_classes")

    out = os.fspath(out)
    if not out.endswith(".npz"):
        out += ".npz"
    if os.path.dirname(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
    bs = int(batch_size) if (balanced and not conditional) else min(int(batch_size), num)
    draw = Sampler(run, bs, temperature, seed, latents)
    image_shape = tuple(int(s) for s in run.test.info.image_shape)
    vectors = bool(getattr(run.test.info, "vectors", False))
    if vectors and (png_dir or dtype != "float32"):
        raise SynthesisError(f"this model's data are vectors, written as float32 vectors [N, {image_shape[-1]}]; "
                             f"png_dir and dtype='uint8' are for images")
    run_name = os.path.basename(os.path.abspath(run.run_dir))
    plan, label_source, classifier_info = _label_plan(run, num, label, balanced, classifier, seed)

    png_text = {"Software": f"vae {__version__}", "toolkit": "vae", "toolkit_version": __version__,
                "run": run_name, "checkpoint_step": str(run.step), "seed": str(seed),
                "temperature": repr(float(temperature)), "sampler": sampler_info["name"], "synthetic": "true",
                "label_source": label_source,
                "Description": f"Synthetic image: a sample of the VAE in run {run_name!r} (not real data)"}
    tmp = f"{out}.partial{os.getpid()}"
    sink = _Sink(tmp, num, image_shape, dtype, compress, png_dir, png_text, vectors)
    try:
        if balanced and not conditional:
            draws = _rejection_fill(sink, draw, classifier, num, bs, max_draws)
        else:
            draws = _planned_fill(sink, draw, classifier, plan, num, bs)
        z_from = ("temperature * p(z)" if latents is None
                  else f"the fitted sampler {sampler_info['name']!r} at temperature {float(temperature)!r}")
        counts = np.bincount(sink.labels[sink.labels >= 0], minlength=_dataset_classes(run) or 0)
        metadata = {
            "toolkit": "vae", "toolkit_version": __version__, "synthetic": True,
            "run": run_name, "dataset": run.config.data.name, "model": run.config.model.name,
            "checkpoint_step": int(run.step), "seed": int(seed), "temperature": float(temperature),
            "num": num, "batch_size": bs, "image_shape": list(image_shape), "image_dtype": dtype,
            "images": (f"vectors: decoder means of p(x|z), z ~ {z_from}" if vectors
                       else f"decoder means of p(x|z), z ~ {z_from}, clipped to [0, 1]" if dtype == "float32"
                       else f"round(255 * decoder mean of p(x|z)), z ~ {z_from}"),
            "sampler": sampler_info,
            "labels_from": label_source, "label": None if label is None else int(label), "balanced": bool(balanced),
            "label_counts": counts.tolist(), "unknown_labels": int((sink.labels < 0).sum()),
            "classifier": classifier_info, "samples_drawn": int(draws), "pixels_clipped": sink.clipped,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        sink.finish(metadata)
    except BaseException:
        sink.abort()
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    os.replace(tmp, out)
    if os.path.abspath(out).startswith(os.path.abspath(run.run_dir) + os.sep):
        write_model_card(run.run_dir)   # the card lists the synthetic files kept in the run
    result = {"path": out, "num": num, "shape": [num, *sink.shape], "dtype": dtype,
              "label_counts": metadata["label_counts"], "unknown_labels": metadata["unknown_labels"],
              "draws": int(draws), "png_dir": png_dir, "num_png": sink.num_png, "metadata": metadata,
              "seconds": time.perf_counter() - t0}
    if verbose:
        print(f"vae: wrote {num} samples to {out} ({draws} drawn)", file=sys.stderr)
    return result


def _check_request(num, label, balanced, temperature, batch_size, dtype, max_draws) -> int:
    """The arguments that need no run, checked before any work; returns num as an int."""
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num <= 0:
        raise SynthesisError(f"num={num!r} must be a positive integer (the number of samples to export)")
    if batch_size <= 0:
        raise SynthesisError(f"batch_size={batch_size} must be > 0")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise SynthesisError(f"temperature={temperature} must be a finite number >= 0")
    if dtype not in IMAGE_DTYPES:
        raise SynthesisError(f"dtype={dtype!r} is not allowed; choose one of {', '.join(IMAGE_DTYPES)}")
    if label is not None and balanced:
        raise SynthesisError("pass either label (one class) or balanced (every class), not both")
    if max_draws is not None and max_draws <= 0:
        raise SynthesisError(f"max_draws={max_draws} must be > 0")
    return int(num)


def _check_labels(run, label, balanced) -> bool:
    """Whether the run's model is conditional; a label or balance it cannot give is refused."""
    model_classes = int(getattr(run.model, "num_classes", 0) or 0)
    conditional = model_classes > 0
    if label is not None:
        if not conditional:
            raise SynthesisError(f"label={label} was given, but this run's model ({run.config.model.name!r}) is "
                                 f"unconditional; train a conditional model (model.name=cvae) or use balanced=True "
                                 f"(--balanced) to select classes through the dataset classifier")
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < model_classes:
            raise SynthesisError(f"label={label!r} is out of range: this model has classes 0..{model_classes - 1}")
    if balanced and not conditional and _dataset_classes(run) is None:
        raise SynthesisError(f"balanced=True needs class labels, but dataset {run.config.data.name!r} has none")
    return conditional


def _label_plan(run, num: int, label, balanced: bool, classifier, seed: int):
    """(labels to generate [num] for a conditional model else None, how the labels are obtained,
    the classifier's provenance or None)."""
    model_classes = int(getattr(run.model, "num_classes", 0) or 0)
    if model_classes:
        if label is not None:
            return (np.full(num, label, np.int32),
                    f"conditional model: every sample generated with the requested label {label}", None)
        if balanced:
            return ((np.arange(num) % model_classes).astype(np.int32),
                    "conditional model: classes generated in equal shares (label i mod num_classes; the first "
                    "num mod num_classes classes have one more)", None)
        return (np.random.default_rng(seed).integers(0, model_classes, num).astype(np.int32),
                "conditional model: each sample generated with a uniformly random class", None)
    if classifier is None:
        return None, "unknown (-1): unconditional model, no classifier", None
    info = getattr(classifier, "info", {}) or {}
    classifier_info = {k: info[k] for k in ("dataset", "train_split", "steps", "test_accuracy", "cache") if k in info}
    acc = classifier_info.get("test_accuracy")
    acc_text = f", test accuracy {acc:.4f}" if isinstance(acc, float) else ""
    source = (f"predicted by the dataset classifier{acc_text} (unconditional model)"
              + ("; rejection-sampled to equal shares of every class" if balanced else ""))
    return None, source, classifier_info


def _planned_fill(sink: _Sink, sampler: Sampler, classifier, plan, num: int, bs: int) -> int:
    """Draws num samples in batches of bs (with `plan`'s labels for a conditional model; labelled
    by the classifier, or -1, otherwise) into the sink; returns the samples drawn."""
    draws = 0
    for i, start in enumerate(range(0, num, bs)):
        stop = min(start + bs, num)
        y = None if plan is None else plan[start:stop]
        x = sampler.draw(i, y)[: stop - start]
        draws += bs
        labels = y if y is not None else (
            np.asarray(classifier.predict(x), np.int32) if classifier is not None
            else np.full(stop - start, -1, np.int32))
        sink.write(x, labels)
    return draws


def _rejection_fill(sink: _Sink, sampler: Sampler, classifier, num: int, bs: int, max_draws: int | None) -> int:
    """Draws batches, keeps samples whose predicted class still needs some, until every class has its share."""
    num_classes = int(classifier.num_classes)
    targets = _balanced_targets(num, num_classes)
    counts = np.zeros(num_classes, np.int64)
    predicted = np.zeros(num_classes, np.int64)
    limit = int(max_draws) if max_draws is not None else max(50 * num, 20 * bs)
    draws, i = 0, 0
    while sink.filled < num:
        if draws >= limit:
            short = np.flatnonzero(counts < targets)
            detail = ", ".join(f"class {c}: {counts[c]} of {targets[c]} (predicted for {predicted[c] / draws:.2%} of "
                               f"samples)" for c in short)
            raise SynthesisError(
                f"balanced synthesis gave up after drawing {draws} samples (max_draws={limit}): the classifier rarely "
                f"or never assigns some classes to this model's samples — {detail}. The model does not generate "
                f"them often enough; lower num, raise max_draws, or use a conditional model (model.name=cvae)")
        x = sampler.draw(i)
        i += 1
        draws += bs
        pred = np.asarray(classifier.predict(x), np.int64)
        if pred.min() < 0 or pred.max() >= num_classes:
            raise SynthesisError(f"the classifier predicted labels outside [0, {num_classes})")
        predicted += np.bincount(pred, minlength=num_classes)
        keep = []
        for c in range(num_classes):
            need = targets[c] - counts[c]
            if need > 0:
                idx = np.flatnonzero(pred == c)[:need]
                counts[c] += idx.size
                keep.append(idx)
        if keep:
            idx = np.sort(np.concatenate(keep))
            sink.write(x[idx], pred[idx].astype(np.int32))
    return draws


def read_synthetic(path: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """(images, labels, metadata) of a file written by `synthesize`."""
    with np.load(path, allow_pickle=False) as f:
        return f["images"], f["labels"], json.loads(str(f["metadata"]))


__all__ = ["synthesize", "generate_arrays", "read_synthetic", "Sampler", "SynthesisError", "IMAGE_DTYPES"]
