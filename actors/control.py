"""Messages that control executions and fence runs, and the ``AnswerTo`` continuation.

* The service asks the coordinator to ``CancelExecution``, ``RetryExecution``,
  ``DeleteExecution``, and for an execution's ``CurrentFault``.
* The coordinator fences runs on the workers (``FenceRuns``) before it
  dispatches them again elsewhere, cancels, or loses a lease, so that a queued
  or running copy learns it is stale **before its next operation**, not after
  its next step; and it tells the workers until when the system's leases are
  confirmed (``LeaseValidUntil``), so that a paused system that wakes past its
  lease starts no step before a renewal says it still owns the work.
* ``AnswerTo`` is a reply handle that tells its target ``Answered(what, value)``:
  a continuation for requests whose answer the coordinator needs (an
  execution created, a lease round), so that no thread of it waits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actors.messages import ActorLike, ReplyTo, exception_of


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


FENCE_ALL = 2**62  # an execution floor above every run epoch: none of its runs is current


@dataclass(frozen=True, slots=True)
class WorkerBack:
    """A lost worker (``WorkerLost``) was restarted and listens again: dispatch to it."""

    worker_id: str


@dataclass(frozen=True, slots=True)
class FenceRuns:
    """Runs older than these epochs are stale: per branch, and per execution (a floor).

    A worker aborts a stale run before it calls its next operation, and reports a
    queued one as aborted before it starts. An execution's floor is set, not
    raised: ``FENCE_ALL`` stops every run of a cancelled or lost execution, and a
    coordinator that owns it again lowers it to its next epoch. Run epochs only
    grow within a coordinator, so a floor never lets an older run through.
    """

    branches: tuple[tuple[str, int], ...] = ()
    executions: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class RunsFrom:
    """Runs older than ``epoch`` are stale on this worker; the runs it holds may start now.

    The coordinator tells each worker when it is wired and when a worker's process
    restarted (``WorkerBack``). A worker of a durable system holds every run until
    then: a dispatch made to its previous process (the coordinator dispatched it
    elsewhere when that process died) can reach the new one, and must not run there.
    """

    epoch: int


@dataclass(frozen=True, slots=True)
class LeaseValidUntil:
    """This system's leases are confirmed until ``deadline`` (``time.monotonic()`` seconds).

    Past it, a worker starts no operation until a renewal confirms them again.
    """

    deadline: float


@dataclass(frozen=True, slots=True)
class ForgetExecution:
    """The scheduler drops the timers and parked branches of a cancelled or lost execution."""

    execution_id: str


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


class AnswerTo:
    """A reply handle: tells ``target`` ``Answered(what, value)`` (or the error) when answered.

        checkpoint.tell(ClaimExecution("nightly-1", AnswerTo(coordinator, "claimed", "nightly-1")))
    """

    __slots__ = ("target", "what")

    def __init__(self, target: ActorLike, *what: Any) -> None:
        self.target = target
        self.what = what

    def __reduce__(self) -> tuple[Any, ...]:
        return (AnswerTo, (self.target, *self.what))

    def set(self, value: Any = None) -> None:
        self.target.tell(Answered(self.what, value))

    def set_exception(self, exc_info: Any = None) -> None:
        self.target.tell(Answered(self.what, None, exception_of(exc_info)))


__all__ = [
    "FENCE_ALL",
    "AnswerTo",
    "Answered",
    "CancelExecution",
    "CurrentFault",
    "DeleteExecution",
    "FenceRuns",
    "ForgetExecution",
    "LeaseValidUntil",
    "RetryExecution",
    "RunsFrom",
    "SchedulerLost",
    "StoreChanged",
    "WorkerBack",
]
