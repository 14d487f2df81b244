"""The lease round on PostgreSQL: one round trip renews, claims orphans and takes signals.

A system calls ``renew_leases`` every heartbeat (``PostgresStore.renew_leases``):
one statement renews what it holds, claims orphans ``FOR UPDATE SKIP LOCKED``
and takes the signals of both, so the round holds no lock across a round trip
and a paused owner never blocks a takeover. ``postgres_leases`` explains whose
clock lease times are on and why each call may run twice; ``SignalRounds``
is how a round run twice takes its signals again.

    rounds = SignalRounds()
    fetch = renew_leases(conn, call, held, 10, (), (), rounds.new_round(), rounds.acked)
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from typing import Any

from actors.records import ExecutionClaim, Lease, LeaseRound, Signal, SignalKind
from runtime.stores.postgres_leases import (
    ACTIVE,
    CLAIMABLE,
    CLOCK,
    NOTIFY,
    X_COLUMNS,
    Fetch,
    LeaseCall,
)
from runtime.stores.postgres_schema import EXECUTION_COLUMNS, execution_record

# One statement renews, claims orphans and takes the signals of both (CTEs see each other's
# RETURNING rows, not their writes): the round holds no lock across a round trip, so a
# paused owner never blocks a takeover. Its rows are the claimed executions (or one row of
# NULLs), each with the renewed ids and the signals taken, as arrays.
_ROUND = f"""
WITH renewed AS (
    UPDATE executions x SET lease_expires_at = CASE WHEN x.status IN {ACTIVE}
        THEN {CLOCK} + %(lease)s ELSE x.lease_expires_at END
    FROM unnest(%(ids)s::text[], %(epochs)s::bigint[]) AS h(id, epoch)
    WHERE x.execution_id = h.id AND x.owner = %(me)s AND x.lease_epoch = h.epoch
    RETURNING x.execution_id),
claimed AS (
    UPDATE executions x SET owner = %(me)s, lease_epoch = x.lease_epoch + 1,
        lease_expires_at = {CLOCK} + %(lease)s, updated_at = %(now)s
    FROM (SELECT execution_id FROM executions
          WHERE {CLAIMABLE} AND spec IS NOT NULL
              AND NOT (execution_id = ANY(%(ids)s::text[]))
              AND NOT (execution_id = ANY(%(skip)s::text[]))
          ORDER BY created_at, row_order LIMIT %(limit)s
          FOR UPDATE SKIP LOCKED) AS o
    WHERE x.execution_id = o.execution_id
    RETURNING {X_COLUMNS}, x.row_order, {NOTIFY.replace("execution_id", "x.execution_id")}),
taken AS (
    UPDATE signals SET taken_by = %(round)s
    WHERE execution_id IN (SELECT execution_id FROM renewed
                           UNION ALL SELECT execution_id FROM claimed)
    RETURNING signal_id, execution_id, kind, branch_id, op_id),
answer AS (
    SELECT (SELECT coalesce(array_agg(execution_id), '{{}}') FROM renewed) AS renewed_ids,
        (SELECT coalesce(array_agg(signal_id ORDER BY signal_id), '{{}}') FROM taken) AS s_ids,
        (SELECT array_agg(execution_id ORDER BY signal_id) FROM taken) AS s_executions,
        (SELECT array_agg(kind ORDER BY signal_id) FROM taken) AS s_kinds,
        (SELECT array_agg(branch_id ORDER BY signal_id) FROM taken) AS s_branches,
        (SELECT array_agg(op_id ORDER BY signal_id) FROM taken) AS s_ops)
SELECT answer.*, {", ".join(f"c.{column.strip()}" for column in EXECUTION_COLUMNS.split(","))}
FROM answer LEFT JOIN claimed c ON true
ORDER BY c.created_at, c.row_order"""
_LOST = f"""
SELECT h.id, x.execution_id IS NOT NULL, {X_COLUMNS}
FROM unnest(%(ids)s::text[], %(epochs)s::bigint[]) AS h(id, epoch)
LEFT JOIN executions x ON x.execution_id = h.id
WHERE x.execution_id IS NULL OR x.owner IS DISTINCT FROM %(me)s OR x.lease_epoch <> h.epoch"""
_NEXT_EXPIRY = f"""
SELECT {CLOCK}, (SELECT min(lease_expires_at) FROM executions WHERE status IN {ACTIVE}
    AND owner IS NOT NULL AND owner <> %(me)s)"""


class SignalRounds:
    """Which lease round's signals were answered: those are deleted by the next round.

    A round marks the signals it takes with its own id; if its answer is lost (the
    connection died after the COMMIT), the round runs again with the same id and
    takes them again. Only a round whose answer reached the caller is ``acked``.
    """

    def __init__(self) -> None:
        self.acked: str | None = None

    @staticmethod
    def new_round() -> str:
        return uuid.uuid4().hex


def renew_leases(conn: Any, call: LeaseCall, held: Mapping[str, int], claim_orphans: int,
                 skip: Collection[str], dead_owners: Collection[str], round_id: str,
                 acked: str | None) -> Fetch:
    """One round trip: the heartbeat, the answered round's signals gone, the round, then
    what it lost and when the next foreign lease expires."""
    ids = sorted(held)
    p = call.params(ids=ids, epochs=[held[e] for e in ids], skip=sorted(skip),
                    dead=sorted(dead_owners), limit=claim_orphans, round=round_id, acked=acked)
    conn.execute(f"UPDATE executors SET heartbeat_at = {CLOCK} WHERE executor_id = %(me)s", p)
    if acked is not None:
        conn.execute("DELETE FROM signals WHERE taken_by = %(acked)s", p)
    round_rows = conn.execute(_ROUND, p)
    lost_rows = conn.execute(_LOST, p)
    clock_row = conn.execute(_NEXT_EXPIRY, p)

    def fetch() -> LeaseRound:
        server_now, next_expiry = clock_row.fetchone()
        rows = round_rows.fetchall()
        renewed_ids, s_ids, s_executions, s_kinds, s_branches, s_ops = rows[0][:6]
        renewed = tuple(Lease(eid, call.executor, held[eid], call.now + call.lease_seconds)
                        for eid in sorted(renewed_ids))
        claimed = tuple(ExecutionClaim(record, lease=call.lease(record, server_now))
                        for record in (execution_record(row[6:]) for row in rows
                                       if row[6] is not None))
        signals = tuple(Signal(*fields[:2], SignalKind(fields[2]), *fields[3:])
                        for fields in zip(s_ids, s_executions or (), s_kinds or (),
                                          s_branches or (), s_ops or (), strict=True))
        lost = tuple((row[0], execution_record(row[2:]) if row[1] else None)
                     for row in lost_rows.fetchall())
        return LeaseRound(renewed, lost, claimed, signals, call.local(next_expiry, server_now))

    return fetch


__all__ = ["SignalRounds", "renew_leases"]
