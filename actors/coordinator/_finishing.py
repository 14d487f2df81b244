"""Finishing a batch: its result written, then (once durable) its waiters told.

When a batch finishes (``Completion`` decides), its ``BatchResult`` is written
through the checkpoint actor: the execution's result, or the parent's
``CHILDREN`` operation; the acknowledgement comes back as ``Durable`` with an
``ExecutionResultWritten``/``ChildrenResultWritten`` continuation, and only then
are waiters answered or the parent resumed. A failed write is tried again.

    self._finish(batch)  # -> Durable(ExecutionResultWritten(...)) -> waiters answered
"""

from __future__ import annotations

import heapq
import time
from typing import Any

from actors import tracelog
from actors.coordinator._batches import (
    Batch,
    ExecutionMode,
)
from actors.coordinator._continuations import (
    ChildrenResultWritten,
    ExecutionResultWritten,
    ResultWritten,
)
from actors.coordinator._core import CoordinatorCore
from actors.coordinator._spans import record_end
from actors.errors import (
    LeaseLostError,
    StepFailedError,
)
from actors.policies import BatchResult, BatchStatus
from actors.protocol._checkpoint import (
    Checkpoint,
    DropLease,
)
from actors.protocol._coordinator import (
    Durable,
)
from actors.protocol._handles import Forward
from actors.protocol._scheduler import DependencyDone
from actors.records._status import ExecutionStatus, OpKind, OpStatus
from actors.records._updates import ExecutionUpdate, OperationUpdate

log = tracelog.get_logger("actors.execution")

_FINISH_RETRY = 1.0  # seconds before a batch result whose write failed is written again


class BatchFinishing(CoordinatorCore):
    """Writing batch results and acting once they are durable; see the module docstring."""

    def _finish(self, batch: Batch) -> None:
        """Write the batch's result (again, after a failed write or a lost checkpoint actor)."""
        if not self._runs(batch.execution_id):
            return
        batch.finishing = True
        result = batch.progress.result()
        payload = self._serialize_result(result)
        batch.result_payload = payload
        if batch.parent is None:
            failed = result.status is BatchStatus.FAILURE_TOLERANCE_EXCEEDED
            status = ExecutionStatus.FAILED if failed else ExecutionStatus.SUCCEEDED
            update: Any = ExecutionUpdate(batch.execution_id, status, result=payload)
            written: ResultWritten = ExecutionResultWritten(batch.key, batch.serial, failed)
        else:
            p = batch.parent
            update = OperationUpdate(p.execution_id, p.branch_id, p.op_id, OpKind.CHILDREN, p.name,
                                     OpStatus.SUCCEEDED, attempt=p.attempt, payload=payload)
            written = ChildrenResultWritten(batch.key, batch.serial)
        branch_id = batch.key if batch.parent is None else batch.parent.branch_id
        self._to_checkpoint(Checkpoint(branch_id, update,
                                         reply_to=Forward(self._wired().self_ref, written)))
        if batch.parent is not None:
            # A parent still parked may go on now; an evicted one waits for the durable word.
            parent = batch.parent
            early = DependencyDone(parent.branch_id, parent.op_id, payload, durable=False)
            self._to_scheduler(early)

    def _serialize_result(self, result: BatchResult) -> bytes:
        try:
            return self._serialize(result)
        except Exception:  # an error that cannot be kept: keep its name and text instead
            errors = tuple(None if e is None else StepFailedError(str(e), type(e).__qualname__)
                           for e in result.errors)
            return self._serialize(BatchResult(result.results, errors, result.statuses,
                                               result.status))

    def _durable(self, message: Durable) -> None:
        (written,) = message.what
        assert isinstance(written, ExecutionResultWritten | ChildrenResultWritten)
        key = written.key
        batch = self._batches.get(key)
        if batch is None or batch.serial != written.serial:
            return  # its execution was cancelled, lost or retried meanwhile: not this batch's
        if message.error is not None:
            if isinstance(message.error, LeaseLostError):
                self._lose(batch.execution_id,
                           self._reader.read_execution(batch.execution_id))
                return
            # Nobody is told the batch ended until its result is durable; try again later.
            log.error("batch.result_not_durable", batch=key, error=repr(message.error))
            heapq.heappush(self._finish_retries,
                           (self._clock.time() + _FINISH_RETRY, key, batch.serial))
            return
        batch.result_durable = True
        if isinstance(written, ExecutionResultWritten):
            execution = self._executions[key]
            execution.mode = ExecutionMode.FINISHED
            execution.status = written.status
            execution.result = batch.progress.result()
            record_end(execution.trace, execution.status, execution.result,
                       execution.trace_events, time.time_ns())
            execution.trace = None
            self._keeper.drop(key)
            self._to_checkpoint(DropLease(key))
            log.info("execution.finished", execution_id=key, status=written.status.value)
            self._answer_waiters(execution)
        elif batch.parent is not None:
            # The scheduler resumes the parent once: in place if parked, else by replay.
            parent = batch.parent
            self._to_scheduler(DependencyDone(parent.branch_id, parent.op_id,
                                                        batch.result_payload))
