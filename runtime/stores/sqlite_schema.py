"""The SQLite store's schema: its migrations, its columns and upserts, records in and out.

    MIGRATIONS[i]            # takes a store from schema version i to i + 1
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, NamedTuple

from actors.records._rows import BranchLog, BranchRecord, OperationRecord
from actors.records._updates import BranchUpdate, ExecutionUpdate, OperationUpdate, Update
from runtime.stores.rows import (
    BRANCH_COLUMNS,
    EXECUTION_COLUMNS,
    OPERATION_COLUMNS,
    branch_record,
    operation_record,
)


class Migration(NamedTuple):
    """One step of the schema; ``MIGRATIONS[i]`` takes a store from version ``i`` to ``i + 1``."""

    description: str
    statements: tuple[str, ...]


# Append only: a released migration is never edited, a new one is added at the end.
MIGRATIONS: list[Migration] = [
    Migration(
        "executions, branches and operations",
        (
            """CREATE TABLE executions (
                execution_id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL,
                spec BLOB, branch_count INTEGER NOT NULL, result BLOB, error BLOB,
                created_at REAL NOT NULL, updated_at REAL NOT NULL)""",
            """CREATE TABLE branches (
                branch_id TEXT PRIMARY KEY, execution_id TEXT NOT NULL,
                parent_branch_id TEXT, parent_op_id TEXT, idx INTEGER NOT NULL,
                status TEXT NOT NULL, input BLOB, result BLOB, error BLOB,
                epoch INTEGER NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL)""",
            "CREATE INDEX branches_by_execution ON branches (execution_id, parent_branch_id, idx)",
            """CREATE TABLE operations (
                branch_id TEXT NOT NULL, op_id TEXT NOT NULL, execution_id TEXT NOT NULL,
                seq INTEGER NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
                status TEXT NOT NULL, attempt INTEGER NOT NULL, payload BLOB, error BLOB,
                due_at REAL, created_at REAL NOT NULL, updated_at REAL NOT NULL,
                UNIQUE (branch_id, op_id))""",
            "CREATE UNIQUE INDEX operations_by_branch ON operations (branch_id, seq)",
            """CREATE INDEX operations_due ON operations (due_at)
                WHERE due_at IS NOT NULL AND status IN ('SUSPENDED', 'RETRYING')""",
        ),
    ),
    Migration(
        "executors, execution leases and fingerprints, signals",
        (
            "ALTER TABLE executions ADD COLUMN fingerprint TEXT",
            "ALTER TABLE executions ADD COLUMN owner TEXT",
            "ALTER TABLE executions ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE executions ADD COLUMN lease_expires_at REAL",
            "ALTER TABLE executions ADD COLUMN deadline_at REAL",
            "CREATE INDEX executions_by_status ON executions (status, created_at)",
            "CREATE INDEX operations_by_execution ON operations (execution_id)",
            """CREATE TABLE executors (
                executor_id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL,
                started_at REAL NOT NULL, heartbeat_at REAL NOT NULL)""",
            """CREATE TABLE signals (
                signal_id INTEGER PRIMARY KEY AUTOINCREMENT, execution_id TEXT NOT NULL,
                kind TEXT NOT NULL, branch_id TEXT, op_id TEXT, created_at REAL NOT NULL)""",
            "CREATE INDEX signals_by_execution ON signals (execution_id)",
        ),
    ),
]

SYNCHRONOUS_MODES = ("FULL", "NORMAL", "OFF")

# Numbered parameters let DO UPDATE reuse the bound values: NULL keeps the stored field.
# A SUCCEEDED/FAILED branch or operation keeps its status: updates from different processes
# (a deferred suspension, a completion, a timeout) can reach the store in either order, and
# the first outcome written is the one everybody was told.
UPSERT_EXECUTION = """
INSERT INTO executions (execution_id, kind, status, spec, branch_count, result, error,
    created_at, updated_at)
VALUES (?1, coalesce(?2, ''), ?3, ?4, coalesce(?5, 0), ?6, ?7, ?8, ?8)
ON CONFLICT (execution_id) DO UPDATE SET
    kind = coalesce(?2, kind), status = ?3, spec = coalesce(?4, spec),
    branch_count = coalesce(?5, branch_count), result = coalesce(?6, result),
    error = coalesce(?7, error), updated_at = ?8
