"""The lease half of the store contract on PostgreSQL: executors, claims, releases, reruns.

Each function queues its statements inside one transaction that ``PostgresStore``
opened (READ COMMITTED, sent as one pipeline) and returns what fetches its
answer once the COMMIT is queued, so most calls cost one round trip. Every
check and the write that depends on it is one conditional statement, or holds
the rows it checked: a claim is an ``UPDATE ... WHERE <claimable>`` (two systems
racing for one execution: the second waits for the first's row lock, then finds
the row no longer claimable), orphans are taken ``FOR UPDATE SKIP LOCKED``, and
a fenced batch locks its executions ``FOR SHARE`` before it writes
(``durable_actors_fence``); the periodic round that renews, claims orphans and takes
signals is ``postgres_lease_round``. ``actors.records`` explains the rules;
``actors.store.MemoryStore`` is the same semantics in memory.

**Whose clock.** Lease expiries and heartbeats are compared across hosts, so
they are kept on one clock, the server's (``LeaseCall.clock`` None): a host
whose clock is off by a minute neither steals live leases nor loses its own.
What a call returns is put back on the caller's clock (``LeaseCall.local``):
``Lease.expires_at`` and ``LeaseRound.next_expiry`` compare with the ``now`` the
caller passed. With ``clock=now`` the caller's clock is used, as SQLite does
(tests with a fake clock). ``created_at``, ``updated_at``, deadlines and timers
stay on the caller's clock.

**Run again after a lost connection.** ``PostgresSession`` runs a transaction
again when its connection died, even if its COMMIT had landed, so each
function gives the same answer the second time: a claim claims again (the
store and the answer agree on the epoch), a creation or a reopening that this
same call made is recognised (``created_at``/``updated_at`` equal to its
``now``), and a round's signals are marked with the round (``taken_by``) and
deleted only by the next round of the same store, once the answer arrived.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from actors.errors import UnknownExecutionError
from actors.records import (
    ExecutionClaim,
    ExecutionRecord,
    ExecutionStatus,
    ExecutorInfo,
    Lease,
    NewExecution,
)
from actors.store import check_executor_free, reruns
from runtime.stores.postgres_changes import CHANNEL, RELEASED
from runtime.stores.postgres_schema import (
    EXECUTION_COLUMNS,
    OPERATION_COLUMNS,
    execution_record,
    operation_record,
)

Fetch = Callable[[], Any]

CLOCK = "coalesce(%(clock)s::float8, extract(epoch FROM now())::float8)"
ACTIVE = "('RUNNING', 'SUSPENDED')"
CLAIMABLE = f"""status IN {ACTIVE} AND (owner IS NULL OR owner = %(me)s
    OR lease_expires_at IS NULL OR lease_expires_at < {CLOCK} OR owner = ANY(%(dead)s::text[]))"""
NOTIFY = f"pg_notify('{CHANNEL}', execution_id)"
X_COLUMNS = ", ".join(f"x.{column.strip()}" for column in EXECUTION_COLUMNS.split(","))
_READ_EXECUTION = f"SELECT {EXECUTION_COLUMNS}, {CLOCK} FROM executions WHERE execution_id = %(e)s"


@dataclass(frozen=True, slots=True)
class LeaseCall:
    """Who calls, with which lease, when; ``clock`` None: lease times by the server's clock."""

    executor: str
    lease_seconds: float
    now: float
    clock: float | None

    def params(self, **more: Any) -> dict[str, Any]:
        return {"me": self.executor, "lease": self.lease_seconds, "now": self.now,
                "clock": self.clock, "dead": [], **more}

    def local(self, stored: float | None, server_now: float) -> float | None:
        """A lease time of the store's clock, on the caller's (the clock ``now`` is of)."""
        return None if stored is None else stored - server_now + self.now

    def lease(self, record: ExecutionRecord, server_now: float) -> Lease:
        expires = self.local(record.lease_expires_at, server_now)
        return Lease(record.execution_id, self.executor, record.lease_epoch,
                     expires if expires is not None else self.now + self.lease_seconds)


def _existing(cursor: Any, execution_id: str) -> tuple[ExecutionRecord, float]:
    """The row ``_READ_EXECUTION`` read, and the store's clock then."""
    row = cursor.fetchone()
    if row is None:
        raise UnknownExecutionError(f"no execution {execution_id!r} in this store")
    return execution_record(row), row[-1]


# -- executors ---------------------------------------------------------------------------

_REGISTER = f"""
INSERT INTO executors AS x (executor_id, host, pid, started_at, heartbeat_at)
VALUES (%(id)s, %(host)s, %(pid)s, {CLOCK}, {CLOCK})
ON CONFLICT (executor_id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
    started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at
WHERE NOT %(alive)s OR (x.host = excluded.host AND x.pid = excluded.pid)
    OR excluded.heartbeat_at - x.heartbeat_at >= %(lease)s
RETURNING 1"""


