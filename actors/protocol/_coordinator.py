"""What the coordinator is told: executions to run, branch reports, losses and faults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actors.branches._spec import BranchSpec
from actors.policies import Completion
from actors.records._leases import NewExecution
from actors.records._status import BranchStatus
from actors.records._updates import OperationUpdate
from actors.replies import ActorLike, ReplyTo
from actors.spans import ExecutionTrace, TraceContext


@dataclass(frozen=True, slots=True)
class BranchRan:
    """A worker's report: one run of a branch ended ``SUCCEEDED``, ``FAILED`` or ``SUSPENDED``."""

    branch_id: str
    epoch: int
    status: BranchStatus
    result: Any = None
    error: BaseException | None = None
    suspended_on: OperationUpdate | None = None


@dataclass(frozen=True, slots=True)
class BranchAborted:
    """A run could not go on because a checkpoint failed; nothing after it is durable."""

    branch_id: str
    epoch: int
    error: BaseException


@dataclass(frozen=True, slots=True)
class StartChildren:
    """A branch's ``ctx.map``/``ctx.parallel``: its children exist durably; schedule them."""

    parent: OperationUpdate
    specs: tuple[BranchSpec, ...]
    max_concurrency: int | None
    completion: Completion
    trace: TraceContext | None = None  # the parent of the children's run spans


@dataclass(frozen=True, slots=True)
class StartExecution:
    """Create an execution (or resume the one stored under ``execution_id``).

    Answered on ``reply_to`` with "created", "resumed", "finished" or "observing"
    (another system runs it) once the execution and its branches are durable, or
    with ``ExecutionMismatchError`` when the id names an execution made of other
    classes or items.
    """

    execution_id: str
    kind: str
    specs: tuple[BranchSpec, ...]
    max_concurrency: int | None
    completion: Completion
    reply_to: ReplyTo
    new: NewExecution | None = None  # the rows to create, with its spec and fingerprint
    trace: ExecutionTrace | None = None  # the execution's span, when the caller traces it


@dataclass(frozen=True, slots=True)
class AwaitResult:
    """Answer ``reply_to`` with the execution's ``BatchResult`` once it has finished."""

    execution_id: str
    reply_to: ReplyTo


@dataclass(frozen=True, slots=True)
class DescribeExecution:
    """Ask for an execution's status and progress counts."""

    execution_id: str


@dataclass(frozen=True, slots=True)
class WorkerLost:
    """The runtime saw a worker's process die; its branches must run elsewhere."""

    worker_id: str


@dataclass(frozen=True, slots=True)
class Durable:
    """A checkpoint the coordinator sent was acknowledged (``error`` None) or failed."""

    what: tuple[Any, ...]
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class CheckpointLost:
    """The checkpoint actor's process died: acknowledgements it held will never come."""


@dataclass(frozen=True, slots=True)
class Wire:
    """Tell the coordinator its own ref (as others reach it) and its workers' refs."""

    self_ref: ActorLike
    workers: tuple[ActorLike, ...]
    scheduler: ActorLike  # resumes suspended branches; children's results go to it


@dataclass(frozen=True, slots=True)
class RetryFinish:
    """The coordinator's reminder to write a batch result again after a store failure."""

    batch_key: str


@dataclass(frozen=True, slots=True)
class ResumeBranches:
    """The scheduler to the coordinator: replay these evicted branches (one wave, one message)."""

    branches: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class CancelExecution:
    """Cancel ``execution_id``: no new step starts, suspended branches never resume."""

    execution_id: str
    reply_to: ReplyTo


@dataclass(frozen=True, slots=True)
class RetryExecution:
    """Run a ``FAILED`` or ``CANCELLED`` execution again from its log."""

    execution_id: str
    reply_to: ReplyTo


@dataclass(frozen=True, slots=True)
class DeleteExecution:
    """Delete a finished execution's rows (the runtime then collects its blobs)."""

    execution_id: str
    reply_to: ReplyTo


@dataclass(frozen=True, slots=True)
class CurrentFault:
    """Ask for the fault that keeps ``execution_id`` from advancing now, or None."""

    execution_id: str


@dataclass(frozen=True, slots=True)
class SchedulerLost:
    """The scheduler's process died: the timers of evicted branches must be given again."""


@dataclass(frozen=True, slots=True)
class WorkerBack:
    """A lost worker (``WorkerLost``) was restarted and listens again: dispatch to it."""

    worker_id: str


@dataclass(frozen=True, slots=True)
class StoreChanged:
    """Rows of these executions changed in the store (a store that can notify, e.g.
    PostgreSQL's LISTEN/NOTIFY): observers read them now, an owner takes its signals now,
    instead of at their next poll or lease round. Empty: anything may have changed."""

    execution_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Answered:
    """What an ``AnswerTo`` handle was answered with: ``value``, or ``error``."""

    what: tuple[Any, ...]
    value: Any = None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class StoreFault:
    """The checkpoint actor's store failed (``error``), or works again (``None``)."""

    error: BaseException | None


@dataclass(frozen=True, slots=True)
class SystemFault:
    """A framework process could not be kept alive (``error``), or is back (``None``)."""

    process: str
    error: BaseException | None
