"""The latent-space explorer: encode, decode, sample, interpolate, traverse, do latent
arithmetic, decode a 2-D manifold, embed a split in 2-D and look for memorized samples.

    ex = Explorer.from_run("runs/quickstart")            # best checkpoint, test split as evaluated
    t = ex.traverse(ex.images[0])                        # top-KL dims of the first test image
    fig = traversal_grid(t.images, t.row_labels(), t.column_labels)

`Explorer(model, params, data=...)` wraps any trained model with `encode(x, y) -> q(z|x)` and
`decode(z, y) -> likelihood parameters` methods and a `likelihood.mean` (the VAE, the ladder VAE
on its top level, the VQ-VAE on its unquantized z_e, the conditional VAE given labels).

Every model computation is jitted once per function (closures over the model, so the model
need not be hashable) and runs in batches of at most `batch_size` rows, padded to a power of
two, so any number of inputs costs a handful of compilations at most.

`write_run_figures(explorer, out_dir)` and `make_figure(explorer, kind)` are what the training
loop and the command line call.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vae import plots
from vae.data.pipeline import pad_rows

FIGURE_KINDS = ("samples", "reconstructions", "interpolation", "traversals", "manifold", "embedding", "curves")
EMBEDDING_METHODS = ("auto", "latent", "pca", "tsne")
RANGE_MODES = ("std", "values", "quantile")
INTERPOLATION_METHODS = ("linear", "slerp")
_MIN_BUCKET = 8
_RANK_MAX_POINTS = 5000  # latent_diagnostics' mutual information is O(N^2 d): rank on at most this many


# ----------------------------------------------------------------------------- pure helpers


def slerp(a: np.ndarray, b: np.ndarray, t) -> np.ndarray:
    """Spherical linear interpolation between vectors a and b [d] at t (scalar or [T]).

    Returns [d] for scalar t, else [T, d]. Follows the great circle between the directions of a
    and b (norms are blended by the same weights, so unit vectors stay on the unit sphere);
    t = 0 and t = 1 give a and b exactly. Falls back to linear interpolation when a and b are
    nearly parallel (angle below 1e-4 rad), or either is zero, where slerp is ill-conditioned.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"slerp takes two vectors of the same length; got shapes {a.shape} and {b.shape}")
    t_arr = np.asarray(t, np.float64)
    tt = t_arr.reshape(-1, 1)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    omega = 0.0
    if na > 0 and nb > 0:
        omega = float(np.arccos(np.clip(np.dot(a / na, b / nb), -1.0, 1.0)))
    if omega < 1e-4 or math.sin(omega) < 1e-6:
        out = (1.0 - tt) * a + tt * b
    else:
        s = math.sin(omega)
        out = np.sin((1.0 - tt) * omega) / s * a + np.sin(tt * omega) / s * b
        # make the endpoints exact whatever the rounding of sin
        out = np.where(tt == 0.0, a, np.where(tt == 1.0, b, out))
    return out[0] if t_arr.ndim == 0 else out


