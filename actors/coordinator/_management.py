"""Managing executions: cancel, retry, delete, and deadlines that cancel.

A cancel of an execution run here is written (CANCELLED) before its runs stop
and its callers hear; one run elsewhere is written in the store, and its owner
sees it in its next lease round. A retry reopens a FAILED or CANCELLED
execution and resumes it from its log; a delete refuses an unfinished one.

    coordinator.ask(CancelExecution(execution_id, reply_to))  # True: it was cancelled
"""

from __future__ import annotations

import time
from typing import Any

from actors import tracelog
from actors.coordinator._batches import (
    ExecutionMode,
    TrackedExecution,
)
from actors.coordinator._continuations import CancelledInStore, CancelWritten, Deleted, Reopened
from actors.coordinator._core import CoordinatorCore
from actors.coordinator._spans import record_end
from actors.errors import (
    ExecutionStateError,
    LeaseLostError,
    UnknownExecutionError,
)
from actors.protocol._checkpoint import (
    CancelInStore,
    Checkpoint,
    DeleteInStore,
    DropLease,
    ReopenExecution,
)
from actors.protocol._coordinator import (
    CancelExecution,
    DeleteExecution,
    RetryExecution,
)
from actors.protocol._handles import AnswerTo
from actors.records._leases import (
    ExecutionClaim,
)
from actors.records._rows import ExecutionRecord
from actors.records._status import ExecutionStatus
from actors.records._updates import ExecutionUpdate
from actors.replies import ReplyTo

log = tracelog.get_logger("actors.execution")


