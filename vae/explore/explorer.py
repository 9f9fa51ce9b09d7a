"""The latent-space explorer: encode, decode, sample, rank dimensions, embed a split in 2-D and
look for memorized samples; interpolation and traversals come from `LatentPaths`, analogies and
factor swaps from `StyleContent`.

    ex = Explorer.from_run("runs/quickstart")            # best checkpoint, test split as evaluated
    t = ex.traverse(ex.images[0])                        # top-KL dims of the first test image
    fig = traversal_grid(t.images, t.row_labels(), t.column_labels)

`Explorer(model, params, data=...)` wraps any trained `vae.models.LatentVariableModel` (the VAE,
the ladder VAE on its top level, the VQ-VAE on its unquantized z_e, the conditional VAE given
labels). Model calls go through `vae.trained.TrainedModel`: jitted once per model and shape, in
batches of at most `batch_size` rows padded to a power of two.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import numpy as np

from vae.data.sprites import SHAPE_NAMES
from vae.explore.analogies import StyleContent
from vae.explore.geometry import nearest_neighbours
from vae.explore.paths import Embedding, LatentPaths
from vae.metrics.disentanglement import discrete_entropy, discrete_mutual_info, histogram_discretize
from vae.models.distributions import StandardNormalPrior
from vae.samplers import FittedSampler, latent_source
from vae.trained.estimators import latent_diagnostics
from vae.trained.inference import TrainedModel
from vae.trained.rundir import load_run
from vae.trained.sampling import from_latents

EMBEDDING_METHODS = ("auto", "latent", "pca", "tsne")
_RANK_MAX_POINTS = 5000  # latent_diagnostics' mutual information is O(N^2 d): rank on at most this many


class Explorer(LatentPaths, StyleContent):
    """Latent-space tools for a trained model.

    model, params: a VAE-like linen module and its params.
    data: the split to explore (optional): a `vae.data.Dataset` (images, labels, factors and
      info are taken from it; images as the model saw them, i.e. binarized where training
      binarized), an array of images [N, H, W, C], or a tuple (images, labels). Without data,
      traversal ranges come from the prior and the data-based tools (KL ranking, embedding,
      label attribute vectors, quantile traversals) raise ValueError.
    labels, factors: override / supply the data's labels [N] and factors [N, F].
    latent_dim: the code size (default model.latent_dim).
    batch_size: the most rows per jitted call.
    default_class: for conditional models, the label used where none is given.
    """

    def __init__(self, model: Any, params: Any, *, data: Any = None, latent_dim: int | None = None,
                 labels: np.ndarray | None = None, factors: np.ndarray | None = None, batch_size: int = 256,
                 default_class: int = 0):
        self.model = model
        self.params = params
        self.batch_size = int(batch_size)
        self.default_class = int(default_class)
        self.num_classes = int(getattr(model, "num_classes", 0) or 0)
        self.run_dir: str | None = None
        self._run = None
        self.config = None
        self.step: int | None = None
        self.info = None
        images = None
        if data is not None:
            if hasattr(data, "images"):  # a vae.data.Dataset
                images, self.info = data.images, getattr(data, "info", None)
                labels = labels if labels is not None else getattr(data, "labels", None)
                factors = factors if factors is not None else getattr(data, "factors", None)
            elif isinstance(data, dict):
                images = data["images"]
                labels = labels if labels is not None else data.get("labels")
                factors = factors if factors is not None else data.get("factors")
            elif isinstance(data, (tuple, list)):
                images = data[0]
                labels = labels if labels is not None else (data[1] if len(data) > 1 else None)
            else:
                images = data
            images = np.asarray(images, np.float32)
            if images.ndim != 4:
                raise ValueError(f"data images must be [N, H, W, C], got shape {images.shape}")
            n = images.shape[0]
            for name, value in (("labels", labels), ("factors", factors)):
                if value is not None and np.asarray(value).shape[0] != n:
                    raise ValueError(f"{name} has {np.asarray(value).shape[0]} rows but the data has {n} images")
        self.images = images
        self.labels = None if labels is None else np.asarray(labels)
        self.factors = None if factors is None else np.asarray(factors)
        self.latent_dim = int(latent_dim if latent_dim is not None else getattr(model, "latent_dim"))
        self._posterior: tuple[np.ndarray, np.ndarray] | None = None
        self._diagnostics: dict | None = None
        self._image_shape = None if images is None else tuple(images.shape[1:])

        self.trained = TrainedModel(model, params, batch_size=self.batch_size, pad="bucket")

    # ------------------------------------------------------------------ construction from a run

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike, step: int | None = None, **kwargs) -> "Explorer":
        """An explorer of RUN_DIR's model at checkpoint `step` (default: the best, else the
        latest) holding its test split prepared as training evaluated it (binarized with
        EVAL_SEED), with labels and factors. Raises FileNotFoundError naming the path and what
        is missing (the directory, config.json, any checkpoint, or the asked-for step)."""
        run = load_run(run_dir, step=step)
        data = dataclasses.replace(run.test, images=np.asarray(run.test_images, np.float32))
        explorer = cls(run.model, run.params, data=data, **kwargs)
        explorer.run_dir, explorer.config, explorer.step = os.fspath(run_dir), run.config, run.step
        explorer._run = run
        return explorer

    # ------------------------------------------------------------------ batching

    def _y(self, n: int, y) -> np.ndarray | None:
        """Labels for n rows of a conditional model (None for unconditional ones)."""
        return self.trained.labels(n, y, self.default_class)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of decoded images (from the data, or the decoder's output shape)."""
        if self._image_shape is None:
            self._image_shape = self.trained.image_shape()
        return self._image_shape

    def _require_data(self, what: str) -> None:
        if self.images is None:
            raise ValueError(f"{what} needs data: create the Explorer with data=... (or use Explorer.from_run)")

    def _as_codes(self, v, y=None) -> tuple[np.ndarray, bool]:
        """Images [H,W,C] / [N,H,W,C] -> posterior means; codes [d] / [N,d] as they are.
        Returns (codes [N, d], whether the input was a single item)."""
        v = np.asarray(v, np.float32)
        if v.ndim in (1, 2):
            single = v.ndim == 1
            codes = v[None] if single else v
            if codes.shape[-1] != self.latent_dim:
                raise ValueError(f"a latent code must have {self.latent_dim} entries, got shape {v.shape}")
            return codes, single
        if v.ndim in (3, 4):
            single = v.ndim == 3
            return self.encode(v[None] if single else v, y)[0], single
        raise ValueError(f"expected an image [H, W, C], images [N, H, W, C], a code [d] or codes [N, d]; "
                         f"got shape {v.shape}")

    def _base_code(self, base, y=None) -> np.ndarray:
        """base: None (zeros, the prior mean), an int (that row of the data), an image or a code -> [d]."""
        if base is None:
            return np.zeros(self.latent_dim, np.float32)
        if isinstance(base, (int, np.integer)):
            self._require_data("an integer base (a row of the data)")
            i = int(base)
            yi = None if self.labels is None else self.labels[i:i + 1]
            return self.encode(self.images[i:i + 1], yi if y is None else y)[0][0]
        codes, single = self._as_codes(base, y)
        if not single:
            raise ValueError(f"base must be one image or one code, got shape {np.shape(base)}")
        return codes[0]

    def _label_of_base(self, base, y):
        """A conditional model decodes a data row's traversal with that row's label."""
        if y is None and self.num_classes and isinstance(base, (int, np.integer)) and self.labels is not None:
            return self.labels[int(base)]
        return y

    # ------------------------------------------------------------------ core maps

    def encode(self, x: np.ndarray, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """x [N, H, W, C] -> posterior (mean, variance) [N, d] each. y: labels for conditional models."""
        x = np.asarray(x, np.float32)
        if x.ndim != 4:
            raise ValueError(f"encode takes images [N, H, W, C], got shape {x.shape}")
        mean, log_var = self.trained.encode(x, self._y(x.shape[0], y))
        return mean, np.exp(log_var)

    def decode(self, z: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """z [N, d] (or [..., d]) -> the likelihood's mean images [N, H, W, C] (or [..., H, W, C])."""
        z = np.asarray(z, np.float32)
        if z.shape[-1] != self.latent_dim:
            raise ValueError(f"codes must have {self.latent_dim} entries in their last axis, got shape {z.shape}")
        lead = z.shape[:-1]
        flat = z.reshape(-1, self.latent_dim)
        out = self.trained.decode(flat, self._y(flat.shape[0], y))
        return out.reshape(*lead, *out.shape[1:])

    def reconstruct(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """x [N, H, W, C] -> the model's reconstructions (decoded posterior means) [N, H, W, C]."""
        x = np.asarray(x, np.float32)
        return self.trained.reconstruct(x, self._y(x.shape[0], y))

    def sample(self, num: int, temperature: float = 1.0, seed: int = 0, y: np.ndarray | None = None,
               sampler: Any = None) -> np.ndarray:
        """`num` decoder means of z ~ p(z), z scaled by `temperature`: [num, H, W, C].
        Conditional models cycle through the classes unless `y` is given.
        sampler: draw z from a fitted sampler instead: its name in the run's samplers/ (an explorer
        made with `from_run`; see `vae fit-sampler`) or a `vae.samplers.FittedSampler`."""
        if num < 1:
            raise ValueError(f"num={num} must be >= 1")
        latents = self._latent_source(sampler)
        if self.num_classes and y is None:
            y = np.arange(num) % self.num_classes
        y = self._y(num, y)
        key = jax.random.PRNGKey(seed)
        outs = []
        for i, start in enumerate(range(0, num, self.batch_size)):
            m = min(self.batch_size, num - start)
            yb = None if y is None else y[start:start + m]
            if latents is None:
                outs.append(self.trained.generate_batch(jax.random.fold_in(key, i), m, float(temperature), yb))
            else:
                outs.append(from_latents(self.trained, latents, jax.random.fold_in(key, i), m, float(temperature), yb))
        return np.concatenate(outs)

    def _latent_source(self, sampler: Any):
        """The latents function of `sampler` (None: the model's prior)."""
        if sampler is None or isinstance(sampler, str) and sampler == "normal":
            return None
        if isinstance(sampler, FittedSampler):
            return None if sampler.uses_model else sampler.latents
        if not isinstance(sampler, str):
            raise TypeError(f"sampler must be a name or a vae.samplers.FittedSampler, got {type(sampler).__name__}")
        if self._run is None:
            raise ValueError(f"sampler={sampler!r} names a sampler saved in a run directory, but this explorer was "
                             f"not made from a run: use Explorer.from_run(RUN_DIR), or pass a FittedSampler")
        return latent_source(self._run, sampler)[0]

    # ------------------------------------------------------------------ the held data

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means and variances of the held data: [N, d] each (computed once)."""
        self._require_data("posterior()")
        if self._posterior is None:
            self._posterior = self.encode(self.images, self.labels)
        return self._posterior

    def latent_diagnostics(self) -> dict:
        """`vae.trained.latent_diagnostics` of the held data's posterior (at most 5,000 evenly
        spaced rows for the mutual information; per-dim KL against N(0, 1))."""
        if self._diagnostics is None:
            mean, var = self.posterior()
            idx = np.linspace(0, mean.shape[0] - 1, min(mean.shape[0], _RANK_MAX_POINTS)).astype(int)
            log_var = np.full_like(var[idx], -np.inf) if not var.any() else np.log(np.maximum(var[idx], 1e-30))
            self._diagnostics = latent_diagnostics(mean[idx], log_var)
        return self._diagnostics

    def rank_dims_by_kl(self) -> tuple[np.ndarray, np.ndarray]:
        """(dims [d] ordered by decreasing mean KL(q(z_i|x) || N(0, 1)) on the held data, their KL
        [d] in nats). Collapsed dimensions come last with KL ~ 0. A point-mass posterior (VQ-VAE)
        has no KL: its dims are ranked by the variance of their codes instead."""
        diagnostics = self.latent_diagnostics()
        kl = np.asarray(diagnostics["kl_per_dim"] if not diagnostics.get("point_mass")
                        else diagnostics["activity_per_dim"])
        order = np.argsort(-kl, kind="stable")
        return order, kl[order]

    def factor_dims(self, num_bins: int = 20) -> dict:
        """Which latent dimension carries each ground-truth factor of the held data (sprites).

        The posterior means [N, d] are binned per dim (`num_bins` equal-width bins, as MIG
        does) and the plug-in mutual information with each factor is divided by that factor's
        entropy. Returns {'dims': [F] the most informative dim per factor, 'normalized_mi':
        [d, F] in [0, 1], 'factor_names': [F]}. Raises ValueError without factors."""
        if self.factors is None:
            raise ValueError("factor_dims() needs data with ground-truth factors (e.g. the sprites dataset)")
        factors = np.asarray(self.factors)
        mi = discrete_mutual_info(histogram_discretize(self.posterior()[0], num_bins), factors)
        entropy = discrete_entropy(factors)
        normalized = np.where(entropy[None, :] > 0, mi / np.maximum(entropy[None, :], 1e-12), 0.0)
        names = list(getattr(self.info, "factor_names", None) or [f"factor {j}" for j in range(factors.shape[1])])
        return {"dims": np.argmax(normalized, axis=0), "normalized_mi": normalized, "factor_names": names}

    def aggregate_posterior_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation per dim of the aggregate posterior q(z) = mean_x q(z|x)
        on the held data: mean = E[mu], var = Var[mu] + E[sigma^2]."""
        mean, var = self.posterior()
        return mean.mean(0), np.sqrt(mean.var(0) + var.mean(0))

    def prior_stats(self, num: int = 8192, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation per dim of the prior: exactly 0 and 1 for a standard
        normal prior, else estimated from `num` prior samples (0 and 1 when the model has no
        prior to sample, e.g. the VQ-VAE)."""
        prior = getattr(self.model, "prior", None)
        zeros, ones = np.zeros(self.latent_dim), np.ones(self.latent_dim)
        if prior is None or isinstance(prior, StandardNormalPrior):
            return zeros, ones
        z = np.asarray(self.trained.sample_prior(jax.random.PRNGKey(seed), num), np.float64)
        return z.mean(0), z.std(0)

    def embedding(self, method: str = "auto", num: int = 2000, seed: int = 0) -> Embedding:
        """Encodes up to `num` held examples (a random subset, fixed by `seed`) and projects
        their posterior means to 2-D: 'latent' (the code itself; d <= 2), 'pca' (sklearn PCA),
        'tsne' (sklearn t-SNE, PCA-initialised; much slower than PCA) or 'auto' ('latent' when
        d <= 2, else 'pca')."""
        if method not in EMBEDDING_METHODS:
            raise ValueError(f"method={method!r} is not allowed; choose one of {', '.join(EMBEDDING_METHODS)}")
        self._require_data("embedding()")
        n = self.images.shape[0]
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(n, size=min(num, n), replace=False))
        mean = self.posterior()[0][idx].astype(np.float64)
        d = self.latent_dim
        if method == "auto":
            method = "latent" if d <= 2 else "pca"
        if method == "latent":
            if d > 2:
                raise ValueError(f"method='latent' needs a latent of at most 2 dims, this one has {d}; use 'pca' or 'tsne'")
            coords = mean if d == 2 else np.concatenate([mean, np.zeros_like(mean)], axis=1)
            axis_labels = ("z0", "z1" if d == 2 else "")
        elif d < 2:
            raise ValueError(f"method={method!r} needs at least 2 latent dims; use 'latent'")
        elif method == "pca":
            from sklearn.decomposition import PCA

            pca = PCA(n_components=2, random_state=seed)
            coords = pca.fit_transform(mean)
            ev = pca.explained_variance_ratio_
            axis_labels = (f"PC 1 ({100 * ev[0]:.0f}% of variance)", f"PC 2 ({100 * ev[1]:.0f}% of variance)")
        else:
            from sklearn.manifold import TSNE

            if idx.size < 5:
                raise ValueError(f"t-SNE needs at least 5 points, got {idx.size}")
            perplexity = float(min(30.0, (idx.size - 1) / 3.0))
            # exact gradients for small sets (Barnes-Hut's overhead dominates there)
            coords = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed,
                          method="exact" if idx.size <= 300 else "barnes_hut").fit_transform(mean)
            axis_labels = ("t-SNE 1", "t-SNE 2")
        return Embedding(coords=np.asarray(coords, np.float32), indices=idx,
                         labels=None if self.labels is None else self.labels[idx],
                         factors=None if self.factors is None else self.factors[idx],
                         method=method, axis_labels=axis_labels)

    # ------------------------------------------------------------------ memorization

    def nearest_neighbours(self, samples: np.ndarray, train_images: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """See the module-level `nearest_neighbours`: (indices [S, k], L2 distances [S, k])."""
        return nearest_neighbours(samples, train_images, k, batch_size=self.batch_size)

    # ------------------------------------------------------------------ labels for figures

    def label_names(self) -> list[str] | None:
        """Names of the label classes for legends (sprites' shapes, your folders' names, else the
        class numbers)."""
        if self.labels is None:
            return None
        if getattr(self.info, "name", None) == "sprites":
            return list(SHAPE_NAMES)
        if getattr(self.info, "class_names", ()):
            return list(self.info.class_names)
        num = getattr(self.info, "num_classes", None) or int(self.labels.max()) + 1
        return [str(i) for i in range(num)]
