"""The PostgreSQL store's tables, upserts and row decoding: SQLite's, in PostgreSQL's types.

The same tables and columns as ``runtime.stores.sqlite``, plus a ``row_order`` identity
column where SQLite orders by ``rowid``. The upserts keep SQLite's semantics:
a ``None`` field keeps what is stored, a SUCCEEDED/FAILED branch or operation
keeps its first outcome, a create-only branch update never touches a branch
that exists, and an operation's ``seq`` is the order of its first write, and a
finished execution keeps its status.

Migration 2 adds what SQLite's adds (lease columns, ``executors``, ``signals``),
plus ``signals.taken_by`` (see ``postgres_leases``) and ``durable_actors_fence``,
the function that locks and checks a fenced batch's executions, so that the
fence costs no round trip of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from actors.records import (
    BranchLog,
    BranchRecord,
    BranchUpdate,
    ExecutionUpdate,
    OperationRecord,
    OperationUpdate,
    Update,
)
from runtime.stores.rows import (
    BRANCH_COLUMNS,
    EXECUTION_COLUMNS,
    OPERATION_COLUMNS,
    branch_record,
    execution_record,
    operation_record,
)
from runtime.stores.sqlite_schema import Migration

FENCE_SQLSTATE = "DA001"  # what durable_actors_fence raises: the batch's lease is lost

# Append only: a released migration is never edited, a new one is added at the end.
MIGRATIONS: list[Migration] = [
    Migration(
        "executions, branches and operations",
        (
            """CREATE TABLE executions (
                execution_id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL,
                spec BYTEA, branch_count BIGINT NOT NULL, result BYTEA, error BYTEA,
                created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
                row_order BIGINT GENERATED ALWAYS AS IDENTITY)""",
            """CREATE TABLE branches (
                branch_id TEXT PRIMARY KEY, execution_id TEXT NOT NULL,
                parent_branch_id TEXT, parent_op_id TEXT, idx BIGINT NOT NULL,
                status TEXT NOT NULL, input BYTEA, result BYTEA, error BYTEA,
                epoch BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                row_order BIGINT GENERATED ALWAYS AS IDENTITY)""",
            "CREATE INDEX branches_by_execution ON branches (execution_id, parent_branch_id, idx)",
            """CREATE TABLE operations (
                branch_id TEXT NOT NULL, op_id TEXT NOT NULL, execution_id TEXT NOT NULL,
                seq BIGINT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
                status TEXT NOT NULL, attempt BIGINT NOT NULL, payload BYTEA, error BYTEA,
                due_at DOUBLE PRECISION, created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (branch_id, op_id))""",
            "CREATE UNIQUE INDEX operations_by_branch ON operations (branch_id, seq)",
            """CREATE INDEX operations_due ON operations (due_at)
                WHERE due_at IS NOT NULL AND status IN ('SUSPENDED', 'RETRYING')""",
        ),
    ),
    Migration(
        "executors, execution leases and fingerprints, signals, the lease fence",
        (
            """ALTER TABLE executions ADD COLUMN fingerprint TEXT, ADD COLUMN owner TEXT,
                ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0,
                ADD COLUMN lease_expires_at DOUBLE PRECISION,
                ADD COLUMN deadline_at DOUBLE PRECISION""",
            "CREATE INDEX executions_by_status ON executions (status, created_at)",
            "CREATE INDEX operations_by_execution ON operations (execution_id)",
            """CREATE TABLE executors (
                executor_id TEXT PRIMARY KEY, host TEXT NOT NULL, pid BIGINT NOT NULL,
                started_at DOUBLE PRECISION NOT NULL, heartbeat_at DOUBLE PRECISION NOT NULL)""",
            # taken_by: the lease round that took the signal, until its owner saw the round's
            # answer (a round whose answer was lost hands its signals out again).
            """CREATE TABLE signals (
                signal_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                execution_id TEXT NOT NULL, kind TEXT NOT NULL, branch_id TEXT, op_id TEXT,
                created_at DOUBLE PRECISION NOT NULL, taken_by TEXT)""",
            "CREATE INDEX signals_by_execution ON signals (execution_id)",
            "CREATE INDEX signals_by_round ON signals (taken_by) WHERE taken_by IS NOT NULL",
            # Locks the rows of the executions a batch writes (FOR SHARE: a claim waits for
            # the batch), then refuses the whole transaction if any is not held at its epoch.
            # One locking statement: a row a claim changed meanwhile is read again after it.
            f"""CREATE FUNCTION durable_actors_fence(
                    fence_executor TEXT, fence_ids TEXT[], fence_epochs BIGINT[])
                RETURNS void LANGUAGE plpgsql AS $$
                DECLARE
                    refused TEXT[];
                BEGIN
                    IF cardinality(fence_ids) = 1 THEN
                        PERFORM 1 FROM executions WHERE execution_id = fence_ids[1]
                            AND owner = fence_executor AND lease_epoch = fence_epochs[1]
                            FOR SHARE;
                        IF FOUND THEN
                            RETURN;
                        END IF;
                        refused := fence_ids;
                    ELSE
                        SELECT array_agg(w.id ORDER BY w.id) INTO refused
                            FROM unnest(fence_ids, fence_epochs) AS w(id, epoch)
                            WHERE NOT EXISTS (
                                SELECT 1 FROM executions x WHERE x.execution_id = w.id
                                    AND x.owner = fence_executor AND x.lease_epoch = w.epoch
                                FOR SHARE);
                        IF refused IS NULL THEN
                            RETURN;
                        END IF;
                    END IF;
                    RAISE EXCEPTION USING ERRCODE = '{FENCE_SQLSTATE}',
                        MESSAGE = fence_executor, DETAIL = array_to_json(refused)::text;
                END
                $$""",
        ),
    ),
]

_EXECUTION_WRITES = (
    "execution_id, kind, status, spec, branch_count, result, error, created_at, updated_at"
)

# Named parameters may repeat: DO UPDATE reuses the bound values, NULL keeps the stored field.
# A SUCCEEDED/FAILED row keeps its status: updates from different processes reach the store
# in either order, and the first outcome written is the one everybody was told.
# A finished execution (SUCCEEDED, FAILED, CANCELLED) is never overwritten by a commit.
UPSERT_EXECUTION = f"""
INSERT INTO executions AS x ({_EXECUTION_WRITES})
VALUES (%(e)s, coalesce(%(kind)s, ''), %(status)s, %(spec)s, coalesce(%(count)s, 0),
    %(result)s, %(error)s, %(now)s, %(now)s)