WHERE status NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED')"""
UPSERT_BRANCH = f"""
INSERT INTO branches ({BRANCH_COLUMNS})
VALUES (?1, ?2, ?3, ?4, coalesce(?5, 0), ?6, ?7, ?8, ?9, coalesce(?10, 0), ?11, ?11)
ON CONFLICT (branch_id) DO UPDATE SET
    parent_branch_id = coalesce(?3, parent_branch_id), parent_op_id = coalesce(?4, parent_op_id),
    idx = coalesce(?5, idx), status = ?6, input = coalesce(?7, input),
    result = coalesce(?8, result), error = coalesce(?9, error), epoch = coalesce(?10, epoch),
    updated_at = ?11
WHERE ?12 = 0 AND NOT (status IN ('SUCCEEDED', 'FAILED') AND ?6 != status)"""
UPSERT_OPERATION = f"""
INSERT INTO operations ({OPERATION_COLUMNS})
VALUES (?1, ?2, ?3, (SELECT coalesce(max(seq) + 1, 0) FROM operations WHERE branch_id = ?2),
    ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)
ON CONFLICT (branch_id, op_id) DO UPDATE SET
    kind = ?4, name = ?5, status = ?6, attempt = ?7, payload = coalesce(?8, payload),
    error = CASE WHEN ?6 = 'SUCCEEDED' THEN ?9 ELSE coalesce(?9, error) END,
    due_at = coalesce(?10, due_at), updated_at = ?11
WHERE NOT (status IN ('SUCCEEDED', 'FAILED') AND ?6 != status)"""
IN_CHUNK = 500  # branch ids per IN (...) query; far below SQLite's variable limit

Rows = list[tuple[Any, ...]]


def update_rows(updates: Sequence[Update], now: float) -> tuple[Rows, Rows, Rows]:
    """``updates`` as the bound values of the three upserts: executions, branches, operations.

    Tables do not refer to each other, so one executemany per table keeps each
    table's order (what upserts and seq depend on) and the result of the whole.
    """
    executions: Rows = []
    branches: Rows = []
    operations: Rows = []
    # Enums as plain str via ``_value_``: binding a member makes sqlite3 look for an
    # adapter and ``.value`` is a slow descriptor; both cost more than the SQL on this path.
    for u in updates:
        if isinstance(u, OperationUpdate):
            operations.append((u.execution_id, u.branch_id, u.op_id, u.kind._value_, u.name,
                               u.status._value_, u.attempt, u.payload, u.error, u.due_at, now))
        elif isinstance(u, BranchUpdate):
            branches.append((u.execution_id, u.branch_id, u.parent_branch_id, u.parent_op_id,
                             u.index, u.status._value_, u.input, u.result, u.error, u.epoch,
                             now, int(u.create_only)))
        elif isinstance(u, ExecutionUpdate):
            executions.append((u.execution_id, u.kind, u.status._value_, u.spec,
                               u.branch_count, u.result, u.error, now))
        else:
            raise TypeError(
                f"commit() takes ExecutionUpdate, BranchUpdate or OperationUpdate, "
                f"not {type(u).__name__}"
            )
    return executions, branches, operations


def branch_logs(conn: sqlite3.Connection, branch_ids: Sequence[str]) -> dict[str, BranchLog]:
    """The logs of ``branch_ids`` (each once, in order), read on ``conn``."""
    wanted = list(dict.fromkeys(branch_ids))
    found: dict[str, BranchRecord] = {}
    ops: dict[str, list[OperationRecord]] = {b: [] for b in wanted}
    for start in range(0, len(wanted), IN_CHUNK):
        chunk = wanted[start:start + IN_CHUNK]
        marks = ", ".join("?" * len(chunk))
        for row in conn.execute(
            f"SELECT {BRANCH_COLUMNS} FROM branches WHERE branch_id IN ({marks})", chunk
        ):
            found[row[1]] = branch_record(row)
        for row in conn.execute(
            f"SELECT {OPERATION_COLUMNS} FROM operations WHERE branch_id IN ({marks}) "
            "ORDER BY branch_id, seq",
            chunk,
        ):
            ops[row[1]].append(operation_record(row))
    return {b: BranchLog(b, found.get(b), tuple(ops[b])) for b in wanted}


__all__ = [
    "BRANCH_COLUMNS",
    "EXECUTION_COLUMNS",
    "IN_CHUNK",
    "MIGRATIONS",
    "OPERATION_COLUMNS",
    "SYNCHRONOUS_MODES",
    "UPSERT_BRANCH",
    "UPSERT_EXECUTION",
    "UPSERT_OPERATION",
    "Migration",
    "branch_logs",
    "update_rows",
]