def register_executor(conn: Any, call: LeaseCall, executor: ExecutorInfo, alive: bool) -> Fetch:
    """One conditional upsert: two incarnations registering at once cannot both pass."""
    p = call.params(id=executor.executor_id, host=executor.host, pid=executor.pid, alive=alive)
    written = conn.execute(_REGISTER, p)
    found = conn.execute(
        f"SELECT host, pid, heartbeat_at, {CLOCK} FROM executors WHERE executor_id = %(id)s", p)

    def fetch() -> None:
        if written.fetchone() is not None:
            return
        host, pid, heartbeat, server_now = found.fetchone()
        check_executor_free(executor, ExecutorInfo(executor.executor_id, host, pid), heartbeat,
                            call.lease_seconds, server_now)
        raise AssertionError("the executor upsert was refused by a rule check_executor_free "
                             "does not know")

    return fetch


def read_executors(conn: Any, executor_id: str | None) -> list[tuple[ExecutorInfo, float]]:
    where = "" if executor_id is None else " WHERE executor_id = %s"
    rows = conn.execute(f"SELECT executor_id, host, pid, heartbeat_at FROM executors{where}",
                        () if executor_id is None else (executor_id,)).fetchall()
    return [(ExecutorInfo(r[0], r[1], r[2]), r[3]) for r in rows]


# -- creating and claiming ---------------------------------------------------------------

_CREATE = f"""
WITH created AS (
    INSERT INTO executions (execution_id, kind, status, spec, branch_count, created_at,
        updated_at, fingerprint, owner, lease_epoch, lease_expires_at, deadline_at)
    VALUES (%(e)s, %(kind)s, 'RUNNING', %(spec)s, %(count)s, %(now)s, %(now)s, %(fp)s, %(me)s,
        1, {CLOCK} + %(lease)s, %(deadline)s)
    ON CONFLICT (execution_id) DO NOTHING
    RETURNING execution_id),
branches AS (
    INSERT INTO branches (execution_id, branch_id, idx, status, input, epoch, created_at,
        updated_at)
    SELECT %(e)s, t.b, t.i, 'PENDING', t.input, 0, %(now)s, %(now)s
    FROM unnest(%(ids)s::text[], %(idxs)s::bigint[], %(inputs)s::bytea[]) AS t(b, i, input)
    WHERE EXISTS (SELECT 1 FROM created)
    ON CONFLICT (branch_id) DO NOTHING)
SELECT count(*) FROM created"""


def create_execution(conn: Any, call: LeaseCall, new: NewExecution) -> Fetch:
    """The execution, its branches and its lease in one statement; nothing if the id exists."""
    p = call.params(e=new.execution_id, kind=new.kind, spec=new.spec, count=len(new.branches),
                    fp=new.fingerprint, deadline=new.deadline_at,
                    ids=[b.branch_id for b in new.branches],
                    idxs=[b.index for b in new.branches],
                    inputs=[b.input for b in new.branches])
    created = conn.execute(_CREATE, p)
    stored = conn.execute(_READ_EXECUTION, p)

    def fetch() -> ExecutionClaim:
        made = created.fetchone()[0] == 1
        record, server_now = _existing(stored, new.execution_id)
        if made or (record.owner == call.executor and record.lease_epoch == 1
                    and record.created_at == call.now and record.fingerprint == new.fingerprint):
            # (or this same call created it before its connection was lost)
            return ExecutionClaim(record, created=True, lease=call.lease(record, server_now))
        return ExecutionClaim(record)

    return fetch


_CLAIM = f"""
UPDATE executions SET owner = %(me)s, lease_epoch = lease_epoch + 1,
    lease_expires_at = {CLOCK} + %(lease)s, updated_at = %(now)s
WHERE execution_id = %(e)s AND {CLAIMABLE}
RETURNING {NOTIFY}"""


def claim_execution(conn: Any, call: LeaseCall, execution_id: str,
                    dead_owners: Collection[str]) -> Fetch:
    p = call.params(e=execution_id, dead=sorted(dead_owners))
    taken = conn.execute(_CLAIM, p)
    stored = conn.execute(_READ_EXECUTION, p)

    def fetch() -> ExecutionClaim:
        won = taken.fetchone() is not None
        record, server_now = _existing(stored, execution_id)
        return ExecutionClaim(record, lease=call.lease(record, server_now) if won else None)

    return fetch


# -- lease rounds --------------------------------------------------------------------------

def release_leases(conn: Any, call: LeaseCall, held: Mapping[str, int]) -> Fetch:
    """Released leases notify ``""`` (``RELEASED``): every system may look for orphans now."""
    ids = sorted(held)
    conn.execute(
        f"""WITH released AS (
            UPDATE executions x SET lease_expires_at = {CLOCK}
            FROM unnest(%(ids)s::text[], %(epochs)s::bigint[]) AS h(id, epoch)
            WHERE x.execution_id = h.id AND x.owner = %(me)s AND x.lease_epoch = h.epoch
            RETURNING x.execution_id)
        SELECT pg_notify('{CHANNEL}', '{RELEASED}') WHERE EXISTS (SELECT 1 FROM released)""",
        call.params(ids=ids, epochs=[held[e] for e in ids]))
    return lambda: None