ON CONFLICT (execution_id) DO UPDATE SET
    kind = coalesce(%(kind)s, x.kind), status = %(status)s, spec = coalesce(%(spec)s, x.spec),
    branch_count = coalesce(%(count)s, x.branch_count), result = coalesce(%(result)s, x.result),
    error = coalesce(%(error)s, x.error), updated_at = %(now)s
WHERE x.status NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED')"""
# The values of a branch or operation row, cast: the same list serves a VALUES row and the
# SELECT of a fenced upsert (where a NULL would otherwise be taken for text).
_BRANCH_VALUES = """%(e)s::text, %(b)s::text, %(parent)s::text, %(parent_op)s::text,
    coalesce(%(idx)s::bigint, 0), %(status)s::text, %(input)s::bytea, %(result)s::bytea,
    %(error)s::bytea, coalesce(%(epoch)s::bigint, 0), %(now)s::float8, %(now)s::float8"""
_BRANCH_CONFLICT = """ON CONFLICT (branch_id) DO UPDATE SET
    parent_branch_id = coalesce(%(parent)s, x.parent_branch_id),
    parent_op_id = coalesce(%(parent_op)s, x.parent_op_id), idx = coalesce(%(idx)s, x.idx),
    status = %(status)s, input = coalesce(%(input)s, x.input),
    result = coalesce(%(result)s, x.result), error = coalesce(%(error)s, x.error),
    epoch = coalesce(%(epoch)s, x.epoch), updated_at = %(now)s
WHERE NOT %(create_only)s
    AND NOT (x.status IN ('SUCCEEDED', 'FAILED') AND %(status)s <> x.status)"""
_OPERATION_VALUES = """%(e)s::text, %(b)s::text, %(o)s::text,
    (SELECT coalesce(max(seq) + 1, 0) FROM operations WHERE branch_id = %(b)s),
    %(kind)s::text, %(name)s::text, %(status)s::text, %(attempt)s::bigint, %(payload)s::bytea,
    %(error)s::bytea, %(due)s::float8, %(now)s::float8, %(now)s::float8"""
_OPERATION_CONFLICT = """ON CONFLICT (branch_id, op_id) DO UPDATE SET
    kind = %(kind)s, name = %(name)s, status = %(status)s, attempt = %(attempt)s,
    payload = coalesce(%(payload)s, x.payload),
    error = CASE WHEN %(status)s = 'SUCCEEDED' THEN %(error)s ELSE coalesce(%(error)s, x.error) END,
    due_at = coalesce(%(due)s, x.due_at), updated_at = %(now)s
WHERE NOT (x.status IN ('SUCCEEDED', 'FAILED') AND %(status)s <> x.status)"""
UPSERT_BRANCH = f"""
INSERT INTO branches AS x ({BRANCH_COLUMNS})
VALUES ({_BRANCH_VALUES})
{_BRANCH_CONFLICT}"""
UPSERT_OPERATION = f"""
INSERT INTO operations AS x ({OPERATION_COLUMNS})
VALUES ({_OPERATION_VALUES})
{_OPERATION_CONFLICT}"""

