"""pykka's ``ActorRegistry`` across the processes of a system.

pykka keeps one registry per process: ``pykka.ActorRegistry``, filled as actors
start and emptied as they stop. A system keeps the truth about its spawned
actors in the service process (``SystemRegistry``) and mirrors it into the
``pykka.ActorRegistry`` of every process of the system (``Mirror``), so that
``get_all``, ``get_by_class``, ``get_by_class_name``, ``get_by_urn``,
``broadcast`` and ``stop_all`` see the same actors wherever they are called, as
``runtime.ActorRef`` s that work from any process.

* A new process (or a restarted one) gets the registry as it boots, inside its
  ``BootSpec``: the actor's ``__init__`` and ``on_start`` already see it, and
  booting costs no round trip. With its ready reply it subscribes, naming the
  version it has; the service sends what changed since (or the whole registry),
  then every change, in order, on the same connection.
* An actor's process announces it (``registry.up``, before its ready reply, so
  ``spawn`` returns with the actor registered; again after every restart) and
  withdraws it as pykka's stopped flag is set (``registry.down``, before its
  stop reply). The supervisor withdraws an actor whose process exits in any
  other way (``kill -9``).
* The system's own actors (checkpoint, scheduler, digest, workers) are not listed.

    for ref in pykka.ActorRegistry.get_by_class_name("Counter"):   # in any process
        ref.tell(1)
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pykka

from actors import tracelog
from runtime.errors import ActorDeadError
from runtime.ref import ActorRef, forget_class, remember_class

if TYPE_CHECKING:
    from runtime.transport import Node

log = tracelog.get_logger("runtime.registry")

# Control ops: to the service (SUBSCRIBE, UP, DOWN), from it (SNAPSHOT, CHANGES).
SUBSCRIBE, UP, DOWN = "registry.subscribe", "registry.up", "registry.down"
SNAPSHOT, CHANGES = "registry.snapshot", "registry.changes"
_KEPT_CHANGES = 256  # changes the service keeps for subscribers that are a little behind


@dataclass(frozen=True)
class Entry:
    """One registered actor: its ref, and its class pickled (by reference when importable)."""

    ref: ActorRef[Any]
    class_source: bytes


@dataclass(frozen=True)
class Snapshot:
    """The registry at one version: its entries in registration order."""

    version: int
    entries: tuple[Entry, ...]


EMPTY = Snapshot(0, ())

# A change: (version, entry to add) or (version, actor id to remove).
Change = tuple[int, Entry | str]


class Mirror:
    """Keeps this process's ``pykka.ActorRegistry`` in step with one system's registry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listed: dict[str, ActorRef[Any]] = {}  # actor id -> the ref we registered
        self.version = 0

    def replace(self, snapshot: Snapshot) -> None:
        keep = {entry.ref.actor_id for entry in snapshot.entries}
        with self._lock:
            gone = [self._listed.pop(a) for a in list(self._listed) if a not in keep]
        for ref in gone:
            pykka.ActorRegistry.unregister(ref)
        for entry in snapshot.entries:
            self.add(entry)
        self.version = snapshot.version

    def apply(self, changes: list[Change]) -> None:
        for version, change in changes:
            if isinstance(change, Entry):
                self.add(change)
            else:
                self.remove(change)
            self.version = version

    def add(self, entry: Entry) -> None:
        ref = entry.ref
        remember_class(ref.system_id, ref.actor_id, entry.class_source)
        with self._lock:
            if ref.actor_id in self._listed:
                return
            self._listed[ref.actor_id] = ref
        pykka.ActorRegistry.register(ref)

    def remove(self, actor_id: str) -> None:
        with self._lock:
            ref = self._listed.pop(actor_id, None)
        if ref is not None:
            pykka.ActorRegistry.unregister(ref)
            forget_class(ref.system_id, actor_id)  # a system that spawns for ever keeps no more

    def clear(self) -> None:
        self.replace(EMPTY)


