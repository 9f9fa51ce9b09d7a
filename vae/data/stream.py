"""Training batches streamed from a prepared dataset (`vae.data.records`), for data larger than memory.

`StreamBatcher` is the in-memory `Batcher`'s twin: batch `s` holds the same rows, in the same
order, with the same dynamic binarization, because it computes the same epoch permutation,
`jax.random.permutation(fold_in(key, epoch), N)`, from (seed, s) alone. Only the rows of one
batch are read, from disk, by a grain pipeline (`grain.MapDataset` over step numbers, read on
`threads` threads, `prefetch` batches ahead), so host memory holds the prefetched batches, not
the split. A run can switch between the two paths (or resume on either) and see the same data.
In a multi-process job each process reads only its own rows of the global batch.
"""

from __future__ import annotations

import grain
import jax
import numpy as np

from vae.data.pipeline import bernoulli16
from vae.data.records import RecordSource
from vae.parallel import batch_sharding

DATA_KEY = 0x0DA7A   # the in-memory Batcher's: the same key gives the same order


class StreamBatcher:
    """Batches of `batch_size` rows from `source` (a RecordSource): `batch(step)` -> {'image',
    'label'}, without replacement within an epoch (the remainder of each epoch dropped, as the
    in-memory Batcher does). threads / prefetch: grain's reading threads and batches read ahead."""

    fusable = False          # batches come from the host: the train step cannot gather them itself
    data_sharding = None

    def __init__(self, source: RecordSource, batch_size: int, *, seed: int, dynamic_binarization: bool = False,
                 mesh=None, threads: int = 2, prefetch: int = 4):
        n = len(source)
        if batch_size > n:
            raise ValueError(f"train.batch_size={batch_size} is larger than the training split ({n} images)")
        self.source = source
        self.num_examples = n
        self.batch_size = batch_size
        self.steps_per_epoch = n // batch_size
        self._key = jax.random.fold_in(jax.random.PRNGKey(seed), DATA_KEY)
        self._dynamic = dynamic_binarization
        self._mesh = mesh
        self._processes = jax.process_count() if mesh is not None else 1
        if batch_size % self._processes:
            raise ValueError(f"train.batch_size={batch_size} must be a multiple of the {self._processes} processes")
        self._per_process = batch_size // self._processes
        self._first_row = (jax.process_index() if mesh is not None else 0) * self._per_process
        self._threads, self._prefetch = threads, prefetch
        self._perm_fn = jax.jit(lambda epoch: jax.random.permutation(jax.random.fold_in(self._key, epoch), n))
        self._perms: dict[int, np.ndarray] = {}
        self._binarize = jax.jit(self._binarize_rows)
        self._iterator, self._next = None, None

    def _permutation(self, epoch: int) -> np.ndarray:
        # grain's threads read batches of this epoch and the last at once: keep both; the dict is
        # replaced whole, never changed in place, so a thread always sees a consistent one
        perms = self._perms
        if epoch in perms:
            return perms[epoch]
        perm = np.asarray(self._perm_fn(epoch))
        self._perms = {**{e: p for e, p in perms.items() if e == epoch - 1}, epoch: perm}
        return perm

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def indices(self, step: int) -> np.ndarray:
        """Row indices of the split that form batch `step` (the whole global batch)."""
        start = (step % self.steps_per_epoch) * self.batch_size
        return self._permutation(self.epoch_of(step))[start:start + self.batch_size]

    def _device_batch(self, step: int) -> dict:
        """Batch `step` read, put on the device(s) and binarized: on grain's threads, ahead of the
        train step that takes it, so the main thread only hands it over."""
        rows = self.indices(step)[self._first_row:self._first_row + self._per_process]
        images, labels = self.source.read(rows)
        batch = {"image": images, "label": labels}
        if self._mesh is None:
            batch = jax.device_put(batch)
        elif self._processes > 1:
            batch = jax.tree_util.tree_map(
                lambda a: jax.make_array_from_process_local_data(batch_sharding(self._mesh), a), batch)
        else:
            batch = jax.device_put(batch, batch_sharding(self._mesh))
        if self._dynamic:
            batch["image"] = self._binarize(batch["image"], step)
        return {**batch, "step": step}

    def _binarize_rows(self, x, step):
        key = jax.random.fold_in(jax.random.fold_in(self._key, 1), step)
        return bernoulli16(key, x)   # the global batch's rows (sharded or not): the in-memory path's bits

    def _restart(self, step: int) -> None:
        steps = grain.MapDataset.range(step, step + 2 ** 40).map(self._device_batch)
        options = grain.ReadOptions(num_threads=self._threads, prefetch_buffer_size=self._prefetch)
        self._iterator, self._next = iter(steps.to_iter_dataset(options)), step

    def batch(self, step: int) -> dict:
        """The batch of training step `step` (0-based): read ahead in order; a jump (a resume)
        starts the pipeline again at `step`."""
        if step != self._next:
            self._restart(step)
        batch = next(self._iterator)
        self._next = step + 1
        if batch.pop("step") != step:
            raise RuntimeError(f"the input stream is out of order: expected batch {step}")
        return batch