# A batch's fence: a statement of its own in a transaction, or the FROM of a lone upsert
# (which is then its own transaction, fence and write in one statement).
FENCE = "durable_actors_fence(%(fx)s::text, %(fids)s::text[], %(feps)s::bigint[])"
FENCED_UPSERT_BRANCH = f"""
INSERT INTO branches AS x ({BRANCH_COLUMNS})
SELECT {_BRANCH_VALUES} FROM {FENCE} AS fence
{_BRANCH_CONFLICT}"""
FENCED_UPSERT_OPERATION = f"""
INSERT INTO operations AS x ({OPERATION_COLUMNS})
SELECT {_OPERATION_VALUES} FROM {FENCE} AS fence
{_OPERATION_CONFLICT}"""

Row = dict[str, Any]


def rows_by_table(updates: Sequence[Update], now: float) -> tuple[list[Row], list[Row], list[Row]]:
    """The upserts' parameters, per table (executions, branches, operations), in order.

    One executemany per table keeps each table's order (what upserts and seq depend on):
    the tables do not refer to each other.
    """
    executions: list[Row] = []
    branches: list[Row] = []
    operations: list[Row] = []
    for u in updates:
        if isinstance(u, OperationUpdate):
            operations.append({
                "e": u.execution_id, "b": u.branch_id, "o": u.op_id, "kind": u.kind._value_,
                "name": u.name, "status": u.status._value_, "attempt": u.attempt,
                "payload": u.payload, "error": u.error, "due": u.due_at, "now": now})
        elif isinstance(u, BranchUpdate):
            branches.append({
                "e": u.execution_id, "b": u.branch_id, "parent": u.parent_branch_id,
                "parent_op": u.parent_op_id, "idx": u.index, "status": u.status._value_,
                "input": u.input, "result": u.result, "error": u.error, "epoch": u.epoch,
                "now": now, "create_only": u.create_only})
        elif isinstance(u, ExecutionUpdate):
            executions.append({
                "e": u.execution_id, "kind": u.kind, "status": u.status._value_,
                "spec": u.spec, "count": u.branch_count, "result": u.result,
                "error": u.error, "now": now})
        else:
            raise TypeError(
                f"commit() takes ExecutionUpdate, BranchUpdate or OperationUpdate, "
                f"not {type(u).__name__}"
            )
    return executions, branches, operations


def read_logs_of(conn: Any, branch_ids: Sequence[str]) -> dict[str, BranchLog]:
    """The logs of ``branch_ids`` (each once), read on ``conn`` inside its transaction."""
    return read_logs_later(conn, branch_ids)()


def read_logs_later(conn: Any, branch_ids: Sequence[str]) -> Callable[[], dict[str, BranchLog]]:
    """Queue the reads of ``read_logs_of``; the returned call fetches them (in a pipeline,
    after the statements queued meanwhile)."""
    wanted = list(dict.fromkeys(branch_ids))
    branch_rows = conn.execute(
        f"SELECT {BRANCH_COLUMNS} FROM branches WHERE branch_id = ANY(%s)", (wanted,))
    op_rows = conn.execute(
        f"SELECT {OPERATION_COLUMNS} FROM operations WHERE branch_id = ANY(%s) "
        "ORDER BY branch_id, seq", (wanted,))

    def fetch() -> dict[str, BranchLog]:
        found: dict[str, BranchRecord] = {}
        ops: dict[str, list[OperationRecord]] = {b: [] for b in wanted}
        for row in branch_rows:
            found[row[1]] = branch_record(row)
        for row in op_rows:
            ops[row[1]].append(operation_record(row))
        return {b: BranchLog(b, found.get(b), tuple(ops[b])) for b in wanted}

    return fetch


def read_payloads(conn: Any, execution_id: str | None, exclude: str | None) -> list[bytes]:
    """Every stored blob field of one execution (or of all but ``exclude``), read on ``conn``."""
    where, params = "", ()  # type: str, tuple[str, ...]
    if execution_id is not None:
        where, params = "WHERE execution_id = %s", (execution_id,)
    elif exclude is not None:
        where, params = "WHERE execution_id <> %s", (exclude,)
    found: list[bytes] = []
    for sql in (f"SELECT result, error FROM executions {where}",
                f"SELECT input, result, error FROM branches {where}",
                f"SELECT payload, error FROM operations {where}"):
        for row in conn.execute(sql, params):
            found += [bytes(field) for field in row if field]
    return found


__all__ = ["BRANCH_COLUMNS", "EXECUTION_COLUMNS", "FENCE", "FENCED_UPSERT_BRANCH",
           "FENCED_UPSERT_OPERATION", "FENCE_SQLSTATE", "MIGRATIONS", "OPERATION_COLUMNS",
           "UPSERT_BRANCH", "UPSERT_EXECUTION", "UPSERT_OPERATION", "branch_record",
           "execution_record", "operation_record", "read_logs_later", "read_logs_of",
           "read_payloads", "rows_by_table"]
