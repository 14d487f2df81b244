"""The checkpoint actor as the runtime hosts it: in a process of its own, on its own store."""

from __future__ import annotations

import time
import uuid

from actors.checkpointing import BatchingPolicy, CheckpointActor
from actors.clock import SystemClock
from actors.records._leases import ExecutorInfo
from runtime.durable._liveness import executor_is_dead, this_executor
from runtime.stores import open_store


class StoreCheckpointActor(CheckpointActor):
    """The checkpoint actor as hosted by the runtime: it opens its store in its own process
    and registers its system there as an executor.

        host.spawn(StoreCheckpointActor, (url,), {...}, name="checkpoint")
    """

    def __init__(self, store_url: str, *, synchronous: str, lock_timeout: float,
                 batching: BatchingPolicy, executor: ExecutorInfo,
                 lease_seconds: float) -> None:
        store = open_store(store_url, synchronous=synchronous, lock_timeout=lock_timeout)
        try:
            found = store.read_executor(executor.executor_id)
            alive = found is None or not executor_is_dead(found[0])
            store.register_executor(executor, lease_seconds, time.time(), alive=alive)
        except BaseException:
            store.close()
            raise
        super().__init__(store=store, clock=SystemClock(), batching=batching,
                         executor=executor.executor_id,
                         lease_seconds=lease_seconds, is_dead=executor_is_dead)


def default_executor_id() -> str:
    """A new executor id for this host: ``<host>-<8 hex>``."""
    return f"{this_executor('').host}-{uuid.uuid4().hex[:8]}"


__all__ = ["StoreCheckpointActor", "default_executor_id"]
