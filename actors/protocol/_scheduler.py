"""What the scheduler is told: suspensions, dependencies done, resumes to schedule."""

from __future__ import annotations

from dataclasses import dataclass

from actors.records._updates import OperationUpdate
from actors.replies import ReplyTo
from actors.spans import TraceContext


@dataclass(frozen=True, slots=True, order=True)
class SuspensionKey:
    """One suspension of one run of a branch: ``seq`` counts suspensions within the run."""

    branch_id: str
    epoch: int
    seq: int


@dataclass(frozen=True, slots=True)
class Suspend:
    """A branch parks on ``op``; its suspension checkpoint is deferred by ``delay`` seconds.

    The scheduler answers ``reply_to`` with a ``Verdict`` (``actors.scheduling``):
    ``Resume`` with a payload — go on in place, nothing was written, or it was and
    it does not matter — or ``EVICT`` once the suspension is durable: unwind and
    free the thread; a replay follows — or ``UNWIND``: stop, aborted, nothing of the
    suspension is durable (the checkpoint process restarted, or a newer run parked).
    ``coroutine`` says the branch parks as a suspended coroutine (an async branch),
    which costs memory, not a thread: it counts against another bound.
    """

    key: SuspensionKey
    op: OperationUpdate
    delay: float
    worker_id: str
    reply_to: ReplyTo
    coroutine: bool = False
    trace: TraceContext | None = None  # the span of the run that suspends


@dataclass(frozen=True, slots=True)
class DependencyDone:
    """What ``op_id`` of ``branch_id`` waited on is done (children's result, a callback).

    ``durable=False`` is said before its result is durable: it may resume a branch
    still parked in place (its children's own results are durable, so a replay
    could rebuild it), never an evicted one, whose replay reads the log; the
    durable word follows.
    """

    branch_id: str
    op_id: str
    payload: bytes | None
    durable: bool = True


@dataclass(frozen=True, slots=True)
class ScheduleResume:
    """An evicted branch waits on ``op_id``: resume it at ``due_at``, or (None) when its
    dependency is done (found suspended at start, or given again to a restarted scheduler)."""

    branch_id: str
    epoch: int
    op_id: str
    due_at: float | None


@dataclass(frozen=True, slots=True)
class ForgetExecution:
    """The scheduler drops the timers and parked branches of a cancelled or lost execution."""

    execution_id: str
