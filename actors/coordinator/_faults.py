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

``FaultWatch`` is the coordinator's part that keeps the faults reported to it
(``StoreFault``, ``SystemFault``) and tells them to the callers they affect.
"""

from __future__ import annotations

from typing import Any

from actors import tracelog
from actors.coordinator._batches import ExecutionMode
from actors.coordinator._core import CoordinatorCore
from actors.errors import SchemaTooNewError, StoreError, StoreReadOnlyError
from actors.protocol._coordinator import CurrentFault, StoreFault, SystemFault
from actors.records._status import ExecutionStatus

log = tracelog.get_logger("actors.execution")


def is_lasting(error: BaseException) -> bool:
    """Whether ``error`` will not go away by retrying: callers are told at once."""
    if isinstance(error, StoreReadOnlyError | SchemaTooNewError):
        return True
    if isinstance(error, StoreError):
        return False  # locked, full, unreachable: retried until it passes
    return getattr(error, "lasting", True)  # not a store's error: a process fault, or a bug


def describe_fault(error: BaseException) -> str:
    """A fault in one line for people: its type and message."""
    return f"{type(error).__name__}: {error}"


class FaultWatch(CoordinatorCore):
    """The faults there are now, where; told to waiters when lasting, and in progress."""

    def _with_fault(self, found: dict[str, Any]) -> dict[str, Any]:
        fault = self._current_fault()
        if fault is not None and not ExecutionStatus(found["status"]).finished:
            found["fault"] = describe_fault(fault)
        return found

    def _current_fault(self) -> BaseException | None:
        return next(iter(self._faults.values()), None)

    def _fault_of(self, message: CurrentFault) -> BaseException | None:
        return self._current_fault()

    def _store_fault(self, message: StoreFault) -> None:
        self._fault("store", message.error)

    def _system_fault(self, message: SystemFault) -> None:
        self._fault(message.process, message.error)

    def _fault(self, where: str, error: BaseException | None) -> None:
        if error is None:
            if self._faults.pop(where, None) is not None:
                log.info("fault.cleared", where=where)
            return
        self._faults[where] = error
        log.error("fault", where=where, error=repr(error), lasting=is_lasting(error))
        if is_lasting(error):
            for tracked in self._executions.values():
                if tracked.mode is ExecutionMode.OWNED:
                    self._fail_waiters(tracked, error)
