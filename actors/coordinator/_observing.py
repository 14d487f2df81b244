"""Observing executions and answering the callers that wait on them.

An execution is tracked as owned (run here), observed (run by another system:
answered from the store) or finished. ``status``/``progress`` are answered from
what is tracked or stored, and ``result`` waiters of observed executions are
answered by polling the store (at once when it says it changed).

    coordinator.ask(AwaitResult(execution_id, reply_to))  # answered when it finishes
"""

from __future__ import annotations

from typing import Any

from actors import tracelog
from actors.coordinator._batches import (
    ExecutionMode,
    TrackedExecution,
    describe,
    describe_stored,
)
from actors.coordinator._continuations import Claimed
from actors.coordinator._core import CoordinatorCore
from actors.coordinator._faults import is_lasting
from actors.errors import (
    ExecutionCancelledError,
    ExecutionStateError,
    UnknownExecutionError,
)
from actors.protocol._checkpoint import (
    ClaimExecution,
)
from actors.protocol._coordinator import (
    AwaitResult,
    DescribeExecution,
    StoreChanged,
)
from actors.protocol._handles import AnswerTo
from actors.records._rows import ExecutionRecord
from actors.records._status import ExecutionStatus
from actors.store._contract import claimable

log = tracelog.get_logger("actors.execution")


class ExecutionObserving(CoordinatorCore):
    """Tracked executions, what they answer, and their waiters; see the module docstring."""

    def _observe(self, record: ExecutionRecord) -> TrackedExecution:
        eid = record.execution_id
        tracked = self._executions.get(eid)
        if tracked is None:
            tracked = self._executions[eid] = TrackedExecution(eid, ExecutionMode.OBSERVED)
        tracked.mode, tracked.batch, tracked.status = (
            ExecutionMode.OBSERVED, None, record.status)
        tracked.fingerprint, tracked.deadline_at = record.fingerprint, record.deadline_at
        return tracked

    def _finished_from(self, record: ExecutionRecord) -> TrackedExecution:
        tracked = self._observe(record)
        tracked.mode, tracked.status = ExecutionMode.FINISHED, record.status
        if record.result is not None:
            tracked.result = self._deserialize(record.result)
        self._answer_waiters(tracked)
        return tracked

    def _known(self, execution_id: str) -> TrackedExecution:
        """The tracked execution, or one loaded from the store (observed or finished)."""
        tracked = self._executions.get(execution_id)
        if tracked is not None:
            return tracked
        record = self._reader.read_execution(execution_id)
        if record is None:
            raise UnknownExecutionError(
                f"no execution {execution_id!r} in this system's store; start it with map() "
                "or parallel()")
        if record.status.finished:
            return self._finished_from(record)
        return self._observe(record)

    def _describe(self, message: DescribeExecution) -> dict[str, Any]:
        tracked = self._known(message.execution_id)
        if tracked.mode is ExecutionMode.OBSERVED:
            record = self._reader.read_execution(tracked.execution_id)
            if record is None:
                raise UnknownExecutionError(f"execution {tracked.execution_id!r} was deleted")
            if record.status.finished:
                tracked = self._finished_from(record)
            else:
                found = describe_stored(record, self._reader.read_branches(record.execution_id))
                return self._with_fault(found)
        return self._with_fault(describe(tracked, self._branches))

    def _await(self, message: AwaitResult) -> None:
        try:
            tracked = self._known(message.execution_id)
        except UnknownExecutionError as exc:
            message.reply_to.set_exception((type(exc), exc, None))
            return
        tracked.waiters.append(message.reply_to)
        if tracked.mode is ExecutionMode.OBSERVED:
            tracked.next_poll = self._clock.time()
            self._rearm()
        elif tracked.mode is ExecutionMode.OWNED:
            fault = self._current_fault()
            if fault is not None and is_lasting(fault):
                self._fail_waiters(tracked, fault)
        self._answer_waiters(tracked)

    def _answer_waiters(self, tracked: TrackedExecution) -> None:
        if tracked.mode is not ExecutionMode.FINISHED or not tracked.waiters:
            return
        waiters, tracked.waiters = tracked.waiters, []
        for waiter in waiters:
            if tracked.status is ExecutionStatus.CANCELLED:
                cancelled = ExecutionCancelledError(
                    f"execution {tracked.execution_id!r} was cancelled; system.retry(id) runs "
                    "it again from its log")
                waiter.set_exception((ExecutionCancelledError, cancelled, None))
            elif tracked.result is None:
                missing = ExecutionStateError(
                    f"execution {tracked.execution_id!r} is {tracked.status.value} without a "
                    "stored result")
                waiter.set_exception((ExecutionStateError, missing, None))
            else:
                waiter.set(tracked.result)

    def _fail_waiters(self, tracked: TrackedExecution, error: BaseException) -> None:
        waiters, tracked.waiters = tracked.waiters, []
        for waiter in waiters:
            waiter.set_exception((type(error), error, None))

    def _poll_observed(self) -> None:
        """Read the store for observed executions that someone waits on."""
        now = self._clock.time()
        for tracked in list(self._executions.values()):
            if tracked.mode is not ExecutionMode.OBSERVED or not tracked.waiters or (
                    tracked.next_poll > now):
                continue
            tracked.next_poll = now + self._poll_interval
            record = self._reader.read_execution(tracked.execution_id)
            if record is None:
                self._fail_waiters(tracked, UnknownExecutionError(
                    f"execution {tracked.execution_id!r} was deleted"))
            elif record.status.finished:
                self._finished_from(record)
            elif self._keeper.recover and claimable(record, self._executor, now) and (
                    tracked.execution_id not in self._claiming) and (
                    tracked.execution_id not in self._unloadable):
                self._claiming[tracked.execution_id] = []
                self._to_checkpoint(ClaimExecution(
                    tracked.execution_id, AnswerTo(self._me(), Claimed(tracked.execution_id))))

    def _store_changed(self, message: StoreChanged) -> None:
        """Read now what changed: observed executions' rows, and (owned) their signals."""
        now = self._clock.time()
        wanted = set(message.execution_ids)
        owned = False
        for tracked in self._executions.values():
            if wanted and tracked.execution_id not in wanted:
                continue
            if tracked.mode is ExecutionMode.OBSERVED:
                tracked.next_poll = now
            elif tracked.active:
                owned = True
        self._poll_observed()
        if owned or not wanted:
            self._keeper.soon()

    def _next_poll(self) -> float | None:
        return min((t.next_poll for t in self._executions.values()
                    if t.mode is ExecutionMode.OBSERVED and t.waiters), default=None)
