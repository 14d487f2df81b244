"""``MemoryStore``: the store contract in memory, for tests."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from actors.errors import UnknownExecutionError
from actors.records._leases import (
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
from actors.records._rows import BranchLog, BranchRecord, ExecutionRecord, OperationRecord
from actors.records._status import BranchStatus, ExecutionStatus, OpStatus
from actors.records._updates import BranchUpdate, ExecutionUpdate, OperationUpdate, Update
from actors.store._contract import (
    _TERMINAL,
    check_executor_free,
    claimable,
    lease_lost,
    log_chunks,
    reruns,
)


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


def _regresses(stored: str, new: str) -> bool:
    """A terminal status would be replaced by another one (the first outcome stands)."""
    return stored in _TERMINAL and new != stored
