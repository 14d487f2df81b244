"""What the coordinator keeps about executions, batches and branches, and its timer thread.

A ``Batch`` is the branches of one execution (key: the execution id) or of one
``ctx.map``/``ctx.parallel`` (key: ``"<parent branch>/<op id>"``), with the
``BatchProgress`` that the completion policy decides on. ``seed`` counts into a
rebuilt batch the branches that the store says have already ended.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from actors.branch import BranchSpec, decode_error
from actors.errors import StepFailedError
from actors.messages import BranchStatus, ExecutionStatus, OperationUpdate
from actors.policies import BatchProgress, BatchResult


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


@dataclass(eq=False)
class TrackedBranch:
    spec: BranchSpec
    batch: Batch
    state: str = "pending"  # pending | dispatched | suspended | aborted | done
    epoch: int = 0
    worker: int | None = None
    aborts: int = 0
    resume_pending: bool = False  # resumed while its old run had not yet reported eviction


@dataclass(eq=False)
class TrackedExecution:
    execution_id: str
    batch: Batch
    status: ExecutionStatus = ExecutionStatus.RUNNING
    result: BatchResult | None = None
    waiters: list[Any] = field(default_factory=list)


def seed(batch: Batch, branches: dict[str, TrackedBranch], records: dict[str, Any],
     deserialize: Callable[[bytes], Any]) -> None:
    """Count branches that already ended (from the store) into a rebuilt batch."""
    for branch_id in list(batch.waiting):
        record = records.get(branch_id)
        if record is None or record.status not in (BranchStatus.SUCCEEDED, BranchStatus.FAILED):
            continue
        batch.waiting.remove(branch_id)
        branches[branch_id].state = "done"
        index = branches[branch_id].spec.index
        if record.status is BranchStatus.SUCCEEDED:
            value = deserialize(record.result) if record.result is not None else None
            batch.progress.succeed(index, value)
        else:
            error = (decode_error(record.error, deserialize) if record.error
                     else StepFailedError("failed without a logged error", "unknown"))
            batch.progress.fail(index, error)


def describe(execution: TrackedExecution, branches: dict[str, TrackedBranch]) -> dict[str, Any]:
    """An execution's status and its branches' counts: pending, running, suspended, done, failed."""
    counts = dict.fromkeys(("pending", "running", "suspended", "done", "failed"), 0)
    if execution.result is not None:  # finished, maybe in an earlier system: count its result
        for status in execution.result.statuses:
            counts["done" if status is BranchStatus.SUCCEEDED else "failed"] += 1
        return {"status": execution.status.value, "total": len(execution.result.statuses),
                **counts}
    for branch_id in execution.batch.branch_ids:
        counts[_progress_state(branches.get(branch_id))] += 1
    overall = execution.status
    if overall is ExecutionStatus.RUNNING and counts["running"] == 0 and counts["suspended"]:
        overall = ExecutionStatus.SUSPENDED
    return {"status": overall.value, "total": len(execution.batch.branch_ids), **counts}


def _progress_state(branch: TrackedBranch | None) -> str:
    if branch is None or branch.state in ("pending", "aborted"):
        return "pending"
    if branch.state == "done":
        ok = branch.batch.progress.result_status(branch.spec.index) is BranchStatus.SUCCEEDED
        return "done" if ok else "failed"
    return "running" if branch.state == "dispatched" else "suspended"
