"""Data-parallel training on JAX's own sharding: a 1-D `Mesh` with a 'data' axis.

The batch is split over the axis; params and optimizer state are replicated (or, with
`shard_params`, split along their first axis where it divides evenly, for large models). The
train step is the same jitted function; XLA inserts the gradient all-reduce.

Multi-host: run one process per host with `jax.distributed.initialize()` (see the README);
each process then feeds only its own rows of every global batch.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def maybe_initialize_distributed(heartbeat_timeout: int | None = None) -> bool:
    """Calls jax.distributed.initialize() when the environment describes a multi-process job
    (JAX_COORDINATOR_ADDRESS with JAX_NUM_PROCESSES and JAX_PROCESS_ID); returns whether it did.
    heartbeat_timeout: seconds after which a silent process counts as dead (None: JAX's 100); the
    others then stop with JAX's "another task died" error instead of waiting in a collective."""
    address = os.environ.get("JAX_COORDINATOR_ADDRESS")
    if not address:
        return False
    kwargs = {}
    # jax.distributed.initialize reads the coordinator's address from the environment but not these two
    for env, key in (("JAX_NUM_PROCESSES", "num_processes"), ("JAX_PROCESS_ID", "process_id")):
        text = os.environ.get(env)
        if text is not None:
            try:
                kwargs[key] = int(text)
            except ValueError:
                raise ValueError(f"{env}={text!r} must be an integer") from None
    if heartbeat_timeout is not None:
        kwargs["heartbeat_timeout_seconds"] = int(heartbeat_timeout)
    jax.distributed.initialize(address, **kwargs)
    return True


def make_mesh(num_devices: int = 0) -> Mesh:
    """A mesh over the first `num_devices` devices (0: all of them), axis 'data'."""
    devices = jax.devices()
    if num_devices < 0 or num_devices > len(devices):
        raise ValueError(f"train.devices={num_devices} is not allowed; this machine has {len(devices)} "
                         f"device(s) ({devices[0].platform}); use 0 for all, or 1..{len(devices)}")
    chosen = devices[: num_devices or len(devices)]
    return Mesh(np.asarray(chosen), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over 'data'."""
    return NamedSharding(mesh, P(DATA_AXIS))


def state_sharding(state: Any, mesh: Mesh, shard_params: bool = False) -> Any:
    """A sharding per leaf of the train state: replicated, or (shard_params) split along the
    first axis of every array whose first dimension the mesh size divides."""
    n = mesh.devices.size

    def leaf(x):
        if shard_params and getattr(x, "ndim", 0) >= 1 and x.shape[0] % n == 0 and x.shape[0] >= n:
            return NamedSharding(mesh, P(DATA_AXIS))
        return replicated(mesh)

    return jax.tree_util.tree_map(leaf, state)


def blocks_each_step(mesh: Mesh) -> bool:
    """Whether the loop must wait for every step before issuing the next.

    On CPU with several devices, XLA's all-reduce can deadlock when sharded steps are queued
    back to back (jax <= 0.10.2: 'Expected N threads to join the rendezvous', then SIGABRT);
    blocking on each step avoids it. Accelerators keep asynchronous dispatch."""
    return mesh.devices.size > 1 and mesh.devices.flat[0].platform == "cpu"


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    n = mesh.devices.size
    if batch_size % n:
        raise ValueError(f"train.batch_size={batch_size} is not divisible by the number of devices ({n}); "
                         f"use a multiple of {n} or set train.devices")
