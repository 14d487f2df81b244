"""pykka's ``ActorRegistry`` across the hosts of a system on Ray.

As on the local backend (``runtime.processes._registry``), the truth about a
system's spawned actors is kept in the service process and mirrored into the
``pykka.ActorRegistry`` of every process of the system, as ``ActorRef``s that
work from anywhere. What differs is the way: nobody can call the service on
Ray, so the service pushes. Every change sends the whole registry, with its
version, to every live host (its ``registry`` method); a host applies a version
newer than the one it has and drops an older one, so pushes that overtake each
other do no harm. A new host boots with the registry in its ``HostSpec`` (its
constructor and ``on_start`` see it already, itself included). An actor leaves
the registry when the service's watch sees its host stop or die; it is listed
again after a restart.

    registry = RayRegistry()
    registry.up(Entry(ref, class_source), hosts)    # spawned (or restarted)
    registry.down(actor_id, hosts)                   # stopped, or gone
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from actors import tracelog
from runtime.processes._registry import EMPTY, Entry, Mirror, Snapshot
from runtime.raybackend import wire

log = tracelog.get_logger("runtime.raybackend.registry")


class RayRegistry:
    """The service process's registry of a system on Ray (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self._version = 0
        self._mirror = Mirror()  # the service process's own pykka.ActorRegistry

    def snapshot(self, also: Entry | None = None) -> Snapshot:
        """The registry now (with ``also`` listed last: a host about to boot with it)."""
        with self._lock:
            entries = [e for a, e in self._entries.items()
                       if also is None or a != also.ref.actor_id]
            return Snapshot(self._version, (*entries, *(() if also is None else (also,))))

    def up(self, entry: Entry, hosts: Iterable[Any]) -> None:
        """List ``entry``'s actor (again, after a restart: at the end) and tell every host."""
        with self._lock:
            self._entries.pop(entry.ref.actor_id, None)
            self._entries[entry.ref.actor_id] = entry
            self._mirror.add(entry)
            self._push(hosts)
        log.debug("registry.registered", actor=entry.ref.name, urn=entry.ref.actor_urn)

    def down(self, actor_id: str, hosts: Iterable[Any]) -> None:
        """``actor_id`` stopped or is gone: off the registry of every process."""
        with self._lock:
            if self._entries.pop(actor_id, None) is None:
                return
            self._mirror.remove(actor_id)
            self._push(hosts)

    def close(self) -> None:
        """The system shuts down: its actors leave this process's ``pykka.ActorRegistry``."""
        with self._lock:
            self._entries.clear()
            self._mirror.clear()

    def _push(self, hosts: Iterable[Any]) -> None:
        """Under the lock: the registry as a new version, to every host given."""
        self._version += 1
        data = wire.dumps(Snapshot(self._version, tuple(self._entries.values())), "the registry")
        for handle in hosts:
            try:
                handle.registry.remote(data)
            except Exception as exc:  # a host that is gone: its watch tells the rest
                log.debug("registry.push_failed", error=repr(exc))


class HostMirror:
    """A host's mirror of its system's registry: newer versions replace older ones."""

    def __init__(self, snapshot: Snapshot = EMPTY) -> None:
        self._lock = threading.Lock()
        self._mirror = Mirror()
        self._mirror.replace(snapshot)

    def pushed(self, data: bytes) -> None:
        snapshot: Snapshot = wire.loads(data)
        with self._lock:
            if snapshot.version > self._mirror.version:
                self._mirror.replace(snapshot)

    def remove(self, actor_id: str) -> None:
        """This host's own actor stopped: off its registry at once (the service tells the rest)."""
        with self._lock:
            self._mirror.remove(actor_id)


__all__ = ["HostMirror", "RayRegistry"]