class ExecutionManagement(CoordinatorCore):
    """Cancel, retry, delete and deadlines; see the module docstring."""

    def _request(self, reply_to: ReplyTo) -> int:
        rid = next(self._request_ids)
        self._requests[rid] = reply_to
        return rid

    def _cancel(self, message: CancelExecution) -> None:
        try:
            tracked = self._known(message.execution_id)
        except UnknownExecutionError as exc:
            message.reply_to.set_exception((type(exc), exc, None))
            return
        if tracked.active:
            self._cancel_owned(tracked, message.reply_to)
        elif tracked.mode is ExecutionMode.FINISHED:
            message.reply_to.set(False)
        else:
            rid = self._request(message.reply_to)
            self._to_checkpoint(CancelInStore(tracked.execution_id,
                                                AnswerTo(self._me(), CancelledInStore(rid))))

    def _cancel_owned(self, tracked: TrackedExecution, reply_to: ReplyTo | None,
                      reason: str = "cancelled") -> None:
        eid = tracked.execution_id
        replies = self._cancel_replies.setdefault(eid, [])
        if reply_to is not None:
            replies.append(reply_to)
        if tracked.cancelling:
            return  # its write is in flight: answered together when it lands
        tracked.cancelling = True
        log.info("execution.cancelling", execution_id=eid, reason=reason)
        self._write_cancel(eid)

    def _write_cancel(self, eid: str) -> None:
        self._to_checkpoint(Checkpoint(eid, ExecutionUpdate(eid, ExecutionStatus.CANCELLED),
                                         reply_to=AnswerTo(self._me(), CancelWritten(eid))))

    def _cancel_written(self, eid: str, error: BaseException | None) -> None:
        replies = self._cancel_replies.pop(eid, [])
        tracked = self._executions.get(eid)
        if error is not None:
            if tracked is not None:
                tracked.cancelling = False
            if isinstance(error, LeaseLostError):
                self._lose(eid, self._reader.read_execution(eid))
            for reply in replies:
                reply.set_exception((type(error), error, None))
            return
        if tracked is not None and tracked.active:
            self._cancelled(tracked)
        for reply in replies:
            reply.set(True)

    def _cancelled(self, tracked: TrackedExecution) -> None:
        """The execution is CANCELLED in the store: stop its runs, answer its callers."""
        eid = tracked.execution_id
        self._stop_runs(eid)
        tracked.mode, tracked.status, tracked.batch = (
            ExecutionMode.FINISHED, ExecutionStatus.CANCELLED, None)
        tracked.cancelling = False
        record_end(tracked.trace, ExecutionStatus.CANCELLED, None, tracked.trace_events,
                   time.time_ns())
        tracked.trace = None
        self._keeper.drop(eid)
        self._to_checkpoint(DropLease(eid))
        log.info("execution.cancelled", execution_id=eid)
        self._answer_waiters(tracked)

    def _cancelled_in_store(self, rid: int, outcome: tuple[bool, ExecutionRecord] | None,
                            error: BaseException | None) -> None:
        reply = self._requests.pop(rid, None)
        if reply is None:
            return
        if outcome is None:
            reply.set_exception((type(error), error, None))
            return
        cancelled, record = outcome
        self._observe(record) if not record.status.finished else self._finished_from(record)
        reply.set(cancelled)

    def _retry(self, message: RetryExecution) -> None:
        eid = message.execution_id
        tracked = self._executions.get(eid)
        if tracked is not None and tracked.active:
            error = ExecutionStateError(
                f"execution {eid!r} is still running here; only a FAILED or CANCELLED "
                "execution can be retried")
            message.reply_to.set_exception((ExecutionStateError, error, None))
            return
        record = self._reader.read_execution(eid)
        if record is None:
            unknown = UnknownExecutionError(f"no execution {eid!r} in this system's store")
            message.reply_to.set_exception((UnknownExecutionError, unknown, None))
            return
        timeout = None
        if record.spec is not None:
            timeout = self._deserialize(record.spec).timeout
        deadline = None if timeout is None else self._clock.time() + timeout
        rid = self._request(message.reply_to)
        self._to_checkpoint(ReopenExecution(eid, deadline,
                                              AnswerTo(self._me(), Reopened(rid))))

    def _reopened(self, rid: int, claim: ExecutionClaim | None,
                  error: BaseException | None) -> None:
        reply = self._requests.pop(rid, None)
        if claim is None:
            if reply is not None:
                reply.set_exception((type(error), error, None))
            return
        record = claim.record
        if claim.lease is None:
            state = ExecutionStateError(
                f"execution {record.execution_id!r} is {record.status.value}; only a FAILED or "
                "CANCELLED execution can be retried")
            if reply is not None:
                reply.set_exception((ExecutionStateError, state, None))
            return
        try:
            self._resume_owned(claim, None, retried=True)
        except Exception as exc:
            self._cannot_run(claim, exc)
            if reply is not None:
                reply.set_exception((type(exc), exc, None))
            return
        log.info("execution.retried", execution_id=record.execution_id)
        if reply is not None:
            reply.set("resumed")

    def _delete(self, message: DeleteExecution) -> None:
        eid = message.execution_id
        tracked = self._executions.get(eid)
        if tracked is not None and (tracked.active or tracked.mode is ExecutionMode.OBSERVED):
            record = self._reader.read_execution(eid)
            if record is not None and not record.status.finished:
                error = ExecutionStateError(
                    f"execution {eid!r} is {record.status.value}; cancel it (system.cancel) "
                    "before deleting it")
                message.reply_to.set_exception((ExecutionStateError, error, None))
                return
        rid = self._request(message.reply_to)
        self._to_checkpoint(DeleteInStore(eid, AnswerTo(self._me(), Deleted(eid, rid))))

    def _deleted(self, eid: str, rid: int, value: Any, error: BaseException | None) -> None:
        reply = self._requests.pop(rid, None)
        if error is None:
            self._executions.pop(eid, None)
            self._forget_branches(eid)
        if reply is None:
            return
        if error is not None:
            if isinstance(error, ValueError):
                error = ExecutionStateError(str(error))
            reply.set_exception((type(error), error, None))
        else:
            reply.set(value)

    def _check_deadlines(self) -> None:
        now = self._clock.time()
        for tracked in list(self._executions.values()):
            if tracked.active and not tracked.cancelling and tracked.deadline_at is not None and (
                    tracked.deadline_at <= now):
                self._cancel_owned(tracked, None, reason="deadline")

    def _next_deadline(self) -> float | None:
        return min((t.deadline_at for t in self._executions.values()
                    if t.active and not t.cancelling and t.deadline_at is not None),
                   default=None)
