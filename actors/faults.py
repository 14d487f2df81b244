"""Faults the system cannot hide, and how they reach the callers they affect.

A store that fails, or a framework process that cannot be kept alive, leaves
executions unable to advance. Nothing is lost (a commit is all or nothing, and
an execution whose result cannot be written stays resumable), but the callers
waiting on those executions must hear of it, typed, with its cause:

* a **transient** fault (the store locked by another program, a full disk, a
  server that went away) is retried with backoff; meanwhile ``progress()``
  carries it and a ``result(timeout)`` that runs out raises ``Timeout`` chained
  to it;
* a **lasting** fault (a read-only store, a schema from a newer version, a
  framework process that keeps crashing) is told to every waiting caller at
  once; the system keeps trying, and an execution finishes once it is fixed.

    if is_lasting(error):
        fail_waiters(error)
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.errors import SchemaTooNewError, StoreError, StoreReadOnlyError
from actors.messages import ActorLike


def is_lasting(error: BaseException) -> bool:
    """Whether ``error`` will not go away by retrying: callers are told at once."""
    if isinstance(error, StoreReadOnlyError | SchemaTooNewError):
        return True
    if isinstance(error, StoreError):
        return False  # locked, full, unreachable: retried until it passes
    return getattr(error, "lasting", True)  # not a store's error: a process fault, or a bug


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


@dataclass(frozen=True, slots=True)
class StoreFault:
    """The checkpoint actor's store failed (``error``), or works again (``None``)."""

    error: BaseException | None


@dataclass(frozen=True, slots=True)
class SystemFault:
    """A framework process could not be kept alive (``error``), or is back (``None``)."""

    process: str
    error: BaseException | None


@dataclass(frozen=True, slots=True)
class WatchFaults:
    """Tell ``watcher`` every ``StoreFault`` from now on (the coordinator asks this)."""

    watcher: ActorLike


__all__ = ["StoreFault", "SystemFault", "WatchFaults", "describe", "is_lasting"]
