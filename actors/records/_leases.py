"""Who runs an execution: executors, leases, claims and signals, as the store keeps them.

Several systems (service processes, hosts) may share one store. Each system is
an *executor*; every unfinished execution is run by the one executor that holds
its **lease**: ``(owner, epoch, expires_at)`` in the execution's row.

* **Creating** an execution and its branches is one transaction that also gives
  the creator the lease (epoch 1). Creating an id that exists changes nothing:
  the caller learns what is stored and decides (the same fingerprint: run or
  observe it; another one: ``ExecutionMismatchError``).
* **Claiming** takes a lease that nobody holds, that expired, or that this same
  executor held in an earlier life; it bumps the epoch. Claims are conditional
  writes, so two systems never both take one execution.
* **Fencing.** The owner's checkpoint writes carry the epochs it holds
  (``LeaseFence``); the store refuses, in the same transaction, every write to an
  execution whose owner or epoch differs: a stale owner (paused, partitioned,
  slow) can never write over a new one. This extends the per-branch run epochs
  the checkpoint actor fences with to the whole store.
* **Renewing** (``LeaseRound``): the owner pushes the expiry of every lease it
  holds forward, learns which it lost, takes the signals written for its
  executions by other systems, and takes over orphans, all in one transaction.
* **Signals**: outside input for an execution owned elsewhere (a callback
  completed, a cancel) is written to the store first, with a signal row that its
  owner consumes at its next round.

Everything here is a plain value; the store implements the rules
(``actors.store.Store``) and the checkpoint actor, the system's only writer,
calls it (``actors.checkpointing.LeaseDesk``, through the requests of
``actors.protocol``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from actors.records._rows import ExecutionRecord
from actors.records._status import ExecutionStatus

ACTIVE_EXECUTIONS = frozenset({ExecutionStatus.RUNNING, ExecutionStatus.SUSPENDED})


class SignalKind(StrEnum):
    """What outside input a signal carries for an execution's owner."""

    CALLBACK = "CALLBACK"  # an operation of the execution was settled by another system
    CANCEL = "CANCEL"  # another system cancelled the execution


@dataclass(frozen=True, slots=True)
class ExecutorInfo:
    """One system sharing the store: its id (``SystemConfig.executor_id``), host and pid."""

    executor_id: str
    host: str
    pid: int


@dataclass(frozen=True, slots=True)
class Lease:
    """The right to run ``execution_id``: only ``owner`` at ``epoch`` may write it."""

    execution_id: str
    owner: str
    epoch: int
    expires_at: float


@dataclass(frozen=True, slots=True)
class LeaseFence:
    """What a writer holds: its executor id and, per execution, the lease epoch.

    ``Store.commit(..., fence=...)`` refuses the whole batch with
    ``LeaseLostError`` (naming the executions) if any update's execution is not
    held by ``executor`` at the epoch given here.
    """

    executor: str
    epochs: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class BranchInput:
    """A top-level branch written with its execution: id, index and serialized input."""

    branch_id: str
    index: int
    input: bytes


@dataclass(frozen=True, slots=True)
class NewExecution:
    """An execution to create, with all its top-level branches, in one transaction.

    ``spec`` is the serialized ``ExecutionSpec`` (what any system needs to run it);
    ``fingerprint`` identifies what it was created from (``fingerprint_of``).
    """

    execution_id: str
    kind: str
    fingerprint: str
    spec: bytes
    branches: tuple[BranchInput, ...]
    deadline_at: float | None = None


@dataclass(frozen=True, slots=True)
class ExecutionClaim:
    """The outcome of creating, claiming or reopening: the row as stored afterwards.

    ``lease`` is the lease the caller holds now (None: another executor runs it,
    or it is finished); ``created`` says this call created it.
    """

    record: ExecutionRecord
    created: bool = False
    lease: Lease | None = None


@dataclass(frozen=True, slots=True)
class Signal:
    """Outside input for an execution, written for its owner to consume."""

    signal_id: int
    execution_id: str
    kind: SignalKind
    branch_id: str | None = None
    op_id: str | None = None


@dataclass(frozen=True, slots=True)
class LeaseRound:
    """What one renewal transaction found.

    ``renewed``: leases still held, with their new expiry. ``lost``: executions
    held before that another executor (or a newer epoch) owns now, or that are
    gone, as stored (None when deleted). ``claimed``: orphans taken over.
    ``signals``: consumed signals for executions held after the round.
    ``next_expiry``: the soonest expiry of an active lease held by another
    executor, when to look for orphans again (None: nothing to watch).
    """

    renewed: tuple[Lease, ...]
    lost: tuple[tuple[str, ExecutionRecord | None], ...]
    claimed: tuple[ExecutionClaim, ...]
    signals: tuple[Signal, ...]
    next_expiry: float | None


def held_epochs(leases: Mapping[str, Lease]) -> dict[str, int]:
    """The epoch of every lease in ``leases``, by execution id (what a ``LeaseFence`` holds)."""
    return {eid: lease.epoch for eid, lease in leases.items()}
