"""What the checkpoint actor is told: checkpoints, and requests about leases and rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from actors.records._leases import NewExecution
from actors.records._updates import OperationUpdate, Update
from actors.replies import ActorLike, ReplyTo
from actors.spans import TraceContext


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Ask the checkpoint actor to make ``update`` durable.

    ``update=None`` is an *empty checkpoint*: "make everything before me durable
    and give me my current operation log" — answered with the ``BranchLog`` of
    ``branch_id``. An update is answered with ``None`` once durable; a failed
    store call answers ``CheckpointError``. ``reply_to=None`` means nobody waits.
    """

    branch_id: str
    update: Update | None
    reply_to: ReplyTo | None = None
    epoch: int | None = None  # on a dispatch's empty checkpoint: the run now current
    trace: TraceContext | None = None  # the span it is written for (its batch's parent)


@dataclass(frozen=True, slots=True)
class Checkpoints:
    """Several checkpoints sent as one message (a dispatch wave): taken as one burst."""

    items: tuple[Checkpoint, ...]


def checkpoints(items: Sequence[Checkpoint]) -> Checkpoint | Checkpoints:
    """One message carrying ``items``: the checkpoint itself when there is only one."""
    return items[0] if len(items) == 1 else Checkpoints(tuple(items))


@dataclass(frozen=True, slots=True)
class CreateExecution:
    """Create ``new`` and take its lease, or learn what is stored under its id."""

    new: NewExecution
    reply_to: ReplyTo


@dataclass(frozen=True, slots=True)
class ClaimExecution:
    """Take over ``execution_id`` if its lease is free, expired, or this executor's."""

    execution_id: str
    reply_to: ReplyTo


@dataclass(frozen=True, slots=True)
class ReopenExecution:
    """``system.retry``: a FAILED or CANCELLED execution runs again, leased to this executor."""

    execution_id: str
    deadline_at: float | None
    reply_to: ReplyTo


@dataclass(frozen=True, slots=True)
class RenewLeases:
    """Renew every held lease, take signals, and claim up to ``claim_orphans`` orphans."""

    claim_orphans: int
    reply_to: ReplyTo
    skip: tuple[str, ...] = ()  # executions this system found it cannot run


@dataclass(frozen=True, slots=True)
class ReleaseLeases:
    """Give up these leases now (a clean shutdown): another system may take them at once."""

    execution_ids: tuple[str, ...]
    reply_to: ReplyTo | None = None
    everything: bool = False  # every lease held (a system that stops)


@dataclass(frozen=True, slots=True)
class DropLease:
    """Forget a lease without writing (the execution finished, or it was found lost)."""

    execution_id: str


@dataclass(frozen=True, slots=True)
class HoldLeases:
    """The coordinator tells the writer which leases it holds (after either restarted).

    A coordinator that starts afresh makes the writer hold exactly ``epochs``. After
    the writer restarted, ``keep_newer``: a lease it already took again, at a newer
    epoch, for a request of the same coordinator that reached it first (a lease
    round sent before the coordinator learned of the restart) stays at that epoch;
    the coordinator learns it from that request's answer.
    """

    epochs: Mapping[str, int]
    keep_newer: bool = False


@dataclass(frozen=True, slots=True)
class WatchFaults:
    """Tell ``watcher`` every ``StoreFault`` from now on (the coordinator asks this)."""

    watcher: ActorLike


@dataclass(frozen=True, slots=True)
class CancelInStore:
    """Mark an execution ``CANCELLED`` in the store and signal its owner (any system may)."""

    execution_id: str
    reply_to: ReplyTo


@dataclass(frozen=True, slots=True)
class SettleInStore:
    """Write a callback's outcome for an execution owned elsewhere, and signal its owner."""

    update: OperationUpdate
    reply_to: ReplyTo


@dataclass(frozen=True, slots=True)
class DeleteInStore:
    """Delete a finished execution's rows."""

    execution_id: str
    reply_to: ReplyTo


DESK_MESSAGES = (CreateExecution, ClaimExecution, ReopenExecution, RenewLeases, ReleaseLeases,
                 DropLease, HoldLeases, CancelInStore, SettleInStore, DeleteInStore)
