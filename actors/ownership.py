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
calls it (``actors.leasedesk``).
"""

from __future__ import annotations

import hashlib
import importlib
import math
import pickle
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from actors.messages import ExecutionRecord, ExecutionStatus, ReplyTo

ACTIVE_EXECUTIONS = frozenset({ExecutionStatus.RUNNING, ExecutionStatus.SUSPENDED})


class SignalKind(StrEnum):
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


@dataclass(frozen=True, slots=True)
class BranchClassRef:
    """A branch class as stored: by importable name, and by value when it has no such name.

    ``load()`` imports ``module.qualname`` when it can (a new deploy's code runs
    recovered executions) and falls back to the pickled class otherwise.
    """

    module: str
    qualname: str
    by_value: bytes | None

    def load(self, deserialize: Callable[[bytes], Any]) -> type:
        if self.module != "__main__" and "<locals>" not in self.qualname:
            found = _import(self.module, self.qualname)
            if found is not None:
                return found
        if self.by_value is None:
            raise LookupError(
                f"branch class {self.module}.{self.qualname} cannot be imported here; run "
                "this execution on a system whose code has it"
            )
        cls = deserialize(self.by_value)
        if not isinstance(cls, type):
            raise TypeError(f"the stored branch class {self.qualname} loaded as {cls!r}")
        return cls


def _import(module: str, qualname: str) -> type | None:
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception:
        return None
    return found if isinstance(found, type) else None


def class_ref(cls: type, serialize: Callable[[object], bytes]) -> BranchClassRef:
    """How ``cls`` is stored: its name, and its pickled self when the name cannot find it."""
    module, qualname = cls.__module__, cls.__qualname__
    importable = module != "__main__" and "<locals>" not in qualname and (
        _import(module, qualname) is cls
    )
    return BranchClassRef(module, qualname, None if importable else serialize(cls))


@dataclass(frozen=True, slots=True)
class ExecutionSpec:
    """What any system needs to run a stored execution besides its branches' inputs.

    ``classes`` holds one class for ``map`` and one per branch for ``parallel``.
    A spec stored before a field was added lacks it: read new fields with ``getattr``.
    """

    kind: str
    classes: tuple[BranchClassRef, ...]
    max_concurrency: int | None
    completion: Any  # actors.policies.Completion
    timeout: float | None = None
    trace: Any = None  # actors.spans.ExecutionTrace: its span, kept across restarts and takeovers

    def class_at(self, index: int) -> BranchClassRef:
        return self.classes[0] if len(self.classes) == 1 else self.classes[index]


def fingerprint_of(kind: str, classes: Iterable[type], items: Iterable[Any],
                   serialize: Callable[[object], bytes]) -> str:
    """A digest of what an execution is made of: its kind, branch classes and items.

    Equal items give equal fingerprints in any process: containers are hashed
    by their contents (sets and dicts in an order of their own), other objects
    by their pickled bytes.

        fingerprint_of("map", [Resize], ["a.png"], pickle.dumps)
    """
    digest = hashlib.sha256(kind.encode())
    for cls in classes:
        digest.update(f"\0class:{cls.__module__}.{cls.__qualname__}".encode())
    for item in items:
        digest.update(b"\0item:")
        digest.update(_canonical(item, serialize, 0))
    return digest.hexdigest()


def _canonical(obj: Any, serialize: Callable[[object], bytes], depth: int) -> bytes:
    """Bytes that are equal for equal values, whatever the process's hash seed."""
    if obj is None or isinstance(obj, bool):
        return repr(obj).encode()
    kind = type(obj)
    if kind is int:
        return b"i" + str(obj).encode()
    if kind is float:
        return b"f" + (b"nan" if math.isnan(obj) else struct.pack("!d", obj))
    if kind is str:
        return b"s" + hashlib.sha256(obj.encode("utf-8", "surrogatepass")).digest()
    if kind is bytes:
        return b"b" + hashlib.sha256(obj).digest()
    if depth < 32:
        if kind in (list, tuple):
            parts = [_canonical(v, serialize, depth + 1) for v in obj]
            return _joined(b"l" if kind is list else b"t", parts)
        if kind in (set, frozenset):
            parts = sorted(_canonical(v, serialize, depth + 1) for v in obj)
            return _joined(b"S", parts)
        if kind is dict:
            pairs = sorted(_joined(b"p", [_canonical(k, serialize, depth + 1),
                                          _canonical(v, serialize, depth + 1)])
                           for k, v in obj.items())
            return _joined(b"d", pairs)
    try:
        data = serialize(obj)
    except Exception:
        data = pickle.dumps(repr(obj))
    return b"o" + hashlib.sha256(data).digest()


def _joined(tag: bytes, parts: list[bytes]) -> bytes:
    digest = hashlib.sha256(tag)
    for part in parts:
        digest.update(struct.pack("!I", len(part)))
        digest.update(part)
    return tag + digest.digest()


# -- requests to the system's writer (the checkpoint actor), answered on ``reply_to`` ----


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
    """The coordinator tells the writer exactly which leases it holds (after either restarted)."""

    epochs: Mapping[str, int]


def held_epochs(leases: Mapping[str, Lease]) -> dict[str, int]:
    return {eid: lease.epoch for eid, lease in leases.items()}


__all__ = [
    "ACTIVE_EXECUTIONS",
    "BranchClassRef",
    "BranchInput",
    "ClaimExecution",
    "CreateExecution",
    "DropLease",
    "ExecutionClaim",
    "ExecutionSpec",
    "ExecutorInfo",
    "HoldLeases",
    "Lease",
    "LeaseFence",
    "LeaseRound",
    "NewExecution",
    "ReleaseLeases",
    "RenewLeases",
    "ReopenExecution",
    "Signal",
    "SignalKind",
    "class_ref",
    "fingerprint_of",
    "held_epochs",
]
