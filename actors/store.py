"""What the checkpoint actor needs from a store, and an in-memory one for tests.

The checkpoint actor is the only writer. ``commit`` is one transaction: it
applies the updates in order and reads the logs of the branches whose empty
checkpoints it answers, so that one store round trip serves a whole batch.
Readers in other processes (``inspect``, ``run.status()``) use the ``read_*``
methods, which never write.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from actors.errors import ExecutorConflictError, LeaseLostError, UnknownExecutionError
from actors.messages import (
    BranchLog,
    BranchRecord,
    BranchStatus,
    BranchUpdate,
    ExecutionRecord,
    ExecutionStatus,
    ExecutionUpdate,
    OperationRecord,
    OperationUpdate,
    OpKind,
    OpStatus,
    Update,
)
from actors.ownership import (
    ACTIVE_EXECUTIONS,
    ExecutionClaim,
    ExecutorInfo,
    Lease,
    LeaseFence,
    LeaseRound,
    NewExecution,
    Signal,
    SignalKind,
)


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

    # -- executors and leases (``actors.ownership``) -----------------------------------

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
        """One renewal transaction; see ``actors.ownership.LeaseRound``.

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


def _merge(old: object, new: object, fields: Sequence[str]) -> dict[str, object]:
    """Fields of ``new`` that are not None, to overwrite on ``old``."""
    return {f: getattr(new, f) for f in fields if getattr(new, f) is not None}