# -- writes any system may make ----------------------------------------------------------

_CANCEL = f"""
WITH cancelled AS (
    UPDATE executions SET status = 'CANCELLED', updated_at = %(now)s
    WHERE execution_id = %(e)s AND status IN {ACTIVE}
    RETURNING execution_id)
INSERT INTO signals (execution_id, kind, created_at)
SELECT execution_id, 'CANCEL', %(now)s FROM cancelled WHERE {NOTIFY} IS NOT NULL"""


def cancel_execution(conn: Any, call: LeaseCall, execution_id: str) -> Fetch:
    p = call.params(e=execution_id)
    conn.execute(_CANCEL, p)
    stored = conn.execute(_READ_EXECUTION, p)
    return lambda: _existing(stored, execution_id)[0]


def settle_operation(conn: Any, upsert: str, row: dict[str, Any]) -> Fetch:
    """``upsert`` (the commit's operation upsert) and, if it wrote, the owner's signal."""
    conn.execute(
        f"""WITH settled AS ({upsert} RETURNING execution_id, branch_id, op_id)
        INSERT INTO signals (execution_id, kind, branch_id, op_id, created_at)
        SELECT execution_id, 'CALLBACK', branch_id, op_id, %(now)s FROM settled
        WHERE {NOTIFY} IS NOT NULL""", row)
    stored = conn.execute(
        f"SELECT {OPERATION_COLUMNS} FROM operations WHERE branch_id = %(b)s AND op_id = %(o)s",
        row)
    return lambda: operation_record(stored.fetchone())


def reopen_execution(conn: Any, call: LeaseCall, execution_id: str,
                     deadline_at: float | None) -> Fetch:
    """Three round trips at most: the row (locked), its operations, the reopening."""
    p = call.params(e=execution_id, deadline=deadline_at)
    record, server_now = _existing(conn.execute(f"{_READ_EXECUTION} FOR UPDATE", p),
                                   execution_id)
    if record.status not in (ExecutionStatus.FAILED, ExecutionStatus.CANCELLED):
        if record.status.finished or record.owner != call.executor or (
                record.updated_at != call.now):
            return lambda: ExecutionClaim(record)
        # This same call reopened it before its connection was lost.
        return lambda: ExecutionClaim(record, lease=call.lease(record, server_now))
    ops = [operation_record(r) for r in conn.execute(
        f"SELECT {OPERATION_COLUMNS} FROM operations WHERE execution_id = %(e)s", p)]
    doomed = [op for op in ops if reruns(op)]
    if doomed:
        conn.execute(
            "DELETE FROM operations o USING unnest(%(bs)s::text[], %(os)s::text[]) AS d(b, op) "
            "WHERE o.branch_id = d.b AND o.op_id = d.op",
            {"bs": [op.branch_id for op in doomed], "os": [op.op_id for op in doomed]})
    conn.execute("UPDATE branches SET status = 'PENDING', error = NULL, updated_at = %(now)s "
                 "WHERE execution_id = %(e)s AND status = 'FAILED'", p)
    conn.execute(
        f"""UPDATE executions SET status = 'RUNNING', result = NULL, error = NULL,
            deadline_at = %(deadline)s, updated_at = %(now)s, owner = %(me)s,
            lease_epoch = lease_epoch + 1, lease_expires_at = {CLOCK} + %(lease)s
        WHERE execution_id = %(e)s RETURNING {NOTIFY}""", p)
    stored = conn.execute(_READ_EXECUTION, p)

    def fetch() -> ExecutionClaim:
        reopened, now_then = _existing(stored, execution_id)
        return ExecutionClaim(reopened, lease=call.lease(reopened, now_then))

    return fetch


def delete_execution(conn: Any, execution_id: str) -> Fetch:
    row = conn.execute("SELECT status FROM executions WHERE execution_id = %s FOR UPDATE",
                       (execution_id,)).fetchone()
    if row is None:
        return lambda: False
    status = ExecutionStatus(row[0])
    if not status.finished:
        raise ValueError(f"execution {execution_id!r} is {status.value}; cancel it first")
    for table in ("operations", "branches", "signals"):
        conn.execute(f"DELETE FROM {table} WHERE execution_id = %s", (execution_id,))
    conn.execute(f"DELETE FROM executions WHERE execution_id = %s RETURNING {NOTIFY}",
                 (execution_id,))
    return lambda: True


__all__ = ["ACTIVE", "CLAIMABLE", "CLOCK", "NOTIFY", "X_COLUMNS", "Fetch", "LeaseCall",
           "cancel_execution", "claim_execution", "create_execution", "delete_execution",
           "read_executors", "register_executor", "release_leases", "reopen_execution",
           "settle_operation"]