def lerp(a: np.ndarray, b: np.ndarray, t) -> np.ndarray:
    """Linear interpolation (1 - t) a + t b; [d] for scalar t, else [T, d]."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    t_arr = np.asarray(t, np.float64)
    out = (1.0 - t_arr.reshape(-1, 1)) * a + t_arr.reshape(-1, 1) * b
    return out[0] if t_arr.ndim == 0 else out


def gaussian_grid(num: int, low: float = 0.05, high: float = 0.95) -> np.ndarray:
    """The standard normal's inverse CDF at `num` evenly spaced probabilities in [low, high]
    (Kingma & Welling 2014, fig. 4): [num] float64."""
    if not 0.0 < low < high < 1.0:
        raise ValueError(f"probabilities must satisfy 0 < low < high < 1, got {low}, {high}")
    nd = statistics.NormalDist()
    return np.array([nd.inv_cdf(p) for p in np.linspace(low, high, num)], np.float64)


def _bucket(m: int, batch_size: int) -> int:
    return min(batch_size, max(_MIN_BUCKET, 1 << max(0, m - 1).bit_length()))


@jax.jit
def _nn_chunk(samples, sample_sq, train, train_sq, valid, best_d2, best_idx, offset):
    """Merges one chunk of training images into the running k best (exact squared L2)."""
    k = best_d2.shape[1]
    approx = sample_sq[:, None] - 2.0 * samples @ train.T + train_sq[None, :]      # [S, T]
    approx = jnp.where(valid[None, :], approx, jnp.inf)
    kk = min(k, train.shape[0])
    _, cand = jax.lax.top_k(-approx, kk)                                            # [S, kk]
    diff = samples[:, None, :] - train[cand]                                        # [S, kk, P]
    exact = jnp.sum(diff * diff, axis=-1)
    exact = jnp.where(valid[cand], exact, jnp.inf)
    all_d2 = jnp.concatenate([best_d2, exact], axis=1)
    all_idx = jnp.concatenate([best_idx, cand + offset], axis=1)
    neg, pos = jax.lax.top_k(-all_d2, k)
    return -neg, jnp.take_along_axis(all_idx, pos, axis=1)


def nearest_neighbours(samples: np.ndarray, train_images: np.ndarray, k: int = 1, *,
                       batch_size: int = 256, chunk_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest training images of each sample by L2 distance in pixel space: a
    memorization check for generated samples.

    samples: [S, H, W, C]; train_images: [T, H, W, C]. Returns (indices [S, k] int, distances
    [S, k] float, ascending). Candidates come from the ||a||^2 - 2ab + ||b||^2 expansion, and
    their distances are recomputed exactly, so an image's distance to itself is exactly 0.
    Runs in jitted blocks of `batch_size` samples x `chunk_size` training images.
    """
    samples = np.asarray(samples, np.float32)
    train_images = np.asarray(train_images, np.float32)
    if samples.shape[1:] != train_images.shape[1:]:
        raise ValueError(f"samples {samples.shape[1:]} and training images {train_images.shape[1:]} differ in shape")
    num_train = train_images.shape[0]
    if not 1 <= k <= num_train:
        raise ValueError(f"k={k} must be in 1..{num_train} (the number of training images)")
    s_flat = samples.reshape(samples.shape[0], -1)
    t_flat = train_images.reshape(num_train, -1)
    chunk = min(chunk_size, _bucket(num_train, chunk_size))
    chunks = []
    for start in range(0, num_train, chunk):
        block = t_flat[start:start + chunk]
        valid = np.arange(chunk) < block.shape[0]
        block = jnp.asarray(pad_rows(block, chunk))
        chunks.append((block, jnp.sum(block * block, axis=1), jnp.asarray(valid), start))
    indices, distances = [], []
    for s0 in range(0, s_flat.shape[0], batch_size):
        sb = s_flat[s0:s0 + batch_size]
        m = sb.shape[0]
        sb = jnp.asarray(pad_rows(sb, _bucket(m, batch_size)))
        s_sq = jnp.sum(sb * sb, axis=1)
        best_d2 = jnp.full((sb.shape[0], k), jnp.inf, jnp.float32)
        best_idx = jnp.zeros((sb.shape[0], k), jnp.int32)
        for block, block_sq, valid, start in chunks:
            best_d2, best_idx = _nn_chunk(sb, s_sq, block, block_sq, valid, best_d2, best_idx, jnp.int32(start))
        indices.append(np.asarray(best_idx)[:m])
        distances.append(np.sqrt(np.maximum(np.asarray(best_d2)[:m], 0.0)))
    if not indices:
        return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
    return np.concatenate(indices).astype(np.int64), np.concatenate(distances)


# ----------------------------------------------------------------------------- results


@dataclasses.dataclass
class Traversal:
    """A latent traversal. codes [len(dims), num, d], images [len(dims), num, H, W, C];
    dims [len(dims)] the varied dimensions; values [len(dims), num] the values each took;
    kl [len(dims)] their mean KL (nats) on the explorer's data, or None without data;
    base [d] the fixed code; column_labels: one label per column for figures."""

    codes: np.ndarray
    images: np.ndarray
    dims: np.ndarray
    values: np.ndarray
    kl: np.ndarray | None
    base: np.ndarray
    range_mode: str
    column_labels: list[str]

    def row_labels(self) -> list[str]:
        """'z3 (KL 2.41)' per row ('z3' without data)."""
        if self.kl is None:
            return [f"z{int(d)}" for d in self.dims]
        return [f"z{int(d)} (KL {float(k):.2f})" for d, k in zip(self.dims, self.kl)]


@dataclasses.dataclass
class Manifold:
    """A decoded 2-D grid. images [gy, gx, H, W, C]: images[i, j] has z[dims[0]] = values_x[j]
    and z[dims[1]] = values_y[i] (both ascending); codes [gy, gx, d]."""

    images: np.ndarray
    codes: np.ndarray
    values_x: np.ndarray
    values_y: np.ndarray
    dims: tuple[int, int]


@dataclasses.dataclass
class Embedding:
    """A 2-D view of encoded data. coords [N, 2]; indices [N] rows of the explorer's data;
    labels [N] / factors [N, F] for colouring (None when the data has none); method used;
    axis_labels for the plot."""

    coords: np.ndarray
    indices: np.ndarray
    labels: np.ndarray | None
    factors: np.ndarray | None
    method: str
    axis_labels: tuple[str, str]