class MemoryStore:
    """An in-memory ``Store`` for unit tests of pure logic; same semantics as SQLite.

    ``fail_next(exc)`` makes the next ``commit`` (or ``read_logs``) raise ``exc`` and
    write nothing; ``calls`` counts both, ``commits`` keeps each one's
    ``(updates, read_logs)``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.executions: dict[str, ExecutionRecord] = {}
        self.branches: dict[str, BranchRecord] = {}
        self.operations: dict[str, dict[str, OperationRecord]] = {}
        self.executors: dict[str, tuple[ExecutorInfo, float]] = {}
        self.signals: list[Signal] = []
        self._signal_ids = 0
        self.calls = 0
        self.commits: list[tuple[tuple[Update, ...], tuple[str, ...]]] = []
        self._fail_next: BaseException | None = None

    def fail_next(self, exc: BaseException) -> None:
        self._fail_next = exc

    def commit(
        self, updates: Sequence[Update], read_logs: Sequence[str], now: float,
        fence: LeaseFence | None = None,
    ) -> dict[str, BranchLog]:
        with self._lock:
            self.calls += 1
            if self._fail_next is not None:
                exc, self._fail_next = self._fail_next, None
                raise exc
            if fence is not None:
                refused = sorted(eid for eid in {u.execution_id for u in updates}
                                 if not self._holds(fence, eid))
                if refused:
                    raise lease_lost(fence.executor, refused)
            # Apply to copies so that a failure part-way writes nothing.
            executions = dict(self.executions)
            branches = dict(self.branches)
            operations = {k: dict(v) for k, v in self.operations.items()}
            for update in updates:
                self._apply(update, now, executions, branches, operations)
            self.executions, self.branches, self.operations = executions, branches, operations
            self.commits.append((tuple(updates), tuple(read_logs)))
            return {b: self._log(b) for b in read_logs}

    def _holds(self, fence: LeaseFence, execution_id: str) -> bool:
        record = self.executions.get(execution_id)
        epoch = fence.epochs.get(execution_id)
        return (record is not None and epoch is not None and record.owner == fence.executor
                and record.lease_epoch == epoch)

    def _apply(
        self,
        update: Update,
        now: float,
        executions: dict[str, ExecutionRecord],
        branches: dict[str, BranchRecord],
        operations: dict[str, dict[str, OperationRecord]],
    ) -> None:
        if isinstance(update, ExecutionUpdate):
            old_e = executions.get(update.execution_id)
            if old_e is None:
                executions[update.execution_id] = ExecutionRecord(
                    update.execution_id, update.kind or "", update.status, update.spec,
                    update.branch_count or 0, update.result, update.error, now, now,
                )
            elif not old_e.status.finished:
                fields: tuple[str, ...] = (
                    "kind", "status", "spec", "branch_count", "result", "error"
                )
                executions[update.execution_id] = replace(
                    old_e, **_merge(old_e, update, fields), updated_at=now  # type: ignore[arg-type]
                )
        elif isinstance(update, BranchUpdate):
            old_b = branches.get(update.branch_id)
            if old_b is not None and update.create_only:
                return  # it exists: a create-only update leaves it as it is
            if old_b is not None and _regresses(old_b.status, update.status):
                return  # terminal stays terminal (updates race across processes)
            if old_b is None:
                branches[update.branch_id] = BranchRecord(
                    update.execution_id, update.branch_id, update.parent_branch_id,
                    update.parent_op_id, update.index or 0, update.status, update.input,
                    update.result, update.error, update.epoch or 0, now, now,
                )
            else:
                fields = ("status", "parent_branch_id", "parent_op_id", "index", "input",
                          "result", "error", "epoch")
                branches[update.branch_id] = replace(
                    old_b, **_merge(old_b, update, fields), updated_at=now  # type: ignore[arg-type]
                )
        else:
            self._apply_operation(update, now, operations)

    @staticmethod
    def _apply_operation(update: OperationUpdate, now: float,
                         operations: dict[str, dict[str, OperationRecord]]) -> bool:
        """Write ``update`` unless it would replace a terminal outcome; whether it wrote."""
        ops = operations.setdefault(update.branch_id, {})
        old_o = ops.get(update.op_id)
        if old_o is not None and _regresses(old_o.status, update.status):
            return False
        if old_o is None:
            seq = max((o.seq for o in ops.values()), default=-1) + 1
            ops[update.op_id] = OperationRecord(
                update.execution_id, update.branch_id, update.op_id, seq, update.kind,
                update.name, update.status, update.attempt, update.payload, update.error,
                update.due_at, now, now,
            )
        else:
            fields = ("kind", "name", "status", "attempt", "payload", "error", "due_at")
            merged = _merge(old_o, update, fields)
            if update.status is OpStatus.SUCCEEDED:
                merged["error"] = update.error  # a failed attempt's error is not the outcome
            ops[update.op_id] = replace(
                old_o, **merged, updated_at=now  # type: ignore[arg-type]
            )
        return True

    def read_logs(self, branch_ids: Sequence[str], chunk: int) -> Iterator[dict[str, BranchLog]]:
        """One call in ``calls`` and ``commits``; ``fail_next`` raises before the first chunk."""
        chunks = log_chunks(branch_ids, chunk)
        with self._lock:
            self.calls += 1
            if self._fail_next is not None:
                exc, self._fail_next = self._fail_next, None
                raise exc
            # One snapshot, as SQLite's read transaction.
            logs = [{b: self._log(b) for b in branch_chunk} for branch_chunk in chunks]
            self.commits.append(((), tuple(b for branch_chunk in chunks for b in branch_chunk)))
        yield from logs

    def _log(self, branch_id: str) -> BranchLog:
        ops = sorted(self.operations.get(branch_id, {}).values(), key=lambda o: o.seq)
        return BranchLog(branch_id, self.branches.get(branch_id), tuple(ops))

    def read_execution(self, execution_id: str) -> ExecutionRecord | None:
        with self._lock:
            return self.executions.get(execution_id)

    def read_executions(self, status: ExecutionStatus | None = None) -> list[ExecutionRecord]:
        with self._lock:
            found = [e for e in self.executions.values() if status is None or e.status is status]
            return sorted(found, key=lambda e: e.created_at)

    def read_branches(self, execution_id: str) -> list[BranchRecord]:
        with self._lock:
            found = [b for b in self.branches.values() if b.execution_id == execution_id]
            return sorted(found, key=lambda b: (b.parent_branch_id or "", b.index))

    def read_log(self, branch_id: str) -> BranchLog:
        with self._lock:
            return self._log(branch_id)

    def read_due_timers(self, execution_id: str | None = None) -> list[OperationRecord]:
        with self._lock:
            return sorted((
                op
                for ops in self.operations.values()
                for op in ops.values()
                if op.due_at is not None and op.status.value in ("SUSPENDED", "RETRYING")
                and (execution_id is None or op.execution_id == execution_id)
            ), key=lambda op: op.due_at or 0.0)

    # -- executors and leases ----------------------------------------------------------

    def register_executor(self, executor: ExecutorInfo, lease_seconds: float, now: float,
                          alive: bool) -> None:
        with self._lock:
            found = self.executors.get(executor.executor_id)
            if found is not None and alive:
                check_executor_free(executor, found[0], found[1], lease_seconds, now)
            self.executors[executor.executor_id] = (executor, now)

    def read_executor(self, executor_id: str) -> tuple[ExecutorInfo, float] | None:
        with self._lock:
            return self.executors.get(executor_id)

    def read_executors(self) -> list[tuple[ExecutorInfo, float]]:
        with self._lock:
            return list(self.executors.values())

    def create_execution(self, new: NewExecution, executor: str, lease_seconds: float,
                         now: float) -> ExecutionClaim:
        with self._lock:
            stored = self.executions.get(new.execution_id)
            if stored is not None:
                return ExecutionClaim(stored)
            expires = now + lease_seconds
            record = ExecutionRecord(
                new.execution_id, new.kind, ExecutionStatus.RUNNING, new.spec,
                len(new.branches), None, None, now, now, new.fingerprint, executor, 1, expires,
                new.deadline_at,
            )
            self.executions[new.execution_id] = record
            for branch in new.branches:
                if branch.branch_id not in self.branches:
                    self.branches[branch.branch_id] = BranchRecord(
                        new.execution_id, branch.branch_id, None, None, branch.index,
                        BranchStatus.PENDING, branch.input, None, None, 0, now, now,
                    )
            return ExecutionClaim(record, created=True,
                                  lease=Lease(new.execution_id, executor, 1, expires))

    def claim_execution(self, execution_id: str, executor: str, lease_seconds: float,
                        now: float, dead_owners: Collection[str] = ()) -> ExecutionClaim:
        with self._lock:
            record = self._existing(execution_id)
            if not claimable(record, executor, now, dead_owners):
                return ExecutionClaim(record)
            return self._take(record, executor, lease_seconds, now)

    def _existing(self, execution_id: str) -> ExecutionRecord:
        record = self.executions.get(execution_id)
        if record is None:
            raise UnknownExecutionError(f"no execution {execution_id!r} in this store")
        return record

    def _take(self, record: ExecutionRecord, executor: str, lease_seconds: float, now: float,
              **changes: Any) -> ExecutionClaim:
        epoch, expires = record.lease_epoch + 1, now + lease_seconds
        taken = replace(record, owner=executor, lease_epoch=epoch, lease_expires_at=expires,
                        updated_at=now, **changes)
        self.executions[record.execution_id] = taken
        return ExecutionClaim(taken, lease=Lease(record.execution_id, executor, epoch, expires))

    def renew_leases(self, executor: str, held: Mapping[str, int], lease_seconds: float,
                     now: float, claim_orphans: int = 0,
                     skip: Collection[str] = (), dead_owners: Collection[str] = ()
                     ) -> LeaseRound:
        with self._lock:
            info = self.executors.get(executor)
            if info is not None:
                self.executors[executor] = (info[0], now)
            expires = now + lease_seconds
            renewed: list[Lease] = []
            lost: list[tuple[str, ExecutionRecord | None]] = []
            for eid, epoch in held.items():
                record = self.executions.get(eid)
                if record is None or record.owner != executor or record.lease_epoch != epoch:
                    lost.append((eid, record))
                    continue
                if record.status in ACTIVE_EXECUTIONS:
                    self.executions[eid] = replace(record, lease_expires_at=expires)
                renewed.append(Lease(eid, executor, epoch, expires))
            claimed: list[ExecutionClaim] = []
            for record in sorted(self.executions.values(), key=lambda e: e.created_at):
                if len(claimed) >= claim_orphans:
                    break
                if record.execution_id not in held and record.execution_id not in skip and (
                        record.spec is not None) and claimable(
                        record, executor, now, dead_owners):
                    claimed.append(self._take(record, executor, lease_seconds, now))
            owned = {lease.execution_id for lease in renewed} | {
                c.record.execution_id for c in claimed}
            signals = tuple(s for s in self.signals if s.execution_id in owned)
            self.signals = [s for s in self.signals if s.execution_id not in owned]
            return LeaseRound(tuple(renewed), tuple(lost), tuple(claimed), signals,
                              self._next_expiry(executor))

    def _next_expiry(self, executor: str) -> float | None:
        return min((e.lease_expires_at for e in self.executions.values()
                    if e.status in ACTIVE_EXECUTIONS and e.owner not in (None, executor)
                    and e.lease_expires_at is not None), default=None)

    def release_leases(self, executor: str, held: Mapping[str, int], now: float) -> None:
        with self._lock:
            for eid, epoch in held.items():
                record = self.executions.get(eid)
                if record is not None and record.owner == executor and (
                        record.lease_epoch == epoch):
                    self.executions[eid] = replace(record, lease_expires_at=now)

    def _signal(self, execution_id: str, kind: SignalKind, branch_id: str | None = None,
                op_id: str | None = None) -> None:
        self._signal_ids += 1
        self.signals.append(Signal(self._signal_ids, execution_id, kind, branch_id, op_id))

    def cancel_execution(self, execution_id: str, now: float) -> ExecutionRecord:
        with self._lock:
            record = self._existing(execution_id)
            if record.status.finished:
                return record
            record = replace(record, status=ExecutionStatus.CANCELLED, updated_at=now)
            self.executions[execution_id] = record
            self._signal(execution_id, SignalKind.CANCEL)
            return record

    def settle_operation(self, update: OperationUpdate, now: float) -> OperationRecord:
        with self._lock:
            if self._apply_operation(update, now, self.operations):
                self._signal(update.execution_id, SignalKind.CALLBACK, update.branch_id,
                             update.op_id)
            return self.operations[update.branch_id][update.op_id]

    def reopen_execution(self, execution_id: str, executor: str, lease_seconds: float,
                         now: float, deadline_at: float | None) -> ExecutionClaim:
        with self._lock:
            record = self._existing(execution_id)
            if record.status not in (ExecutionStatus.FAILED, ExecutionStatus.CANCELLED):
                return ExecutionClaim(record)
            for branch in [b for b in self.branches.values() if b.execution_id == execution_id]:
                ops = self.operations.get(branch.branch_id, {})
                for op in list(ops.values()):
                    if reruns(op):
                        del ops[op.op_id]
                if branch.status is BranchStatus.FAILED:
                    self.branches[branch.branch_id] = replace(
                        branch, status=BranchStatus.PENDING, error=None, updated_at=now)
            return self._take(record, executor, lease_seconds, now,
                              status=ExecutionStatus.RUNNING, result=None, error=None,
                              deadline_at=deadline_at)

    def delete_execution(self, execution_id: str) -> bool:
        with self._lock:
            record = self.executions.get(execution_id)
            if record is None:
                return False
            if not record.status.finished:
                raise ValueError(
                    f"execution {execution_id!r} is {record.status.value}; cancel it first"
                )
            del self.executions[execution_id]
            for branch_id in [b for b, r in self.branches.items()
                              if r.execution_id == execution_id]:
                del self.branches[branch_id]
                self.operations.pop(branch_id, None)
            self.signals = [s for s in self.signals if s.execution_id != execution_id]
            return True

    def read_payloads(self, execution_id: str | None = None,
                      exclude: str | None = None) -> Iterator[bytes]:
        with self._lock:
            def wanted(eid: str) -> bool:
                return eid != exclude and (execution_id is None or eid == execution_id)

            found: list[bytes | None] = []
            for e in self.executions.values():
                if wanted(e.execution_id):
                    found += [e.result, e.error]
            for b in self.branches.values():
                if wanted(b.execution_id):
                    found += [b.input, b.result, b.error]
            for ops in self.operations.values():
                for o in ops.values():
                    if wanted(o.execution_id):
                        found += [o.payload, o.error]
        yield from (f for f in found if f)

    def close(self) -> None:
        pass


_TERMINAL = frozenset({"SUCCEEDED", "FAILED"})


def _regresses(stored: str, new: str) -> bool:
    """A terminal status would be replaced by another one (the first outcome stands)."""
    return stored in _TERMINAL and new != stored


def is_finished(branch: BranchRecord | None) -> bool:
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
    names = ", ".join(repr(e) for e in execution_ids[:5])
    more = "" if len(execution_ids) <= 5 else f" and {len(execution_ids) - 5} more"
    return LeaseLostError(
        f"executor {executor!r} no longer holds execution(s) {names}{more}: another system "
        "took them over (this one was paused or cut off past its lease); nothing of this "
        "batch was written; observe them with system.execution(id)",
        tuple(execution_ids),
    )


__all__ = ["MemoryStore", "Store", "check_executor_free", "claimable", "is_finished",
           "lease_lost", "log_chunks", "reruns"]
