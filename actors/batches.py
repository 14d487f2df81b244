"""What the coordinator keeps about executions, batches and branches.

A ``Batch`` is the branches of one execution (key: the execution id) or of one
``ctx.map``/``ctx.parallel`` (key: ``"<parent branch>/<op id>"``), with the
``BatchProgress`` that the completion policy decides on. ``seed`` counts into a
rebuilt batch the branches that the store says have already ended.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from actors.branch import BranchSpec, decode_error
from actors.errors import StepFailedError
from actors.messages import (
    BranchRecord,
    BranchStatus,
    ExecutionRecord,
    ExecutionStatus,
    OperationUpdate,
)
from actors.ownership import ExecutionSpec, Lease
from actors.policies import BatchProgress, BatchResult
from actors.spans import ExecutionTrace, SpanEvent, TraceContext


class BranchState(StrEnum):
    PENDING = "pending"  # not dispatched yet
    DISPATCHED = "dispatched"  # a run of it is live on a worker (maybe parked)
    SUSPENDED = "suspended"  # evicted: the scheduler resumes it
    ABORTED = "aborted"  # its run could not checkpoint; dispatched again after a backoff
    DONE = "done"


class ExecutionMode(StrEnum):
    OWNED = "owned"  # this system holds its lease and runs it
    OBSERVED = "observed"  # another system runs it: answered from the store
    FINISHED = "finished"  # its outcome is known (durable)


@dataclass(eq=False)
class Batch:
    key: str  # the execution id, or "<parent branch>/<op id>" for children
    execution_id: str
    parent: OperationUpdate | None
    progress: BatchProgress
    branch_ids: list[str]
    max_concurrency: int | None
    waiting: deque[str] = field(default_factory=deque)
    running: int = 0
    result_durable: bool = False
    result_payload: bytes | None = None
    finishing: bool = False  # its result was sent to be written (once: late reports add nothing)
    serial: int = 0  # tells this batch from a later one under the same key (a retry)
    trace: TraceContext | None = None  # the parent of its branches' run spans


@dataclass(eq=False)
class TrackedBranch:
    spec: BranchSpec
    batch: Batch
    state: BranchState = BranchState.PENDING
    epoch: int = 0
    worker: int | None = None
    aborts: int = 0
    resume_pending: bool = False  # resumed while its old run had not yet reported eviction
    suspended_on: OperationUpdate | None = None  # what its eviction waits for


@dataclass(eq=False)
class TrackedExecution:
    execution_id: str
    mode: ExecutionMode
    batch: Batch | None = None  # owned ones only
    status: ExecutionStatus = ExecutionStatus.RUNNING
    result: BatchResult | None = None
    waiters: list[Any] = field(default_factory=list)
    fingerprint: str | None = None
    spec: ExecutionSpec | None = None
    deadline_at: float | None = None
    lease: Lease | None = None
    cancelling: bool = False
    next_poll: float = 0.0  # observed: when to read the store again for its waiters
    trace: ExecutionTrace | None = None  # its span, while this system runs it and traces it
    trace_events: list[SpanEvent] = field(default_factory=list)  # claims, for its span

    @property
    def active(self) -> bool:
        return self.mode is ExecutionMode.OWNED and not self.status.finished


def seed(batch: Batch, branches: dict[str, TrackedBranch], records: dict[str, Any],
         deserialize: Callable[[bytes], Any]) -> None:
    """Count branches that already ended (from the store) into a rebuilt batch."""
    for branch_id in list(batch.waiting):
        record = records.get(branch_id)
        if record is None or record.status not in (BranchStatus.SUCCEEDED, BranchStatus.FAILED):
            continue
        batch.waiting.remove(branch_id)
        branches[branch_id].state = BranchState.DONE
        index = branches[branch_id].spec.index
        if record.status is BranchStatus.SUCCEEDED:
            value = deserialize(record.result) if record.result is not None else None
            batch.progress.succeed(index, value)
        else:
            error = (decode_error(record.error, deserialize) if record.error
                     else StepFailedError("failed without a logged error", "unknown"))
            batch.progress.fail(index, error)


_COUNTS = ("pending", "running", "suspended", "done", "failed")


def describe(execution: TrackedExecution, branches: dict[str, TrackedBranch]) -> dict[str, Any]:
    """An execution's status and its branches' counts: pending, running, suspended, done, failed."""
    counts = dict.fromkeys(_COUNTS, 0)
    if execution.result is not None:  # finished, maybe in an earlier system: count its result
        for status in execution.result.statuses:
            counts["done" if status is BranchStatus.SUCCEEDED else "failed"] += 1
        return {"status": execution.status.value, "total": len(execution.result.statuses),
                **counts}
    batch = execution.batch
    ids = batch.branch_ids if batch is not None else []
    for branch_id in ids:
        counts[_progress_state(branches.get(branch_id))] += 1
    overall = execution.status
    if overall is ExecutionStatus.RUNNING and counts["running"] == 0 and counts["suspended"]:
        overall = ExecutionStatus.SUSPENDED
    return {"status": overall.value, "total": len(ids), **counts}


def describe_stored(record: ExecutionRecord, branches: Sequence[BranchRecord]) -> dict[str, Any]:
    """The same counts for an execution another system runs, as its store rows say."""
    counts = dict.fromkeys(_COUNTS, 0)
    top = [b for b in branches if b.parent_branch_id is None]
    for branch in top:
        counts[_STORED_STATE[branch.status]] += 1
    overall = record.status
    if overall is ExecutionStatus.RUNNING and counts["running"] == 0 and counts["suspended"]:
        overall = ExecutionStatus.SUSPENDED
    return {"status": overall.value, "total": record.branch_count, **counts,
            "owner": record.owner}


_STORED_STATE = {
    BranchStatus.PENDING: "pending",
    BranchStatus.RUNNING: "running",
    BranchStatus.SUSPENDED: "suspended",
    BranchStatus.SUCCEEDED: "done",
    BranchStatus.FAILED: "failed",
}


def _progress_state(branch: TrackedBranch | None) -> str:
    if branch is None or branch.state in (BranchState.PENDING, BranchState.ABORTED):
        return "pending"
    if branch.state is BranchState.DONE:
        ok = branch.batch.progress.result_status(branch.spec.index) is BranchStatus.SUCCEEDED
        return "done" if ok else "failed"
    return "running" if branch.state is BranchState.DISPATCHED else "suspended"