# ----------------------------------------------------------------------------- the explorer


class Explorer:
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

        cls = type(model)
        variables = lambda p: {"params": p}  # noqa: E731

        def encode(p, x, y):
            q = model.apply(variables(p), x, y, method=cls.encode)
            return q.mean, q.log_var

        def decode(p, z, y):
            return model.apply(variables(p), z, y, method=lambda m, z, y: m.likelihood.mean(m.decode(z, y)))

        def reconstruct(p, x, y):
            return model.apply(variables(p), x, y, method=cls.reconstruct)

        def generate(p, key, temperature, y, num):
            return model.apply(variables(p), num, temperature, y, rngs={"sample": key}, method=cls.generate)

        def prior_sample(p, key, num):
            return model.apply(variables(p), key, num, method=lambda m, k, n: m.prior_sample(k, n))

        self._encode_fn = jax.jit(encode)
        self._decode_fn = jax.jit(decode)
        self._reconstruct_fn = jax.jit(reconstruct)
        self._generate_fn = jax.jit(generate, static_argnums=(4,))
        self._prior_sample_fn = jax.jit(prior_sample, static_argnums=(2,))

    # ------------------------------------------------------------------ construction from a run

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike, step: int | None = None, **kwargs) -> "Explorer":
        """An explorer of RUN_DIR's model at checkpoint `step` (default: the best, else the
        latest) holding its test split prepared as training evaluated it (binarized with
        EVAL_SEED), with labels and factors. Raises FileNotFoundError naming the path and what
        is missing (the directory, config.json, any checkpoint, or the asked-for step)."""
        import vae.run as vrun

        run_dir = os.fspath(run_dir)
        if not os.path.isdir(run_dir):
            raise FileNotFoundError(f"run directory {run_dir} does not exist")
        config_path = os.path.join(run_dir, "config.json")
        if not os.path.isfile(config_path):
            raise FileNotFoundError(f"{run_dir} holds no run: {config_path} is missing")
        ckpt_dir = os.path.join(run_dir, "checkpoints")
        steps = sorted(int(n) for n in os.listdir(ckpt_dir) if n.isdigit()) if os.path.isdir(ckpt_dir) else []
        if not steps:
            raise FileNotFoundError(f"{run_dir} holds no checkpoint (nothing in {ckpt_dir})")
        if step is not None and int(step) not in steps:
            raise FileNotFoundError(f"{run_dir} has no checkpoint at step {step} in {ckpt_dir}; "
                                    f"steps there: {', '.join(map(str, steps))}")
        run = vrun.load_run(run_dir, step=step)
        data = dataclasses.replace(run.test, images=np.asarray(run.test_images, np.float32))
        explorer = cls(run.model, run.params, data=data, **kwargs)
        explorer.run_dir, explorer.config, explorer.step = run_dir, run.config, run.step
        return explorer

    # ------------------------------------------------------------------ batching

    def _y(self, n: int, y) -> np.ndarray | None:
        """Labels for n rows of a conditional model (None for unconditional ones)."""
        if not self.num_classes:
            return None
        if y is None:
            return np.full((n,), self.default_class, np.int32)
        y = np.asarray(y, np.int32)
        return np.broadcast_to(y, (n,)).copy() if y.ndim == 0 or y.shape[0] != n else y

    def _map(self, fn, x: np.ndarray, y: np.ndarray | None):
        n = x.shape[0]
        if n == 0:
            raise ValueError("nothing to compute: got 0 rows")
        outs = []
        for start in range(0, n, self.batch_size):
            xb = x[start:start + self.batch_size]
            m = xb.shape[0]
            size = _bucket(m, self.batch_size)
            yb = None if y is None else jnp.asarray(pad_rows(y[start:start + m], size))
            out = fn(self.params, jnp.asarray(pad_rows(xb, size)), yb)
            outs.append(jax.tree_util.tree_map(lambda o: np.asarray(o)[:m], out))
        return jax.tree_util.tree_map(lambda *o: np.concatenate(o), *outs)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of decoded images (from the data, or the decoder's output shape)."""
        if self._image_shape is None:
            z = jnp.zeros((1, self.latent_dim), jnp.float32)
            y = None if not self.num_classes else jnp.zeros((1,), jnp.int32)
            self._image_shape = tuple(jax.eval_shape(self._decode_fn, self.params, z, y).shape[1:])
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
        mean, log_var = self._map(self._encode_fn, x, self._y(x.shape[0], y))
        return mean, np.exp(log_var)

    def decode(self, z: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """z [N, d] (or [..., d]) -> the likelihood's mean images [N, H, W, C] (or [..., H, W, C])."""
        z = np.asarray(z, np.float32)
        if z.shape[-1] != self.latent_dim:
            raise ValueError(f"codes must have {self.latent_dim} entries in their last axis, got shape {z.shape}")
        lead = z.shape[:-1]
        flat = z.reshape(-1, self.latent_dim)
        out = self._map(self._decode_fn, flat, self._y(flat.shape[0], y))
        return out.reshape(*lead, *out.shape[1:])

    def reconstruct(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """x [N, H, W, C] -> the model's reconstructions (decoded posterior means) [N, H, W, C]."""
        x = np.asarray(x, np.float32)
        return self._map(self._reconstruct_fn, x, self._y(x.shape[0], y))

    def sample(self, num: int, temperature: float = 1.0, seed: int = 0, y: np.ndarray | None = None) -> np.ndarray:
        """`num` decoder means of z ~ p(z), z scaled by `temperature`: [num, H, W, C].
        Conditional models cycle through the classes unless `y` is given."""
        if num < 1:
            raise ValueError(f"num={num} must be >= 1")
        if self.num_classes and y is None:
            y = np.arange(num) % self.num_classes
        y = self._y(num, y)
        key = jax.random.PRNGKey(seed)
        outs = []
        for i, start in enumerate(range(0, num, self.batch_size)):
            m = min(self.batch_size, num - start)
            yb = None if y is None else jnp.asarray(y[start:start + m])
            outs.append(np.asarray(self._generate_fn(self.params, jax.random.fold_in(key, i), float(temperature), yb, m)))
        return np.concatenate(outs)

    # ------------------------------------------------------------------ the held data

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means and variances of the held data: [N, d] each (computed once)."""
        self._require_data("posterior()")
        if self._posterior is None:
            self._posterior = self.encode(self.images, self.labels)
        return self._posterior

    def latent_diagnostics(self) -> dict:
        """`vae.evaluate.latent_diagnostics` of the held data's posterior (at most 5,000 evenly
        spaced rows for the mutual information; per-dim KL against N(0, 1))."""
        if self._diagnostics is None:
            from vae.evaluate import latent_diagnostics

            mean, var = self.posterior()
            idx = np.linspace(0, mean.shape[0] - 1, min(mean.shape[0], _RANK_MAX_POINTS)).astype(int)
            self._diagnostics = latent_diagnostics(mean[idx], np.log(np.maximum(var[idx], 1e-30)))
        return self._diagnostics

    def rank_dims_by_kl(self) -> tuple[np.ndarray, np.ndarray]:
        """(dims [d] ordered by decreasing mean KL(q(z_i|x) || N(0, 1)) on the held data, their KL
        [d] in nats). Collapsed dimensions come last with KL ~ 0."""
        kl = np.asarray(self.latent_diagnostics()["kl_per_dim"])
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
        from vae.metrics.disentanglement import discrete_entropy, discrete_mutual_info, histogram_discretize

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
        if prior is None or type(prior).__name__ == "StandardNormalPrior" or not hasattr(self.model, "prior_sample"):
            return zeros, ones
        z = np.asarray(self._prior_sample_fn(self.params, jax.random.PRNGKey(seed), num), np.float64)
        return z.mean(0), z.std(0)

    # ------------------------------------------------------------------ interpolation

    def interpolate(self, a, b, steps: int = 8, method: str = "linear", y=None) -> tuple[np.ndarray, np.ndarray]:
        """Decodes the path from a to b. a, b: images [H, W, C] (encoded to posterior means) or
        codes [d]; or batches [P, H, W, C] / [P, d] of pairs. method: 'linear' or 'slerp'.

        Returns (codes [steps, d], images [steps, H, W, C]), with a leading [P] axis for
        batches; the first and last codes are a's and b's, so the end images are their
        reconstructions."""
        if method not in INTERPOLATION_METHODS:
            raise ValueError(f"method={method!r} is not allowed; choose one of {', '.join(INTERPOLATION_METHODS)}")
        if steps < 2:
            raise ValueError(f"steps={steps} must be >= 2")
        ca, single_a = self._as_codes(a, y)
        cb, single_b = self._as_codes(b, y)
        if ca.shape != cb.shape:
            raise ValueError(f"a and b give codes of different shapes {ca.shape} and {cb.shape}")
        t = np.linspace(0.0, 1.0, steps)
        fn = slerp if method == "slerp" else lerp
        codes = np.stack([fn(u, v, t) for u, v in zip(ca, cb)]).astype(np.float32)     # [P, steps, d]
        ys = None if y is None or not self.num_classes else np.repeat(self._y(len(ca), y), steps)
        images = self.decode(codes.reshape(-1, self.latent_dim), ys).reshape(*codes.shape[:2], *self.image_shape)
        if single_a and single_b:
            return codes[0], images[0]
        return codes, images

    # ------------------------------------------------------------------ traversals

    def traverse(self, base=None, dims: Sequence[int] | None = None, values=None, num: int = 9,
                 range_mode: str | None = None, span: float = 3.0, *, num_dims: int = 10,
                 quantiles: tuple[float, float] = (0.025, 0.975), relative: bool = False, y=None) -> Traversal:
        """Varies each dim of `dims` on its own around a base code, the others held at the base.

        base: an image [H, W, C] (its posterior mean), a code [d], an int (that row of the
          data) or None (the zero code, the prior mean).
        dims: which dimensions (default: the `num_dims` of highest KL on the data, see
          rank_dims_by_kl; without data the first `num_dims`).
        range_mode (default 'values' when `values` is given, else 'std'):
          'std': `num` values evenly spaced over mean ± span·std of the *aggregate posterior*
            of that dim on the data when the explorer has data, of the *prior* otherwise;
          'quantile': the aggregate posterior means' quantiles of that dim on the data, evenly
            spaced in probability over `quantiles` (2.5 % .. 97.5 % by default);
          'values': `values` as given: [num] shared by every dim, or [len(dims), num].
        relative: add the values to the base's own coordinate instead of setting it to them
          (for 'std' the range is then base ± span·std).
        """
        mode = range_mode or ("values" if values is not None else "std")
        if mode not in RANGE_MODES:
            raise ValueError(f"range_mode={mode!r} is not allowed; choose one of {', '.join(RANGE_MODES)}")
        if values is not None and mode != "values":
            raise ValueError(f"values were given but range_mode={mode!r}; use range_mode='values'")
        d = self.latent_dim
        y = self._label_of_base(base, y)
        kl_all = None
        if self.images is not None:
            kl_all = np.asarray(self.latent_diagnostics()["kl_per_dim"])
        if dims is None:
            dims = self.rank_dims_by_kl()[0][:num_dims] if kl_all is not None else np.arange(min(d, num_dims))
        dims = np.atleast_1d(np.asarray(dims, np.int64))
        if dims.ndim != 1 or dims.size == 0 or dims.min() < 0 or dims.max() >= d:
            raise ValueError(f"dims must be indices in 0..{d - 1}, got {dims.tolist()}")
        base_code = self._base_code(base, y).astype(np.float64)
        column_labels: list[str]
        if mode == "values":
            if values is None:
                raise ValueError("range_mode='values' needs values=[...]")
            vals = np.asarray(values, np.float64)
            if vals.ndim == 1:
                column_labels = [f"{v:.2g}" for v in vals]
                vals = np.broadcast_to(vals, (dims.size, vals.size)).copy()
            elif vals.ndim == 2 and vals.shape[0] == dims.size:
                column_labels = [str(j) for j in range(vals.shape[1])]
            else:
                raise ValueError(f"values must be [num] or [len(dims)={dims.size}, num], got shape {vals.shape}")
            if relative:
                vals = vals + base_code[dims, None]
        elif mode == "std":
            if num < 2:
                raise ValueError(f"num={num} must be >= 2")
            centre, std = self.aggregate_posterior_stats() if self.images is not None else self.prior_stats()
            offsets = np.linspace(-span, span, num)
            centre = base_code[dims] if relative else np.asarray(centre)[dims]
            vals = centre[:, None] + offsets[None, :] * np.asarray(std)[dims, None]
            centre_name = "base" if relative else "μ"
            column_labels = [f"{o:+.3g}σ" if abs(o) > 1e-12 else centre_name for o in offsets]
        else:  # quantile
            self._require_data("range_mode='quantile'")
            if num < 2:
                raise ValueError(f"num={num} must be >= 2")
            lo, hi = quantiles
            if not 0.0 <= lo < hi <= 1.0:
                raise ValueError(f"quantiles must satisfy 0 <= low < high <= 1, got {quantiles}")
            probs = np.linspace(lo, hi, num)
            means = self.posterior()[0]
            vals = np.stack([np.quantile(means[:, k], probs) for k in dims])
            if relative:
                vals = vals - np.median(means[:, dims], axis=0)[:, None] + base_code[dims, None]
            column_labels = [f"{100 * p:.3g}%" for p in probs]
        codes = np.broadcast_to(base_code, (dims.size, vals.shape[1], d)).copy()
        for r, k in enumerate(dims):
            codes[r, :, k] = vals[r]
        codes = codes.astype(np.float32)
        images = self.decode(codes.reshape(-1, d), y).reshape(*codes.shape[:2], *self.image_shape)
        return Traversal(codes=codes, images=images, dims=dims, values=vals,
                         kl=None if kl_all is None else kl_all[dims], base=base_code.astype(np.float32),
                         range_mode=mode, column_labels=column_labels)

    # ------------------------------------------------------------------ latent arithmetic

    def attribute_vector(self, x_a, x_b, y_a=None, y_b=None) -> np.ndarray:
        """Mean posterior code of group b minus that of group a: [d]. x_a, x_b: images
        [N, H, W, C] (or codes [N, d])."""
        ca, _ = self._as_codes(x_a, y_a)
        cb, _ = self._as_codes(x_b, y_b)
        return (cb.astype(np.float64).mean(0) - ca.astype(np.float64).mean(0)).astype(np.float32)

    def _group(self, value, factor) -> np.ndarray:
        self._require_data("attribute_vector_from_labels")
        if factor is None:
            if self.labels is None:
                raise ValueError("the explorer's data has no labels; pass factor=... or use attribute_vector")
            column, what = self.labels, "label"
        else:
            if self.factors is None:
                raise ValueError("the explorer's data has no ground-truth factors")
            names = tuple(getattr(self.info, "factor_names", ()) or ())
            if isinstance(factor, str):
                if factor not in names:
                    raise ValueError(f"unknown factor {factor!r}; factors are {', '.join(names) or 'unnamed'}")
                factor = names.index(factor)
            if not 0 <= int(factor) < self.factors.shape[1]:
                raise ValueError(f"factor={factor} must be in 0..{self.factors.shape[1] - 1}")
            column = self.factors[:, int(factor)]
            what = f"factor {names[int(factor)] if names else int(factor)!r}"
        mask = column == value
        if not mask.any():
            raise ValueError(f"no example has {what} == {value!r}; values present: {sorted(set(column.tolist()))[:20]}")
        return mask

    def attribute_vector_from_labels(self, label_a, label_b, factor: int | str | None = None) -> np.ndarray:
        """attribute_vector between the held examples with label `label_a` and those with
        `label_b` (or, with `factor`, ground-truth factor value indices of that factor, e.g.
        factor='shape' or factor=0 on sprites): [d]."""
        mean = self.posterior()[0].astype(np.float64)
        ma, mb = self._group(label_a, factor), self._group(label_b, factor)
        return (mean[mb].mean(0) - mean[ma].mean(0)).astype(np.float32)

    def apply_attribute(self, x_or_code, vector: np.ndarray, scales: Sequence[float] = (0.0, 0.5, 1.0, 1.5, 2.0),
                        y=None) -> tuple[np.ndarray, np.ndarray]:
        """Latent arithmetic: decode code + s·vector for each s in `scales`.

        x_or_code: an image [H, W, C] or code [d] (or batches [N, ...]). Returns (codes [S, d],
        images [S, H, W, C]), with a leading [N] axis for batches."""
        codes, single = self._as_codes(x_or_code, y)
        vector = np.asarray(vector, np.float32)
        if vector.shape != (self.latent_dim,):
            raise ValueError(f"vector must have shape ({self.latent_dim},), got {vector.shape}")
        s = np.asarray(scales, np.float32).reshape(-1)
        out = codes[:, None, :] + s[None, :, None] * vector[None, None, :]                # [N, S, d]
        ys = None if y is None or not self.num_classes else np.repeat(self._y(len(codes), y), s.size)
        images = self.decode(out.reshape(-1, self.latent_dim), ys).reshape(*out.shape[:2], *self.image_shape)
        return (out[0], images[0]) if single else (out, images)

    # ------------------------------------------------------------------ manifold

    def manifold(self, dims: Sequence[int] = (0, 1), grid: int = 15, base=None,
                 probs: tuple[float, float] = (0.05, 0.95), y=None) -> Manifold:
        """Decodes a grid over two dims at the standard normal's inverse CDF of `grid` evenly
        spaced probabilities in `probs` (Kingma & Welling 2014, fig. 4); the other dims stay at
        the base code (default 0). Returns a Manifold with images [grid, grid, H, W, C]."""
        dims = tuple(int(k) for k in dims)
        if len(dims) != 2 or dims[0] == dims[1] or min(dims) < 0 or max(dims) >= self.latent_dim:
            raise ValueError(f"dims must be two different indices in 0..{self.latent_dim - 1}, got {dims}")
        if grid < 2:
            raise ValueError(f"grid={grid} must be >= 2")
        values = gaussian_grid(grid, *probs)
        y = self._label_of_base(base, y)
        base_code = self._base_code(base, y)
        codes = np.broadcast_to(base_code, (grid, grid, self.latent_dim)).copy()
        codes[:, :, dims[0]] = values[None, :]
        codes[:, :, dims[1]] = values[:, None]
        codes = codes.astype(np.float32)
        images = self.decode(codes.reshape(-1, self.latent_dim), y).reshape(grid, grid, *self.image_shape)
        return Manifold(images=images, codes=codes, values_x=values.copy(), values_y=values.copy(), dims=dims)

    # ------------------------------------------------------------------ embedding

    def embedding(self, method: str = "auto", num: int = 2000, seed: int = 0) -> Embedding:
        """Encodes up to `num` held examples (a random subset, fixed by `seed`) and projects
        their posterior means to 2-D: 'latent' (the code itself; d <= 2), 'pca' (sklearn PCA),
        'tsne' (sklearn t-SNE, PCA-initialised; tens of seconds for 2,000 points on a
        few CPU cores) or 'auto' ('latent' when d <= 2, else 'pca')."""
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
        """Names of the label classes for legends (sprites' shapes, else the class numbers)."""
        if self.labels is None:
            return None
        if getattr(self.info, "name", None) == "sprites":
            from vae.data.sprites import SHAPE_NAMES

            return list(SHAPE_NAMES)
        num = getattr(self.info, "num_classes", None) or int(self.labels.max()) + 1
        return [str(i) for i in range(num)]


# ----------------------------------------------------------------------------- figures


def _pick_pairs(explorer: Explorer, num_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """num_pairs pairs of distinct held images, fixed by seed (different labels where possible)."""
    n = explorer.images.shape[0]
    rng = np.random.default_rng(seed)
    first = rng.choice(n, size=min(num_pairs, n), replace=False)
    second = []
    for i in first:
        pool = np.arange(n)
        if explorer.labels is not None and (explorer.labels != explorer.labels[i]).any():
            pool = pool[explorer.labels != explorer.labels[i]]
        pool = pool[pool != i] if pool.size > 1 else pool
        second.append(int(rng.choice(pool)))
    return first, np.asarray(second)


def _interpolation_figure(explorer: Explorer, steps: int, seed: int, num_pairs: int = 4, method: str = "linear"):
    if explorer.images is not None:
        ia, ib = _pick_pairs(explorer, num_pairs, seed)
        xa, xb = explorer.images[ia], explorer.images[ib]
        ya = None if explorer.labels is None else explorer.labels[ia]
        yb = None if explorer.labels is None else explorer.labels[ib]
        codes_a = explorer.encode(xa, ya)[0]
        codes_b = explorer.encode(xb, yb)[0]
        _, images = explorer.interpolate(codes_a, codes_b, steps=steps, method=method,
                                         y=ya if explorer.num_classes else None)
        originals = (xa, xb)
        title = f"{method.capitalize()} interpolation between posterior means of test images"
    else:
        rng = np.random.default_rng(seed)
        za = rng.standard_normal((num_pairs, explorer.latent_dim)).astype(np.float32)
        zb = rng.standard_normal((num_pairs, explorer.latent_dim)).astype(np.float32)
        _, images = explorer.interpolate(za, zb, steps=steps, method=method)
        originals = None
        title = f"{method.capitalize()} interpolation between prior samples"
    return plots.interpolation_strip(images, title=title, originals=originals, ts=np.linspace(0, 1, steps))


def _traversal_figure(explorer: Explorer, dims, steps: int, seed: int, max_dims: int = 10):
    base, what = None, "the zero code"
    if explorer.images is not None:
        base = int(np.random.default_rng(seed).integers(explorer.images.shape[0]))
        what = f"test image {base}"
    t = explorer.traverse(base, dims=dims, num=steps, num_dims=max_dims)
    spread = ("aggregate posterior" if explorer.images is not None else "prior")
    title = f"Latent traversals around {what}"
    if dims is None and t.kl is not None:
        title += " (dims with the most KL)"
    return plots.traversal_grid(t.images, t.row_labels(), t.column_labels, title=title,
                                xlabel=f"value of the traversed dimension (mean ± 3 std of the {spread})")


def _default_manifold_dims(explorer: Explorer, dims) -> tuple[int, int]:
    if dims is not None:
        dims = tuple(int(k) for k in dims)
        if len(dims) < 2:
            raise ValueError(f"the manifold needs two dims, got {dims}")
        return dims[0], dims[1]
    if explorer.latent_dim < 2:
        raise ValueError("the manifold needs a latent of at least 2 dims")
    if explorer.images is not None:
        top = explorer.rank_dims_by_kl()[0][:2]
        return int(top[0]), int(top[1])
    return 0, 1


def write_run_figures(explorer: Explorer, out_dir: str | os.PathLike, seed: int = 0) -> dict[str, str]:
    """Writes OUT_DIR/figures/traversals.png (the top-KL dims around one test image, μ ± 3σ of
    the aggregate posterior, 9 columns) and OUT_DIR/figures/interpolations.png (4 test-image
    pairs, linear interpolation in 10 steps, the images themselves at either end); returns
    {name: path}."""
    fig_dir = os.path.join(os.fspath(out_dir), "figures")
    return {
        "traversals": plots.save_figure(_traversal_figure(explorer, None, 9, seed, max_dims=8),
                                        os.path.join(fig_dir, "traversals.png")),
        "interpolations": plots.save_figure(_interpolation_figure(explorer, 10, seed),
                                            os.path.join(fig_dir, "interpolations.png")),
    }


def make_figure(explorer: Explorer | None, kind: str, *, dims: Sequence[int] | None = None, steps: int | None = None,
                seed: int = 0, run_dir: str | os.PathLike | None = None):
    """One figure of `kind` (FIGURE_KINDS) as a matplotlib Figure:

    samples          64 prior samples (steps: how many, default 64)
    reconstructions  16 held images over their reconstructions
    interpolation    4 pairs of held images (prior samples without data), `steps` columns (10)
    traversals       `dims` (default: top 10 by KL) around one held image, `steps` columns (9)
    manifold         the decoded grid over two `dims` (default: top 2 by KL), steps x steps (15)
    embedding        2-D view of the held posterior means coloured by label ('auto' method;
                     steps: how many points, default 2000)
    curves           training curves from RUN_DIR/metrics.jsonl (run_dir, else explorer.run_dir;
                     explorer may be None)
    """
    if kind not in FIGURE_KINDS:
        raise ValueError(f"unknown figure kind {kind!r}; allowed: {', '.join(FIGURE_KINDS)}")
    if kind == "curves":
        run_dir = run_dir if run_dir is not None else getattr(explorer, "run_dir", None)
        if run_dir is None:
            raise ValueError("kind='curves' needs run_dir (the run's metrics.jsonl)")
        path = os.path.join(os.fspath(run_dir), "metrics.jsonl")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{run_dir} has no training log: {path} is missing")
        return plots.training_curves(path, title=f"Training curves of {os.path.basename(os.path.abspath(run_dir))}")
    if explorer is None:
        raise ValueError(f"kind={kind!r} needs an Explorer")
    if kind == "samples":
        num = steps or 64
        images = explorer.sample(num, seed=seed)
        return plots.image_grid(images, ncols=int(math.ceil(math.sqrt(num))), title="Samples from the prior (decoder means)")
    if kind == "reconstructions":
        explorer._require_data("kind='reconstructions'")
        n = explorer.images.shape[0]
        idx = np.linspace(0, n - 1, min(16, n)).astype(int)
        x = explorer.images[idx]
        recon = explorer.reconstruct(x, None if explorer.labels is None else explorer.labels[idx])
        half = max(1, idx.size // 2)
        rows, labels = [], []
        for start in range(0, idx.size, half):
            rows += [x[start:start + half], recon[start:start + half]]
            labels += ["data", "recon"]
        return plots.image_grid(np.concatenate(rows), ncols=half, title="Held-out images and reconstructions",
                                row_labels=labels)
    if kind == "interpolation":
        return _interpolation_figure(explorer, steps or 10, seed)
    if kind == "traversals":
        return _traversal_figure(explorer, dims, steps or 9, seed)
    if kind == "manifold":
        mdims = _default_manifold_dims(explorer, dims)
        m = explorer.manifold(mdims, grid=steps or 15)
        return plots.manifold_plot(m.images, m.values_x, m.values_y, m.dims,
                                   title=f"Decoded latent grid over z{m.dims[0]} and z{m.dims[1]} (others 0)")
    # embedding
    emb = explorer.embedding(num=steps or 2000, seed=seed)
    if emb.labels is not None:
        colour, categorical, names, colour_label = emb.labels, True, explorer.label_names(), "label"
    elif emb.factors is not None:
        colour, categorical, names, colour_label = emb.factors[:, 0], True, None, "factor 0"
    else:
        colour, categorical, names, colour_label = None, True, None, None
    return plots.embedding_scatter(emb.coords, colour, categorical=categorical, label_names=names,
                                   title=f"Posterior means of {emb.coords.shape[0]} held-out images ({emb.method})",
                                   axis_labels=emb.axis_labels, colour_label=colour_label)


__all__ = [
    "Explorer", "Traversal", "Manifold", "Embedding", "slerp", "lerp", "gaussian_grid", "nearest_neighbours",
    "write_run_figures", "make_figure", "FIGURE_KINDS",
]
