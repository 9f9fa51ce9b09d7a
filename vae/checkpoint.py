"""Checkpoints through orbax: the whole train state plus a JSON record, kept as the latest N
and the best (lowest evaluation loss). Writes are atomic (orbax finalizes a step directory
only when it is complete), so a crash never leaves a half-written latest checkpoint behind.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies


class Checkpointer:
    """Saves and restores train states in `directory` (one sub-directory per step).

    keep: how many of the most recent checkpoints to keep; the one with the lowest
    `best_metric` among those saved with metrics is kept as well.
    """

    def __init__(self, directory: str | os.PathLike, keep: int = 2, best_metric: str = "loss"):
        self.directory = os.path.abspath(directory)
        self.best_metric = best_metric
        preservation = policies.AnyPreservationPolicy([
            policies.LatestN(n=keep),
            policies.BestN(get_metric_fn=lambda m: m[best_metric], reverse=True, n=1,
                           keep_checkpoints_without_metrics=False),
        ])
        options = ocp.CheckpointManagerOptions(
            preservation_policy=preservation,
            best_fn=lambda m: m[best_metric],
            best_mode="min",
            enable_async_checkpointing=False,
            create=True,
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "record"))

    def save(self, step: int, state: Any, record: dict | None = None, metrics: dict | None = None) -> None:
        """Writes `state` (any pytree of arrays) and a JSON-able `record` at `step`."""
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), record=ocp.args.JsonSave(record or {}))
        self._manager.save(step, args=args, metrics=metrics, force=True)
        self._manager.wait_until_finished()

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def best_step(self) -> int | None:
        return self._manager.best_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def restore(self, template: Any = None, step: int | None = None) -> tuple[Any, dict]:
        """Returns (state, record) at `step` (default: latest). `template` gives the pytree
        structure, shapes and dtypes (e.g. a freshly initialised state); without it the state
        comes back as nested dicts of arrays, as stored."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        abstract = None if template is None else jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, template)
        try:
            restored = self._manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), record=ocp.args.JsonRestore()))
        except ValueError as err:
            if template is not None or "topology" not in str(err).lower():
                raise
            # saved by a multi-process job (arrays sharded over processes): read back as host arrays
            return self._restore_as_numpy(step), self._record(step)
        return restored["state"], dict(restored["record"] or {})

    def _restore_as_numpy(self, step: int) -> Any:
        path = os.path.join(self.directory, str(step), "state")
        reader = ocp.PyTreeCheckpointer()
        tree = reader.metadata(path)
        tree = getattr(getattr(tree, "item_metadata", tree), "tree", tree)
        return reader.restore(path, restore_args=jax.tree_util.tree_map(
            lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree))

    def _record(self, step: int) -> dict:
        restored = self._manager.restore(step, args=ocp.args.Composite(record=ocp.args.JsonRestore()))
        return dict(restored["record"] or {})

    def reload(self) -> None:
        """Re-reads the directory (after checkpoints were moved or removed by hand)."""
        self._manager.reload()

    def close(self) -> None:
        self._manager.close()
