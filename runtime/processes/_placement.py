"""Where a process host puts a new process, for backends with more than one machine."""

from __future__ import annotations

from enum import Enum


class Placement(Enum):
    """What a process is, as far as placing it goes; one machine's host ignores it.

        host.spawn(StoreCheckpointActor, (url,), placement=Placement.STORE)
    """

    ANY = "any"  # wherever the backend likes
    WORKER = "worker"  # a branch worker: spread over the nodes, with the workers' resources
    STORE = "store"  # opens the store: beside a SQLite file, anywhere for a server store
    NEAR_SERVICE = "near service"  # the service asks it often: the service's node if it can


__all__ = ["Placement"]
