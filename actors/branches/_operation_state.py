"""A branch run's place in its log, and the replay machinery every operation uses.

The n-th operation that ``run`` calls gets the op id ``str(n)``. On a replay the
context meets the same ids, finds what the log says about each (``_begin``), and
returns or raises what was logged instead of doing the work again. One
operation at a time, never nested (``_claim``); everything that must wait is a
suspension (``_suspend``), handed to the host.

    op_id, record = self._begin(OpKind.STEP, "charge")  # record: what the log holds
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors import tracelog
from actors.applog import AppLogger
from actors.branches._effects import Effects, HostBasics, Park, Write
from actors.branches._host import BranchSuspended
from actors.branches._spec import BranchSpec
from actors.branches._stored_errors import decode_error, encode_error
from actors.errors import (
    NonDeterminismError,
    StepFailedError,
)
from actors.policies import BatchResult
from actors.records._rows import BranchLog, OperationRecord
from actors.records._status import OpKind, OpStatus
from actors.records._updates import OperationUpdate
from actors.refs._ref import unspill


def describe_operation(kind: OpKind, name: str) -> str:
    """An operation as errors name it: ``step 'charge'``."""
    return f"{kind.value.lower()} {name!r}"



class OperationState:
    """A branch run's place in its log: op ids, replay, claims, suspension, updates.

    ``execution_id``, ``branch_id``, ``input`` (alias ``item``) and ``logger`` (a
    structlog logger of the application's configuration, bound with the execution
    and the branch, whose events also reach the system's trace; it logs nothing
    while ``is_replaying``) describe the run.
    """

    def __init__(self, spec: BranchSpec, log: BranchLog, host: HostBasics) -> None:
        self.execution_id = spec.execution_id
        self.branch_id = spec.branch_id
        self.input: Any = spec.input
        where = {"execution_id": spec.execution_id, "branch_id": spec.branch_id}
        cls = spec.branch_cls
        self.logger: Any = AppLogger(f"{cls.__module__}.{cls.__qualname__}", where,
                                     quiet=self._is_replaying)
        self._trace = tracelog.get_logger("actors.branch").bind(**where)  # the framework's events
        # Operations up to this id are in the log: calling them again is replaying them.
        self._logged_through = max((int(op.op_id) for op in log.operations
                                    if op.op_id.isdigit()), default=0)
        self._now = host.now
        self._serialize = host.serialize
        self._deserialize = host.deserialize
        # The run's epoch, when the host has one: its updates carry it from the start
        # instead of being copied by the host to add it (a copy per update per branch).
        self._epoch: int | None = getattr(host, "epoch", None)
        # A host that can tell a stale run is asked before every operation (a fence).
        self._ensure_current: Callable[[], None] | None = getattr(host, "ensure_current", None)
        self._log = log.by_op_id()
        self._calls = 0
        self._inside: str | None = None  # the step function or check running now
        self._busy: str | None = None  # the operation in progress, until its driver is done
        self._step_executions = 0
        self._suspended_on: OperationUpdate | None = None

    @property
    def item(self) -> Any:
        """The branch's input, as ``map`` calls it."""
        return self.input

    @property
    def is_replaying(self) -> bool:
        """Whether ``run`` is going again through operations its log already holds.

        True from the start of a replay until ``run`` calls the first operation
        that was not finished before; ``ctx.logger`` is quiet meanwhile, so a line
        is logged once, not once per replay.

            if not ctx.is_replaying:
                metrics.increment("orders.seen")
        """
        return self._calls < self._logged_through

    def _is_replaying(self) -> bool:
        return self._calls < self._logged_through

    @property
    def operations_called(self) -> int:
        """How many operations this run has called so far (the last op id)."""
        return self._calls

    @property
    def step_executions(self) -> int:
        """Step functions this run actually called (not answered from the log)."""
        return self._step_executions

    @property
    def suspended_on(self) -> OperationUpdate | None:
        """The operation whose suspension unwound this run, if any."""
        return self._suspended_on

    def _begin(self, kind: OpKind, name: str) -> tuple[str, OperationRecord | None]:
        """The next op id, and what the log holds for it; raises on a different operation."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"an operation needs a non-empty str name, not {name!r}")
        self._claim(describe_operation(kind, name))
        if self._ensure_current is not None:
            try:
                self._ensure_current()  # a stale run stops here, before its next step runs
            except BaseException:
                self._busy = None
                raise
        self._calls += 1
        op_id = str(self._calls)
        record = self._log.get(op_id)
        if record is not None and (record.kind is not kind or record.name != name):
            raise NonDeterminismError(
                self.branch_id, op_id, describe_operation(record.kind, record.name),
                describe_operation(kind, name),
            )
        return op_id, record

    def _claim(self, what: str) -> None:
        """Mark ``what`` in progress (its driver unmarks it); refuse it inside or beside another."""
        if self._suspended_on is not None:
            raise BranchSuspended(self._suspended_on)  # run() caught the first one; unwind again
        if self._inside is not None and self._called_from_inside():
            raise RuntimeError(
                f"{what} was called inside {self._inside!r}; operations cannot "
                "nest: call them from run(), one after the other"
            )
        if self._busy is not None:
            raise RuntimeError(
                f"{what} was called while {self._busy} is in progress; await each ctx "
                "operation before calling the next (for work side by side, use ctx.map or "
                "ctx.parallel)"
            )
        self._busy = what

    def _called_from_inside(self) -> bool:
        """Whether an operation called while user code runs is called by that code (nested)."""
        return True

    def _update(self, op_id: str, kind: OpKind, name: str, status: OpStatus,
                **fields: Any) -> OperationUpdate:
        return OperationUpdate(self.execution_id, self.branch_id, op_id, kind, name, status,
                               epoch=self._epoch, **fields)

    def _as_update(self, record: OperationRecord) -> OperationUpdate:
        return self._update(record.op_id, record.kind, record.name, record.status,
                            attempt=record.attempt, payload=record.payload, error=record.error,
                            due_at=record.due_at)

    def _sleep(self, timer: OperationUpdate) -> Effects[None]:
        """Suspend until ``timer.due_at``, unless it is already due."""
        if timer.due_at is not None and timer.due_at > self._now():
            yield from self._suspend(timer)

    def _suspend(self, op: OperationUpdate) -> Effects[bytes | None]:
        self._trace.debug("operation.suspending", op_id=op.op_id, kind=op.kind.value,
                          due_at=op.due_at)
        try:
            payload: bytes | None = yield Park(op)
        except BranchSuspended:
            self._suspended_on = op
            raise
        if self._ensure_current is not None:
            # Resumed in place, inside this operation: a retry or a condition check would run
            # user code again, so a run superseded while it was parked stops here.
            self._ensure_current()
        return payload

    def _fail(self, op_id: str, kind: OpKind, name: str, attempt: int,
              exc: BaseException) -> Effects[None]:
        # A warning: the branch may handle it, but a failed operation is worth seeing.
        self._trace.warning(f"{kind.value.lower()}.failed", op_id=op_id, attempt=attempt,
                         error=repr(exc))
        yield Write(self._update(op_id, kind, name, OpStatus.FAILED, attempt=attempt,
                                 error=encode_error(exc, self._serialize)), sync=True)

    def _load(self, payload: bytes | None) -> Any:
        return None if payload is None else unspill(self._deserialize(payload))

    def _logged_error(self, record: OperationRecord) -> BaseException:
        if record.error is None:
            described = describe_operation(record.kind, record.name)
            return StepFailedError(
                f"{described} is logged as failed without an error",
                "unknown",
            )
        return decode_error(record.error, self._deserialize)

    @staticmethod
    def _batch(value: object) -> BatchResult:
        if not isinstance(value, BatchResult):
            raise TypeError(
                f"a CHILDREN operation logged {type(value).__name__}, not a BatchResult"
            )
        return value

