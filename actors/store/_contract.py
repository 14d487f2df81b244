"""What the checkpoint actor needs from a store, and an in-memory one for tests.

The checkpoint actor is the only writer. ``commit`` is one transaction: it
applies the updates in order and reads the logs of the branches whose empty
checkpoints it answers, so that one store round trip serves a whole batch.
Readers in other processes (``inspect``, ``run.status()``) use the ``read_*``
methods, which never write.
"""


from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Protocol

from actors.errors import ExecutorConflictError, LeaseLostError
from actors.records._leases import (
    ACTIVE_EXECUTIONS,
    ExecutionClaim,
    ExecutorInfo,
    LeaseFence,
    LeaseRound,
    NewExecution,
)
from actors.records._rows import BranchLog, BranchRecord, ExecutionRecord, OperationRecord
from actors.records._status import BranchStatus, ExecutionStatus, OpKind, OpStatus
from actors.records._updates import OperationUpdate, Update


class Store(Protocol):
    """One small interface; SQLite (``runtime.stores.sqlite``) and memory implement it."""

    def commit(
        self, updates: Sequence[Update], read_logs: Sequence[str], now: float,
        fence: LeaseFence | None = None,
    ) -> dict[str, BranchLog]:
        """Apply ``updates`` in order, then read the logs of ``read_logs``; one transaction.

        Raises a ``StoreError`` (or the driver's own error) and writes nothing on failure.
        With a ``fence``, every update's execution must be held by ``fence.executor`` at
        the epoch ``fence.epochs`` gives it; otherwise nothing is written and
        ``LeaseLostError`` names the executions that are not (checked in the same
        transaction as the writes). An execution status that is finished
        (``SUCCEEDED``, ``FAILED``, ``CANCELLED``) is never overwritten by ``commit``.
        """
        ...

    def read_execution(self, execution_id: str) -> ExecutionRecord | None: ...

    def read_executions(self, status: ExecutionStatus | None = None) -> list[ExecutionRecord]:
        """Every execution (or those with ``status``), oldest first."""
        ...

    # -- executors and leases (``actors.records``) -----------------------------------

    def register_executor(self, executor: ExecutorInfo, lease_seconds: float, now: float,
                          alive: bool) -> None:
        """Record ``executor`` and its heartbeat.

        Raises ``ExecutorConflictError`` if the id is held by another incarnation
        whose heartbeat is younger than ``lease_seconds``, unless ``alive`` is False
        (the caller checked that process is gone: same host, dead pid).
        """
        ...

    def read_executor(self, executor_id: str) -> tuple[ExecutorInfo, float] | None:
        """The executor with this id and its last heartbeat, if any."""
        ...

    def read_executors(self) -> list[tuple[ExecutorInfo, float]]:
        """Every executor that ever used the store, with its last heartbeat."""
        ...

    def create_execution(self, new: NewExecution, executor: str, lease_seconds: float,
                         now: float) -> ExecutionClaim:
        """Create ``new`` with its branches, leased to ``executor`` (epoch 1); one transaction.

        If the id exists nothing is written: the claim carries the stored row and
        ``created=False``, ``lease=None``.
        """
        ...

    def claim_execution(self, execution_id: str, executor: str, lease_seconds: float,
                        now: float, dead_owners: Collection[str] = ()) -> ExecutionClaim:
        """Take the lease of an active execution that is unowned, expired, or ``executor``'s,
        or whose owner is in ``dead_owners`` (the caller saw its process gone).

        The epoch goes up by one. Raises ``UnknownExecutionError`` if there is none;
        a finished one, or one another executor holds, gives ``lease=None``.
        """
        ...

    def renew_leases(self, executor: str, held: Mapping[str, int], lease_seconds: float,
                     now: float, claim_orphans: int = 0,
                     skip: Collection[str] = (), dead_owners: Collection[str] = ()
                     ) -> LeaseRound:
        """One renewal transaction; see ``actors.records.LeaseRound``.

        Refreshes the executor's heartbeat; extends every held lease still at its
        epoch; reports the others lost; consumes the signals of held executions;
        claims up to ``claim_orphans`` active executions that have a spec and whose
        lease is unowned, expired, or this executor's but not in ``held``, except the
        executions in ``skip`` (ones this executor found it cannot run); an owner in
        ``dead_owners`` counts as expired.
        """
        ...

    def release_leases(self, executor: str, held: Mapping[str, int], now: float) -> None:
        """Let these leases expire now, so that another system can take them at once."""
        ...

    def cancel_execution(self, execution_id: str, now: float) -> ExecutionRecord:
        """Mark an active execution ``CANCELLED`` and signal its owner; a finished one stays.

        Any system may call it. Returns the row as stored afterwards;
        ``UnknownExecutionError`` if there is none.
        """
        ...

    def settle_operation(self, update: OperationUpdate, now: float) -> OperationRecord:
        """Write an outcome from outside the owner (a callback) and signal the owner.

        The first terminal outcome stands (as in ``commit``); the signal is written
        only when this call changed the operation. Returns the operation as stored.
        """
        ...

    def reopen_execution(self, execution_id: str, executor: str, lease_seconds: float,
                         now: float, deadline_at: float | None) -> ExecutionClaim:
        """``system.retry``: a ``FAILED`` or ``CANCELLED`` execution becomes ``RUNNING``.

        In one transaction: failed branches (at any depth) go back to ``PENDING``
        without their failed operations, ``CHILDREN`` operations whose batch had
        failures are removed (their parents run the batch again, and children that
        succeeded replay from their logs), the result is cleared, and the lease
        goes to ``executor`` at the next epoch. Any other status gives ``lease=None``
        and changes nothing; ``UnknownExecutionError`` if there is none.
        """
        ...

    def delete_execution(self, execution_id: str) -> bool:
        """Delete a finished execution's rows (branches, operations, signals).

        Returns False if there was none; raises ``ValueError`` if it is active.
        """
        ...

    def read_payloads(self, execution_id: str | None = None,
                      exclude: str | None = None) -> Iterator[bytes]:
        """Every stored blob field (inputs, results, errors, payloads) of one execution,
        or of all executions but ``exclude``: what Refs can hide in (blob collection)."""
        ...

    def read_branches(self, execution_id: str) -> list[BranchRecord]: ...

    def read_log(self, branch_id: str) -> BranchLog: ...

    def read_logs(self, branch_ids: Sequence[str], chunk: int) -> Iterator[dict[str, BranchLog]]:
        """The logs of ``branch_ids`` from one snapshot, handed out ``chunk`` branches at a time.

        One store call: the checkpoint actor answers a wave's first empty
        checkpoints while the later logs are still being read. Raises like
        ``commit`` (possibly after some chunks were handed out).
        """
        ...

    def read_due_timers(self, execution_id: str | None = None) -> list[OperationRecord]:
        """Operations suspended or retrying with a ``due_at`` (timers to reload at start)."""
        ...

    def close(self) -> None: ...