class SystemRegistry:
    """The service process's registry of a system's spawned actors, and its subscribers."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._lock = threading.Lock()  # updates and their pushes: one order for everyone
        self._entries: dict[str, Entry] = {}
        self._version = 0
        self._changes: deque[Change] = deque(maxlen=_KEPT_CHANGES)
        self._subscribers: set[str] = set()
        self._sources: dict[bytes, bytes] = {}  # one bytes object per class: pickled once
        self._mirror = Mirror()
        node.ctrl_handlers[SUBSCRIBE] = self._subscribe
        node.ctrl_handlers[UP] = self._up
        node.ctrl_handlers[DOWN] = self._down

    def snapshot(self) -> Snapshot:
        """The registry now, for a process about to boot."""
        with self._lock:
            return Snapshot(self._version, tuple(self._entries.values()))

    def _subscribe(self, _: str, subscriber: tuple[str, int]) -> None:
        address, version = subscriber
        with self._lock:
            self._subscribers.add(address)
            if version == self._version:
                return
            behind = [c for c in self._changes if c[0] > version]
            if len(behind) == self._version - version:  # we still hold all it missed
                self._push_to(address, CHANGES, behind)
            else:
                self._push_to(address, SNAPSHOT,
                              Snapshot(self._version, tuple(self._entries.values())))

    def _up(self, actor_id: str, entry: Entry) -> None:
        entry = Entry(entry.ref, self._sources.setdefault(entry.class_source, entry.class_source))
        with self._lock:
            self._entries.pop(actor_id, None)  # a restart registers it anew, at the end
            self._entries[actor_id] = entry
            self._mirror.add(entry)
            self._change(entry)
        log.debug("registry.registered", actor=entry.ref.name, urn=entry.ref.actor_urn)

    def _down(self, actor_id: str, _: Any = None) -> None:
        with self._lock:
            entry = self._entries.pop(actor_id, None)
            if entry is None:
                return
            self._mirror.remove(actor_id)
            # Not to the actor's own process: it has removed it, and it may be exiting.
            self._change(actor_id, but=entry.ref.address)
        log.debug("registry.unregistered", actor=entry.ref.name)

    def process_exited(self, actor_id: str, address: str) -> None:
        """The supervisor saw the process of ``actor_id`` exit, however it exited."""
        with self._lock:
            self._subscribers.discard(address)
        self._down(actor_id)

    def close(self) -> None:
        """The system shuts down: its actors leave this process's ``pykka.ActorRegistry``."""
        with self._lock:
            self._entries.clear()
            self._subscribers.clear()
            self._mirror.clear()

    def _change(self, change: Entry | str, but: str | None = None) -> None:
        """Under the lock: record one change and send it to every subscriber."""
        self._version += 1
        record: Change = (self._version, change)
        self._changes.append(record)
        if self._node.shutting_down:
            return  # every subscriber is stopping; nobody will ask
        for address in list(self._subscribers):
            if address != but:
                self._push_to(address, CHANGES, [record])

    def _push_to(self, address: str, op: str, arg: Any) -> None:
        try:
            self._node.send_notice(address, op, "", arg)
        except ActorDeadError:
            self._subscribers.discard(address)  # gone; the supervisor tells us the rest


def mirror(node: Node, snapshot: Snapshot) -> Mirror:
    """Mirror the system's registry into this process's ``pykka.ActorRegistry``.

    ``snapshot`` (from the ``BootSpec``) is listed at once; changes are applied as
    they come, once ``subscribe`` has asked for them.
    """
    found = Mirror()
    found.replace(snapshot)
    node.ctrl_handlers[SNAPSHOT] = lambda _, snap: found.replace(snap)
    node.ctrl_handlers[CHANGES] = lambda _, changes: found.apply(changes)
    return found


def subscribe(node: Node, service_address: str, since: Mirror) -> None:
    """Ask for every change after ``since``'s version, from now on."""
    node.send_notice(service_address, SUBSCRIBE, "", (node.address, since.version))


def announce(node: Node, service_address: str, entry: Entry) -> None:
    """Register ``entry``'s actor (hosted here, running) with the system."""
    node.send_notice(service_address, UP, entry.ref.actor_id, entry)


def withdraw(node: Node, service_address: str, actor_id: str) -> None:
    """Unregister ``actor_id`` (hosted here, stopping) from the system."""
    with contextlib.suppress(ActorDeadError):  # the service is gone, and its registry too
        node.send_notice(service_address, DOWN, actor_id)
