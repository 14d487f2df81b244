"""What a worker is told: branches to run, and which of its runs are stale."""

from __future__ import annotations

from dataclasses import dataclass

from actors.branches._spec import BranchSpec
from actors.records._rows import BranchLog
from actors.spans import TraceContext


@dataclass(frozen=True, slots=True)
class RunBranch:
    """Run (or replay) a branch from ``log``; ``epoch`` fences stale reports of older runs."""

    spec: BranchSpec
    epoch: int
    log: BranchLog
    trace: TraceContext | None = None  # the parent of this run's span (None: not traced)


FENCE_ALL = 2**62  # an execution floor above every run epoch: none of its runs is current


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
