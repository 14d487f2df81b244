"""The lease half of the store contract on SQLite: executors, claims, renewals, signals.

Each function runs inside a write transaction that ``SqliteStore`` opened
(``BEGIN IMMEDIATE``: it holds the database's write lock), so a check and the
write that depends on it can never be split by another system's write: two
systems never both claim one execution, and a stale owner's batch is refused
by the same transaction that would have written it. ``actors.ownership``
explains the rules; ``actors.store.MemoryStore`` is the same semantics in memory.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any

from actors.errors import UnknownExecutionError
from actors.messages import ExecutionRecord, OperationRecord, OperationUpdate
from actors.ownership import (
    ExecutionClaim,
    ExecutorInfo,
    Lease,
    LeaseFence,
    LeaseRound,
    NewExecution,
    Signal,
    SignalKind,
)
from actors.store import check_executor_free, claimable, lease_lost, reruns

_ACTIVE = "('RUNNING', 'SUSPENDED')"
_FINISHED = "('SUCCEEDED', 'FAILED', 'CANCELLED')"
_CHUNK = 500  # ids per IN (...): far below SQLite's variable limit

ReadExecution = Callable[[sqlite3.Connection, str], ExecutionRecord | None]


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def check_fence(conn: sqlite3.Connection, fence: LeaseFence, execution_ids: Iterable[str]) -> None:
    """Raise ``LeaseLostError`` if ``fence`` does not hold every one of ``execution_ids``."""
    wanted = sorted(execution_ids)
    held: dict[str, tuple[str | None, int]] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        for eid, owner, epoch in conn.execute(
            "SELECT execution_id, owner, lease_epoch FROM executions "
            f"WHERE execution_id IN ({_marks(chunk)})", chunk,
        ):
            held[eid] = (owner, epoch)
    refused = [eid for eid in wanted
               if held.get(eid) != (fence.executor, fence.epochs.get(eid, -1))]
    if refused:
        raise lease_lost(fence.executor, refused)


def register_executor(conn: sqlite3.Connection, executor: ExecutorInfo, lease_seconds: float,
                      now: float, alive: bool) -> None:
    row = conn.execute("SELECT host, pid, heartbeat_at FROM executors WHERE executor_id = ?",
                       (executor.executor_id,)).fetchone()
    if row is not None and alive:
        check_executor_free(executor, ExecutorInfo(executor.executor_id, row[0], row[1]),
                            row[2], lease_seconds, now)
    conn.execute(
        "INSERT INTO executors (executor_id, host, pid, started_at, heartbeat_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (executor_id) DO UPDATE SET "
        "host = excluded.host, pid = excluded.pid, started_at = excluded.started_at, "
        "heartbeat_at = excluded.heartbeat_at",
        (executor.executor_id, executor.host, executor.pid, now, now),
    )


def read_executor(conn: sqlite3.Connection,
                  executor_id: str) -> tuple[ExecutorInfo, float] | None:
    row = conn.execute("SELECT host, pid, heartbeat_at FROM executors WHERE executor_id = ?",
                       (executor_id,)).fetchone()
    return None if row is None else (ExecutorInfo(executor_id, row[0], row[1]), row[2])


def read_executors(conn: sqlite3.Connection) -> list[tuple[ExecutorInfo, float]]:
    rows = conn.execute("SELECT executor_id, host, pid, heartbeat_at FROM executors").fetchall()
    return [(ExecutorInfo(r[0], r[1], r[2]), r[3]) for r in rows]


def create_execution(conn: sqlite3.Connection, read: ReadExecution, new: NewExecution,
                     executor: str, lease_seconds: float, now: float) -> ExecutionClaim:
    stored = read(conn, new.execution_id)
    if stored is not None:
        return ExecutionClaim(stored)
    expires = now + lease_seconds
    conn.execute(
        "INSERT INTO executions (execution_id, kind, status, spec, branch_count, created_at, "
        "updated_at, fingerprint, owner, lease_epoch, lease_expires_at, deadline_at) "
        "VALUES (?, ?, 'RUNNING', ?, ?, ?, ?, ?, ?, 1, ?, ?)",
        (new.execution_id, new.kind, new.spec, len(new.branches), now, now, new.fingerprint,
         executor, expires, new.deadline_at),
    )
    conn.executemany(
        "INSERT INTO branches (execution_id, branch_id, idx, status, input, epoch, created_at, "
        "updated_at) VALUES (?, ?, ?, 'PENDING', ?, 0, ?, ?) ON CONFLICT (branch_id) DO NOTHING",
        [(new.execution_id, b.branch_id, b.index, b.input, now, now) for b in new.branches],
    )
    record = read(conn, new.execution_id)
    assert record is not None
    return ExecutionClaim(record, created=True,
                          lease=Lease(new.execution_id, executor, 1, expires))


def _existing(conn: sqlite3.Connection, read: ReadExecution, execution_id: str) -> ExecutionRecord:
    record = read(conn, execution_id)
    if record is None:
        raise UnknownExecutionError(f"no execution {execution_id!r} in this store")
    return record


def _take(conn: sqlite3.Connection, read: ReadExecution, record: ExecutionRecord, executor: str,
          lease_seconds: float, now: float) -> ExecutionClaim:
    epoch, expires = record.lease_epoch + 1, now + lease_seconds
    conn.execute(
        "UPDATE executions SET owner = ?, lease_epoch = ?, lease_expires_at = ?, updated_at = ? "
        "WHERE execution_id = ?", (executor, epoch, expires, now, record.execution_id),
    )
    taken = read(conn, record.execution_id)
    assert taken is not None
    return ExecutionClaim(taken, lease=Lease(record.execution_id, executor, epoch, expires))


def claim_execution(conn: sqlite3.Connection, read: ReadExecution, execution_id: str,
                    executor: str, lease_seconds: float, now: float,
                    dead_owners: Collection[str] = ()) -> ExecutionClaim:
    record = _existing(conn, read, execution_id)
    if not claimable(record, executor, now, dead_owners):
        return ExecutionClaim(record)
    return _take(conn, read, record, executor, lease_seconds, now)


def renew_leases(conn: sqlite3.Connection, read: ReadExecution, executor: str,
                 held: Mapping[str, int], lease_seconds: float, now: float,
                 claim_orphans: int, skip: Collection[str] = (),
                 dead_owners: Collection[str] = ()) -> LeaseRound:
    conn.execute("UPDATE executors SET heartbeat_at = ? WHERE executor_id = ?", (now, executor))
    expires = now + lease_seconds
    renewed: list[Lease] = []
    lost: list[tuple[str, ExecutionRecord | None]] = []
    ids = sorted(held)
    current: dict[str, tuple[str | None, int]] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        for eid, owner, epoch in conn.execute(
            "SELECT execution_id, owner, lease_epoch FROM executions "
            f"WHERE execution_id IN ({_marks(chunk)})", chunk,
        ):
            current[eid] = (owner, epoch)
    for eid in ids:
        if current.get(eid) == (executor, held[eid]):
            renewed.append(Lease(eid, executor, held[eid], expires))
        else:
            lost.append((eid, read(conn, eid)))
    conn.execute(
        f"UPDATE executions SET lease_expires_at = ? WHERE owner = ? AND status IN {_ACTIVE}",
        (expires, executor),
    )
    claimed: list[ExecutionClaim] = []
    if claim_orphans > 0:
        dead = sorted(dead_owners)
        rows = conn.execute(
            f"SELECT execution_id FROM executions WHERE status IN {_ACTIVE} "
            "AND spec IS NOT NULL AND (owner IS NULL OR owner = ? OR lease_expires_at IS NULL "
            f"OR lease_expires_at < ? OR owner IN ({_marks(dead)})) ORDER BY created_at, rowid",
            (executor, now, *dead),
        ).fetchall()
        for (eid,) in rows:
            if len(claimed) >= claim_orphans:
                break
            if eid in held or eid in skip:
                continue
            record = read(conn, eid)
            if record is not None and claimable(record, executor, now, dead_owners):
                claimed.append(_take(conn, read, record, executor, lease_seconds, now))
    owned = [lease.execution_id for lease in renewed] + [
        c.record.execution_id for c in claimed]
    signals = _take_signals(conn, owned)
    next_expiry = conn.execute(
        f"SELECT min(lease_expires_at) FROM executions WHERE status IN {_ACTIVE} "
        "AND owner IS NOT NULL AND owner != ?", (executor,),
    ).fetchone()[0]
    return LeaseRound(tuple(renewed), tuple(lost), tuple(claimed), signals, next_expiry)


def _take_signals(conn: sqlite3.Connection, execution_ids: Sequence[str]) -> tuple[Signal, ...]:
    found: list[Signal] = []
    for start in range(0, len(execution_ids), _CHUNK):
        chunk = list(execution_ids[start:start + _CHUNK])
        rows = conn.execute(
            "SELECT signal_id, execution_id, kind, branch_id, op_id FROM signals "
            f"WHERE execution_id IN ({_marks(chunk)}) ORDER BY signal_id", chunk,
        ).fetchall()
        found += [Signal(r[0], r[1], SignalKind(r[2]), r[3], r[4]) for r in rows]
        conn.execute(f"DELETE FROM signals WHERE execution_id IN ({_marks(chunk)})", chunk)
    return tuple(found)


def release_leases(conn: sqlite3.Connection, executor: str, held: Mapping[str, int],
                   now: float) -> None:
    conn.executemany(
        "UPDATE executions SET lease_expires_at = ? WHERE execution_id = ? AND owner = ? "
        "AND lease_epoch = ?", [(now, eid, executor, epoch) for eid, epoch in held.items()],
    )


def _signal(conn: sqlite3.Connection, execution_id: str, kind: SignalKind, now: float,
            branch_id: str | None = None, op_id: str | None = None) -> None:
    conn.execute(
        "INSERT INTO signals (execution_id, kind, branch_id, op_id, created_at) "
        "VALUES (?, ?, ?, ?, ?)", (execution_id, kind.value, branch_id, op_id, now),
    )


def cancel_execution(conn: sqlite3.Connection, read: ReadExecution, execution_id: str,
                     now: float) -> ExecutionRecord:
    record = _existing(conn, read, execution_id)
    if record.status.finished:
        return record
    conn.execute("UPDATE executions SET status = 'CANCELLED', updated_at = ? "
                 "WHERE execution_id = ?", (now, execution_id))
    _signal(conn, execution_id, SignalKind.CANCEL, now)
    cancelled = read(conn, execution_id)
    assert cancelled is not None
    return cancelled


def settle_operation(conn: sqlite3.Connection, upsert: str, row: tuple[Any, ...],
                     read_op: Callable[[], OperationRecord], update: OperationUpdate,
                     now: float) -> OperationRecord:
    before = conn.total_changes
    conn.execute(upsert, row)
    if conn.total_changes != before:
        _signal(conn, update.execution_id, SignalKind.CALLBACK, now, update.branch_id,
                update.op_id)
    return read_op()


def reopen_execution(conn: sqlite3.Connection, read: ReadExecution,
                     read_ops: Callable[[str], list[OperationRecord]], execution_id: str,
                     executor: str, lease_seconds: float, now: float,
                     deadline_at: float | None) -> ExecutionClaim:
    record = _existing(conn, read, execution_id)
    if record.status.value not in ("FAILED", "CANCELLED"):
        return ExecutionClaim(record)
    doomed = [(op.branch_id, op.op_id) for op in read_ops(execution_id) if reruns(op)]
    conn.executemany("DELETE FROM operations WHERE branch_id = ? AND op_id = ?", doomed)
    conn.execute("UPDATE branches SET status = 'PENDING', error = NULL, updated_at = ? "
                 "WHERE execution_id = ? AND status = 'FAILED'", (now, execution_id))
    conn.execute(
        "UPDATE executions SET status = 'RUNNING', result = NULL, error = NULL, deadline_at = ?, "
        "updated_at = ? WHERE execution_id = ?", (deadline_at, now, execution_id),
    )
    reopened = read(conn, execution_id)
    assert reopened is not None
    return _take(conn, read, reopened, executor, lease_seconds, now)


def delete_execution(conn: sqlite3.Connection, read: ReadExecution, execution_id: str) -> bool:
    record = read(conn, execution_id)
    if record is None:
        return False
    if not record.status.finished:
        raise ValueError(f"execution {execution_id!r} is {record.status.value}; cancel it first")
    for table in ("operations", "branches", "signals", "executions"):
        conn.execute(f"DELETE FROM {table} WHERE execution_id = ?", (execution_id,))
    return True


def read_payloads(conn: sqlite3.Connection, execution_id: str | None,
                  exclude: str | None) -> Iterator[bytes]:
    params: tuple[str, ...] = ()
    where = ""
    if execution_id is not None:
        where, params = "WHERE execution_id = ?", (execution_id,)
    elif exclude is not None:
        where, params = "WHERE execution_id != ?", (exclude,)
    for sql in (f"SELECT result, error FROM executions {where}",
                f"SELECT input, result, error FROM branches {where}",
                f"SELECT payload, error FROM operations {where}"):
        for row in conn.execute(sql, params):
            yield from (field for field in row if field)


__all__ = [
    "cancel_execution",
    "check_fence",
    "claim_execution",
    "create_execution",
    "delete_execution",
    "read_executor",
    "read_payloads",
    "register_executor",
    "release_leases",
    "renew_leases",
    "reopen_execution",
    "settle_operation",
]
