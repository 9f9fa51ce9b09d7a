"""One batched, jitted inference helper for trained models.

`batched_map(fn, arrays, batch_size=..., pad=...)` runs a jitted `fn` over the rows of numpy
arrays in batches, padding the last batch, and returns numpy arrays with the padding cut off.
`TrainedModel(model, params)` builds on it: encode, decode, reconstruct, generate, the prior's
samples and importance weights of any `vae.models.LatentVariableModel`, each compiled once per
model *object* and input shape (the jitted functions are kept on the model object, so a second
TrainedModel, or a second call of an estimator, of the same model reuses them, and they go with
the model; it need not be hashable). Evaluation, the explorer, synthesis, sample quality and the disentanglement
metrics all call models through it.

Padding: pad='batch' pads every batch to `batch_size` rows (one compiled shape); pad='bucket'
pads to the next power of two between 8 and batch_size (a handful of shapes, less waste for
small inputs, as the explorer's interactive calls want).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vae.data.pipeline import pad_rows

PAD_MODES = ("batch", "bucket")
_MIN_BUCKET = 8

_CACHE_ATTR = "_vae_jit_cache"


def bucket_size(rows: int, batch_size: int) -> int:
    """The padded size of a batch of `rows` rows under pad='bucket': the next power of two,
    at least 8, at most batch_size."""
    return min(batch_size, max(_MIN_BUCKET, 1 << max(0, rows - 1).bit_length()))


def _model_cache(model: Any) -> dict:
    """The dict of jitted functions that belongs to `model`. It is stored on the model object
    itself (flax modules are frozen dataclasses, so through object.__setattr__), so it lives and
    dies with the model: the jitted closures refer to the model, and a cache outside it would
    keep every model and its compiled executables alive."""
    cache = getattr(model, _CACHE_ATTR, None)
    if isinstance(cache, dict):
        return cache
    cache = {}
    try:
        object.__setattr__(model, _CACHE_ATTR, cache)
    except (AttributeError, TypeError):  # an object that takes no attributes: nothing is cached
        pass
    return cache


def cached_jit(model: Any, name: Any, build: Callable[[], Callable], **jit_kwargs) -> Callable:
    """`jax.jit(build())`, created once per (model object, name) and reused afterwards."""
    cache = _model_cache(model)
    if name not in cache:
        cache[name] = jax.jit(build(), **jit_kwargs)
    return cache[name]


def batched_map(fn: Callable, arrays: Sequence[np.ndarray | None], *, batch_size: int, pad: str = "batch",
                args: tuple = (), keys: jax.Array | None = None) -> Any:
    """fn(*args, *batch_arrays[, key]) over row batches of `arrays` ([N, ...] each, or None, passed as
    None), concatenated back to N rows as numpy (any pytree of [rows, ...] outputs).

    keys: with a key, batch i gets fold_in(keys, i) as a last argument (estimators that sample).
    """
    if pad not in PAD_MODES:
        raise ValueError(f"pad={pad!r} is not allowed; choose one of {', '.join(PAD_MODES)}")
    rows = [a for a in arrays if a is not None]
    if not rows:
        raise ValueError("batched_map needs at least one array of rows")
    n = rows[0].shape[0]
    if n == 0:
        raise ValueError("nothing to compute: got 0 rows")
    if any(a.shape[0] != n for a in rows):
        raise ValueError(f"arrays must have the same number of rows, got {[a.shape[0] for a in rows]}")
    batch_size = int(batch_size)
    outs = []
    for i, start in enumerate(range(0, n, batch_size)):
        m = min(batch_size, n - start)
        size = batch_size if pad == "batch" else bucket_size(m, batch_size)
        batch = [None if a is None else jnp.asarray(pad_rows(a[start:start + m], size)) for a in arrays]
        extra = () if keys is None else (jax.random.fold_in(keys, i),)
        out = fn(*args, *batch, *extra)
        outs.append(jax.tree_util.tree_map(lambda o: np.asarray(o)[:m], out))
    return jax.tree_util.tree_map(lambda *o: np.concatenate(o), *outs)


def _iwae_batch(model: Any, params: Any, x: jax.Array, y: jax.Array | None, rng: jax.Array, num_chunks: int,
                chunk_size: int):
    """Per example, from k = num_chunks * chunk_size importance weights w_i = p(x, z_i) / q(z_i | x):
    log (1/k) sum_i w_i (the IWAE estimate, Burda et al. 2016, eq. 8) and log (sum w_i^2 / (sum w_i)^2)
    (for its Monte-Carlo error): ([batch], [batch]). Chunks of samples fold into running
    logsumexps, so memory is that of one chunk."""
    variables = {"params": params}

    def body(acc, key):
        lw = model.apply(variables, x, chunk_size, y, rngs={"sample": key}, method=type(model).log_importance_weights)
        return (jnp.logaddexp(acc[0], jax.nn.logsumexp(lw, axis=0)),
                jnp.logaddexp(acc[1], jax.nn.logsumexp(2.0 * lw, axis=0))), None

    init = jnp.full(x.shape[:1], -jnp.inf, jnp.float32)
    (total, total_sq), _ = jax.lax.scan(body, (init, init), jax.random.split(rng, num_chunks))
    return total - math.log(num_chunks * chunk_size), total_sq - 2.0 * total


class TrainedModel:
    """A trained model: the linen module, its params, and batched jitted calls.

    model: any `vae.models.LatentVariableModel`; params: its 'params' collection.
    batch_size: the most rows per call; pad: 'batch' or 'bucket' (see the module docstring).
    All methods take and return numpy arrays; y: labels [N] for conditional models (None otherwise).
    """

    def __init__(self, model: Any, params: Any, *, batch_size: int = 256, pad: str = "bucket"):
        if pad not in PAD_MODES:
            raise ValueError(f"pad={pad!r} is not allowed; choose one of {', '.join(PAD_MODES)}")
        self.model, self.params = model, params
        self.batch_size, self.pad = int(batch_size), pad
        self.num_classes = int(getattr(model, "num_classes", 0) or 0)
        self.latent_dim = int(getattr(model, "latent_dim"))

    def _jit(self, name: Any, build: Callable[[], Callable], **kw) -> Callable:
        return cached_jit(self.model, name, build, **kw)

    def jitted(self, name: Any) -> Callable:
        """The jitted function behind a method ('encode', 'decode', 'reconstruct', 'generate',
        'sample_prior', ('iwae', chunks, chunk)) once it has been called: e.g. to check how many
        shapes it compiled for (`._cache_size()`)."""
        return _model_cache(self.model)[name]

    def labels(self, n: int, y: Any, default: int = 0) -> np.ndarray | None:
        """Labels for n rows of a conditional model (a scalar is broadcast; None gives `default`);
        None for unconditional models."""
        if not self.num_classes:
            return None
        if y is None:
            return np.full((n,), default, np.int32)
        y = np.asarray(y, np.int32)
        return np.broadcast_to(y, (n,)).copy() if y.ndim == 0 or y.shape[0] != n else y

    def _map(self, fn: Callable, x: np.ndarray, y: np.ndarray | None, *, batch_size: int | None = None,
             pad: str | None = None, keys: jax.Array | None = None):
        if self.num_classes and y is None:
            raise ValueError("this model is conditional (num_classes > 0): pass the labels y")
        return batched_map(fn, (x, y if self.num_classes else None), batch_size=batch_size or self.batch_size,
                           pad=pad or self.pad, args=(self.params,), keys=keys)

    # ------------------------------------------------------------------ encoder and decoder

    def _applied(self, name: str, method: Callable, *, sample: bool = False, static_argnums=()) -> Callable:
        """The jitted `(params, [key,] *args) -> model.apply(params, *args, method=method)`, one per
        model and name; with sample=True the key feeds the 'sample' RNG stream."""
        model = self.model

        def build():
            if sample:
                return lambda p, key, *args: model.apply({"params": p}, *args, rngs={"sample": key}, method=method)
            return lambda p, *args: model.apply({"params": p}, *args, method=method)

        return self._jit(name, build, static_argnums=static_argnums)

    def _decode_fn(self) -> Callable:
        return self._applied("decode", lambda m, z, y: m.likelihood.mean(m.decode(z, y)))

    def encode(self, x: np.ndarray, y: np.ndarray | None = None, **kw) -> tuple[np.ndarray, np.ndarray]:
        """x [N, H, W, C] -> posterior (mean, log_var) [N, d] each (log_var -inf for a point mass)."""
        fn = self._applied("encode", lambda m, x, y: (lambda q: (q.mean, q.log_var))(m.encode(x, y)))
        return self._map(fn, np.asarray(x, np.float32), y, **kw)

    def decode(self, z: np.ndarray, y: np.ndarray | None = None, **kw) -> np.ndarray:
        """z [N, d] -> the likelihood's mean images [N, H, W, C]."""
        return self._map(self._decode_fn(), np.asarray(z, np.float32), y, **kw)

    def reconstruct(self, x: np.ndarray, y: np.ndarray | None = None, **kw) -> np.ndarray:
        """x [N, H, W, C] -> decoded posterior means [N, H, W, C]."""
        fn = self._applied("reconstruct", lambda m, x, y: m.reconstruct(x, y))
        return self._map(fn, np.asarray(x, np.float32), y, **kw)

    def map_apply(self, name: str, fn: Callable, x: np.ndarray, y: np.ndarray | None = None, *,
                  key: jax.Array | None = None, **kw) -> Any:
        """fn(module, x, y) over the rows of x (any array [N, ...]), jitted once per (model, name);
        with a key, fn(module, x, y) runs with the 'sample' RNG stream at fold_in(key, batch)."""
        if key is None:
            return self._map(self._applied(name, fn), np.asarray(x), y, **kw)
        applied = self._applied(name, fn, sample=True)
        return self._map(lambda p, x, y, k: applied(p, k, x, y), np.asarray(x), y, keys=key, **kw)

    def image_shape(self) -> tuple[int, ...]:
        """(H, W, C) of decoded images, from shapes alone (nothing is computed)."""
        z = jnp.zeros((1, self.latent_dim), jnp.float32)
        y = jnp.zeros((1,), jnp.int32) if self.num_classes else None
        return tuple(jax.eval_shape(self._decode_fn(), self.params, z, y).shape[1:])

    # ------------------------------------------------------------------ sampling

    def generate_batch(self, key: jax.Array, num: int, temperature: float = 1.0,
                       y: np.ndarray | None = None) -> np.ndarray:
        """One batch of `num` decoder means of z ~ temperature * p(z): [num, H, W, C] (compiled
        once per num; temperature is traced)."""
        fn = self._applied("generate", lambda m, n, t, y: m.generate(n, t, y), sample=True, static_argnums=(2,))
        yb = None if y is None or not self.num_classes else jnp.asarray(np.asarray(y, np.int32))
        return np.asarray(fn(self.params, key, int(num), jnp.asarray(temperature, jnp.float32), yb), np.float32)

    def generate_from(self, key: jax.Array, z: np.ndarray, temperature: float = 1.0, y: np.ndarray | None = None,
                      **kw) -> np.ndarray:
        """Decoder means [N, H, W, C] for given codes z [N, d], as `LatentVariableModel.generate_from`
        (a one-level model's decode; a hierarchy draws its lower groups given z, with noise scaled by
        `temperature`, batch i with key fold_in(key, i))."""
        applied = self._applied("generate_from", lambda m, z, t, y: m.generate_from(z, t, y), sample=True)
        t = jnp.asarray(temperature, jnp.float32)
        return self._map(lambda p, z, y, k: applied(p, k, z, t, y), np.asarray(z, np.float32), y, keys=key, **kw)

    def sample_prior(self, key: jax.Array, num: int) -> np.ndarray:
        """z ~ p(z): [num, d]."""
        fn = self._applied("sample_prior", lambda m, k, n: m.sample_prior(k, n), static_argnums=(2,))
        return np.asarray(fn(self.params, key, int(num)))

    # ------------------------------------------------------------------ importance weights

    def iwae(self, x: np.ndarray, y: np.ndarray | None, num_samples: int, key: jax.Array, *,
             chunk_size: int = 100, batch_size: int = 100) -> tuple[np.ndarray, np.ndarray, int]:
        """Per example: the IWAE estimate log (1/k) sum_i w_i with k = num_samples, and
        log (sum_i w_i^2 / (sum_i w_i)^2) ([N] each), and the chunk of samples used (the largest
        divisor of k not above chunk_size, so every chunk has one compiled shape). Batch i of
        `batch_size` rows uses key fold_in(key, i)."""
        chunk = max(c for c in range(1, min(chunk_size, num_samples) + 1) if num_samples % c == 0)
        num_chunks = num_samples // chunk
        model = self.model

        def build():
            def run(p, x, y, key):
                return _iwae_batch(model, p, x, y, key, num_chunks=num_chunks, chunk_size=chunk)
            return run

        fn = self._jit(("iwae", num_chunks, chunk), build)
        x = np.asarray(x, np.float32)
        log_px, log_ratio = self._map(fn, x, y, batch_size=min(int(batch_size), x.shape[0]), pad="batch", keys=key)
        return log_px, log_ratio, chunk