def log_chunks(branch_ids: Sequence[str], chunk: int) -> list[list[str]]:
    """``branch_ids`` without repeats, ``chunk`` at a time: how ``read_logs`` hands them out."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    wanted = list(dict.fromkeys(branch_ids))
    return [wanted[start:start + chunk] for start in range(0, len(wanted), chunk)]


_TERMINAL = frozenset({"SUCCEEDED", "FAILED"})


def is_finished(branch: BranchRecord | None) -> bool:
    """Whether a branch record has its final status (``SUCCEEDED`` or ``FAILED``)."""
    return branch is not None and branch.status in (BranchStatus.SUCCEEDED, BranchStatus.FAILED)


def claimable(record: ExecutionRecord, executor: str, now: float,
              dead_owners: Collection[str] = ()) -> bool:
    """Whether ``executor`` may take ``record``'s lease now: active, and unowned, expired,
    its own (an earlier life of the same executor), or held by an owner known dead."""
    return record.status in ACTIVE_EXECUTIONS and (
        record.owner is None or record.owner == executor or record.lease_expires_at is None
        or record.lease_expires_at < now or record.owner in dead_owners
    )


def reruns(op: OperationRecord) -> bool:
    """Whether ``system.retry`` removes ``op`` so that it runs again: a failed operation,
    or a ``CHILDREN`` batch that had failures (its failed children run again)."""
    if op.status is OpStatus.FAILED:
        return True
    return op.kind is OpKind.CHILDREN and op.status is OpStatus.SUCCEEDED and (
        op.error is not None or _batch_had_failures(op.payload))


def _batch_had_failures(payload: bytes | None) -> bool:
    """A ``CHILDREN`` payload (a pickled ``BatchResult``) records a FAILED child.

    The statuses travel as enum members pickled by name, so the member's name shows
    in the bytes without unpickling user values (which may need classes not loaded here).
    """
    return payload is not None and b"FAILED" in payload


def check_executor_free(wanted: ExecutorInfo, found: ExecutorInfo, heartbeat: float,
                        lease_seconds: float, now: float) -> None:
    """Raise ``ExecutorConflictError`` if another live incarnation holds ``wanted``'s id."""
    same = (found.host, found.pid) == (wanted.host, wanted.pid)
    if not same and now - heartbeat < lease_seconds:
        raise ExecutorConflictError(
            f"executor id {wanted.executor_id!r} is in use by pid {found.pid} on host "
            f"{found.host!r} (its heartbeat is {now - heartbeat:.1f}s old); give this system "
            "another SystemConfig.executor_id, or stop the other one"
        )


def lease_lost(executor: str, execution_ids: Sequence[str]) -> LeaseLostError:
    """The ``LeaseLostError`` for writes to executions this writer does not hold."""
    names = ", ".join(repr(e) for e in execution_ids[:5])
    more = "" if len(execution_ids) <= 5 else f" and {len(execution_ids) - 5} more"
    return LeaseLostError(
        f"executor {executor!r} no longer holds execution(s) {names}{more}: another system "
        "took them over (this one was paused or cut off past its lease); nothing of this "
        "batch was written; observe them with system.execution(id)",
        tuple(execution_ids),
    )
