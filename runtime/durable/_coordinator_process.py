"""The coordinator as a process of its own, for hosts whose service process hosts no actor.

On the local backend the coordinator runs in the service process, beside the
callers who ask it; on Ray nobody can call the driver, so it runs in a host of
its own like the other framework actors, restarted by the process host. There it
opens its own read-only connection to the store, and each start takes a run epoch
base from the clock, above every epoch an earlier start of it issued.
"""

from __future__ import annotations

import time
from typing import Any

from actors.coordinator._actor import CoordinatorActor
from runtime.stores import open_store


class StoreCoordinatorActor(CoordinatorActor):
    """``CoordinatorActor`` reading the store at ``reader_url`` (read-only), opened here.

        host.spawn(StoreCoordinatorActor, (read_only_url(url),), {...}, name="coordinator")
    """

    def __init__(self, reader_url: str, *, lock_timeout: float, **options: Any) -> None:
        reader = open_store(reader_url, lock_timeout=lock_timeout)
        # Microseconds since the epoch: a later start's base is above every epoch an
        # earlier one issued, unless that one dispatched a million runs per second.
        super().__init__(reader=reader, epoch_base=time.time_ns() // 1000, **options)

    def on_stop(self) -> None:
        super().on_stop()
        self._reader.close()


__all__ = ["StoreCoordinatorActor"]
