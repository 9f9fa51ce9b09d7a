"""Preprocessing and batching on device.

Small datasets live on the accelerator; batch `s` of a run is a pure function of (seed, s):
the epoch's order is `jax.random.permutation(fold_in(key, epoch))`, and dynamic binarization
draws from `fold_in(key, s)`. Resuming at step s therefore continues the exact data stream,
and the only data-order state is the step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry_2x32

from vae.data.base import Dataset
from vae.parallel import batch_sharding, replicated


def binarize(images: np.ndarray, seed: int) -> np.ndarray:
    """Static binarization: each pixel ~ Bernoulli(intensity), fixed by `seed`. [N,H,W,C] -> same, in {0,1}."""
    rng = np.random.default_rng(seed)
    return (rng.random(images.shape, dtype=np.float32) < images).astype(np.float32)


def bernoulli16(key: jax.Array, p: jax.Array) -> jax.Array:
    """Bernoulli(p) draws in {0, 1} (p's shape and dtype) from 16-bit uniforms.

    p: [rows, ...] (a batch of images) or [n]. The uniforms come from Threefry-2x32 in counter mode
    (`jax.extend.random.threefry_2x32`, the generator behind `jax.random`), using both 32-bit
    words of every block and both 16-bit halves of every word: a quarter of a block per pixel,
    where `jax.random.bits` (partitionable Threefry) spends a block per 32-bit word, so it
    takes about half the time (benchmarks/NOTES.md). Counters are numbered per row and each
    block's two words stay in one row, so a batch sharded over rows draws its bits without
    communication. P(1) = ceil(65536 p) / 65536,
    within 1.5e-5 of p, exact for p = 0 and p = 1. key: a raw `jax.random.PRNGKey` or a
    typed threefry key; other key types draw through `jax.random.bits`.
    """
    rows = p.shape[0] if p.ndim > 1 else 1
    per_row = p.size // rows
    words_per_row = (per_row + 1) // 2
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if "threefry" not in str(jax.random.key_impl(key)):
            words = jax.random.bits(key, (rows, words_per_row), jnp.uint32)
            return _below(words, p, rows, per_row)
        key = jax.random.key_data(key)
    counts = (jnp.arange(rows, dtype=jnp.uint32)[:, None] * jnp.uint32(words_per_row)
              + jnp.arange(words_per_row, dtype=jnp.uint32)[None, :])
    # threefry_2x32 pairs the first and second half of its counters into blocks: vmapped per row,
    # the pairs (and the sharding of the result) stay within a row
    words = jax.vmap(lambda c: threefry_2x32(key, c))(counts)
    return _below(words, p, rows, per_row)


def _below(words: jax.Array, p: jax.Array, rows: int, per_row: int) -> jax.Array:
    """1 where the 16-bit uniform of a pixel (two per uint32 word, [rows, words]) is below 65536 p."""
    u = jax.lax.bitcast_convert_type(words, jnp.uint16).reshape(rows, -1)[:, :per_row]
    # compared as [rows, pixels]: XLA:CPU gave the 4-D form a transposed layout and a slow extra pass
    draws = u.astype(jnp.float32) < p.reshape(rows, per_row).astype(jnp.float32) * 65536.0
    return draws.astype(p.dtype).reshape(p.shape)


def prepare(dataset: Dataset, mode: str, *, train: bool, seed: int) -> np.ndarray:
    """Images as the model sees them before batching.

    mode 'none' keeps intensities; 'static' binarizes once with `seed`; 'dynamic' keeps
    intensities for training (binarized per batch) and binarizes evaluation splits once with
    `seed`, so every run of a dataset is evaluated on the same binary images.
    """
    if dataset.info.binary or mode == "none":
        return dataset.images
    if mode == "static" or not train:
        return binarize(dataset.images, seed)
    return dataset.images


def prepared_values(info, mode: str) -> str:
    """What the values are as the model sees them (`prepare` with data.binarize=`mode`): the
    dataset's own (DatasetInfo.values), or 'binary' once binarized."""
    return info.values if mode == "none" or info.binary else "binary"


class Batcher:
    """Draws training batches from a split held on device.

    images: [N, H, W, C]; labels: [N] or None. `batch(step)` returns {'image', 'label'} with
    `batch_size` rows, without replacement within an epoch; the remainder of an epoch
    (N mod batch_size rows) is dropped, a different remainder each epoch.

    With `mesh` (see `vae.parallel`) the split is replicated on the mesh's devices and each
    batch comes out sharded over its 'data' axis; in a multi-process job each process gathers
    only its own rows of the global batch.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray | None, batch_size: int, *, seed: int,
                 dynamic_binarization: bool = False, mesh=None):
        n = images.shape[0]
        if batch_size > n:
            raise ValueError(f"train.batch_size={batch_size} is larger than the training split ({n} images)")
        self.num_examples = n
        self.batch_size = batch_size
        self.steps_per_epoch = n // batch_size
        labels = labels if labels is not None else np.zeros(n, np.int32)
        self._key = jax.random.fold_in(jax.random.PRNGKey(seed), 0x0DA7A)
        self._dynamic = dynamic_binarization
        self._epoch = None
        self._perm = None
        self._mesh = mesh
        self._multiprocess = mesh is not None and jax.process_count() > 1
        if mesh is None:
            self.images, self.labels = jnp.asarray(images), jnp.asarray(labels)
            self._gather_fn = jax.jit(self._gather)
        else:
            local = mesh.local_devices if self._multiprocess else None
            rep = replicated(mesh) if not self._multiprocess else jax.sharding.SingleDeviceSharding(local[0])
            self.images, self.labels = jax.device_put(images, rep), jax.device_put(labels, rep)
            self._batch_sharding = batch_sharding(mesh)
            self._gather_fn = jax.jit(self._gather, out_shardings=None if self._multiprocess else self._batch_sharding)
        self._perm_fn = jax.jit(self._permutation)

    def _permutation(self, epoch: jax.Array) -> jax.Array:
        return jax.random.permutation(jax.random.fold_in(self._key, epoch), self.num_examples)

    def indices(self, step: int) -> np.ndarray:
        """Row indices of the split that form batch `step` (e.g. to report a bad batch)."""
        perm = np.asarray(self._perm_fn(self.epoch_of(step)))
        start = (step % self.steps_per_epoch) * self.batch_size
        return perm[start:start + self.batch_size]

    @property
    def fusable(self) -> bool:
        """Whether `gather` can run inside a jitted train step (`vae.step.make_fused_train_step`)."""
        return not self._multiprocess

    @property
    def data_sharding(self):
        """Sharding of `data(step)`'s arrays (replicated over the mesh), or None without a mesh."""
        return None if self._mesh is None else self.images.sharding

    def data(self, step: int) -> tuple:
        """(images, labels, permutation of this step's epoch): the device arrays `gather` reads."""
        epoch = self.epoch_of(step)
        if epoch != self._epoch:
            self._perm = self._perm_fn(epoch)
            self._epoch = epoch
        return self.images, self.labels, self._perm

    def gather(self, images, labels, perm, step) -> dict:
        """The batch of `step` (a traced or concrete int) from `data(step)`'s arrays, as a pure
        function for use inside jit; sharded over the mesh's 'data' axis when there is one."""
        batch = self._gather(images, labels, perm, step)
        if self._mesh is not None:
            batch = jax.lax.with_sharding_constraint(batch, self._batch_sharding)
        return batch

    def _gather(self, images, labels, perm, step):
        start = (step % self.steps_per_epoch) * self.batch_size
        idx = jax.lax.dynamic_slice_in_dim(perm, start, self.batch_size)
        x = images[idx]
        if self._dynamic:
            key = jax.random.fold_in(jax.random.fold_in(self._key, 1), step)
            x = bernoulli16(key, x)
        batch = {"image": x, "label": labels[idx]}
        if self._multiprocess:  # this process's rows of the global batch
            per = self.batch_size // jax.process_count()
            lo = jax.process_index() * per
            batch = jax.tree_util.tree_map(lambda a: jax.lax.dynamic_slice_in_dim(a, lo, per), batch)
        return batch

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def batch(self, step: int) -> dict:
        """The batch of training step `step` (0-based)."""
        batch = self._gather_fn(*self.data(step), step)
        if self._multiprocess:
            batch = jax.tree_util.tree_map(
                lambda a: jax.make_array_from_process_local_data(self._batch_sharding, np.asarray(a)), batch)
        return batch


def pad_rows(x: np.ndarray, size: int) -> np.ndarray:
    """x [n, ...] padded with zero rows to [size, ...], so one compiled shape serves a ragged tail."""
    if x.shape[0] == size:
        return x
    return np.concatenate([x, np.zeros((size - x.shape[0], *x.shape[1:]), x.dtype)])


def eval_batches(images: np.ndarray, labels: np.ndarray | None, batch_size: int):
    """Yields fixed-size batches covering a split in order, the last one padded.

    Each batch: {'image': [b, H, W, C], 'label': [b], 'mask': [b] float32 (0 on padding)}, so
    one compiled evaluation step serves every batch.
    """
    n = images.shape[0]
    batch_size = min(batch_size, n)
    if labels is None:
        labels = np.zeros(n, np.int32)
    for start in range(0, n, batch_size):
        x = images[start:start + batch_size]
        mask = pad_rows(np.ones(x.shape[0], np.float32), batch_size)
        yield {"image": pad_rows(x, batch_size), "label": pad_rows(labels[start:start + batch_size], batch_size),
               "mask": mask}
