"""The PostgreSQL store: the SQLite store's tables and semantics on a server, for many hosts.

Every ``commit`` is one transaction, sent as one pipeline (``BEGIN``, the
upserts, ``COMMIT``): a checkpoint batch is written whole or not at all, in one
round trip to the server. Readers in other processes (``inspect``, the
coordinator) open their own ``PostgresStore`` (``read_only=True`` if they never
write).

Faults are typed: a server that cannot be reached, refused credentials or a
missing database raise ``StoreUnavailableError`` saying what to do. A lost
connection is replaced (reconnecting with back-off for up to
``reconnect_timeout`` seconds) and the transaction runs again on the new one,
so a server restart costs a pause, not a failure. That holds even when the
lost COMMIT may have landed: a batch's upserts are idempotent, and a caller is
answered only after a COMMIT returned. A server that stays away longer fails
the batch, with nothing acknowledged. Serialization failures and deadlocks are
retried. No message carries the password.

Needs psycopg 3: ``pip install 'durable-actors[postgres]'``.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from actors.errors import SchemaTooNewError, StoreReadOnlyError, StoreUnavailableError
from actors.records import (
    BranchLog,
    BranchRecord,
    ExecutionClaim,
    ExecutionRecord,
    ExecutionStatus,
    ExecutorInfo,
    LeaseFence,
    LeaseRound,
    NewExecution,
    OperationRecord,
    OperationUpdate,
    Update,
)
from actors.store import log_chunks
from runtime.stores import postgres_leases as leases
from runtime.stores.postgres_changes import NOTIFY_SQL
from runtime.stores.postgres_lease_round import SignalRounds, renew_leases
from runtime.stores.postgres_schema import (
    BRANCH_COLUMNS,
    EXECUTION_COLUMNS,
    FENCE,
    FENCED_UPSERT_BRANCH,
    FENCED_UPSERT_OPERATION,
    MIGRATIONS,
    OPERATION_COLUMNS,
    UPSERT_BRANCH,
    UPSERT_EXECUTION,
    UPSERT_OPERATION,
    Row,
    branch_record,
    execution_record,
    operation_record,
    read_logs_later,
    read_logs_of,
    read_payloads,
    rows_by_table,
)
from runtime.stores.postgres_session import READ_SNAPSHOT, PostgresSession

if TYPE_CHECKING:
    import psycopg

_SCHEMA_LOCK = 0x6475_7261  # pg_advisory_xact_lock key: one process migrates at a time


class LeaseClock(StrEnum):
    """Whose clock a ``PostgresStore`` keeps lease expiries and heartbeats on."""

    SERVER = "server"  # the server's: one clock for every host (the default)
    CALLER = "caller"  # the ``now`` each call passes, as SQLite does (tests with a fake clock)


class PostgresStore(PostgresSession):
    """The ``Store`` of ``actors.store`` on a PostgreSQL database.

        store = PostgresStore("postgresql://app:secret@db.internal:5432/app")
        store.commit([ExecutionUpdate("e1", ExecutionStatus.RUNNING, kind="map")], [], now=0.0)
        store.read_execution("e1").status          # ExecutionStatus.RUNNING
        store.close()

    The URL is a libpq connection URI (``sslmode=``, ``connect_timeout=``,
    ``options=`` and the ``PG*`` environment variables apply); ``mode=ro`` in
    its query is the same as ``read_only=True``. The tables are created, or
    upgraded, on first open, in the first schema of the role's ``search_path``.

    ``lock_timeout`` is how long a write waits for a row another transaction
    holds before raising ``StoreLockedError``; ``reconnect_timeout`` is how long
    a call keeps reconnecting to a server that went away before raising
    ``StoreUnavailableError``. ``read_only=True`` opens a session whose
    transactions are read-only and never migrates; its ``commit`` raises
    ``StoreReadOnlyError``. One instance may be shared by threads (a lock
    serializes them); other processes open their own.

    ``lease_clock``: lease expiries and executor heartbeats are kept on the
    server's clock, so that hosts whose clocks differ agree on when a lease
    expires (``runtime.stores.postgres_leases`` says why);
    ``LeaseClock.CALLER`` keeps them on the ``now`` each call passes instead.
    """

    def __init__(
        self,
        url: str,
        *,
        lock_timeout: float = 5.0,
        read_only: bool = False,
        reconnect_timeout: float = 10.0,
        lease_clock: LeaseClock = LeaseClock.SERVER,
    ) -> None:
        self.lease_clock = LeaseClock(lease_clock)
        self._signal_rounds = SignalRounds()
        super().__init__(url, lock_timeout=lock_timeout, read_only=read_only,
                         reconnect_timeout=reconnect_timeout)
        try:
            assert self._conn is not None
            self._migrate(self._conn)
        except BaseException:
            self.close()
            raise

    # -- schema -----------------------------------------------------------------------------

    def _schema_version(self, conn: psycopg.Connection[Any]) -> int:
        row = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
        if not row or not row[0]:
            return 0
        found = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
        return int(found[0]) if found else 0

    def _check_not_newer(self, version: int) -> None:
        if version > len(MIGRATIONS):
            raise SchemaTooNewError(
                f"{self.where} has schema version {version}, but this durable-actors knows "
                f"versions up to {len(MIGRATIONS)}; upgrade durable-actors to open it"
            )

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        try:
            version = self._schema_version(conn)
        except self._psycopg.Error as err:
            raise self._typed(err, connecting=True) from None
        self._check_not_newer(version)
        if version == len(MIGRATIONS):
            return
        if self.read_only:
            raise StoreUnavailableError(
                f"{self.where} has schema version {version}, older than this code's "
                f"{len(MIGRATIONS)}; open it once read-write to create or upgrade its tables"
            )

        def apply(conn: psycopg.Connection[Any]) -> None:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                "description TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            current = self._schema_version(conn)  # another process may have migrated meanwhile
            self._check_not_newer(current)
            for number, migration in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in migration.statements:
                    conn.execute(statement.encode())
                conn.execute("INSERT INTO schema_version VALUES (%s, %s, %s)",
                             (number, migration.description, time.time()))

        try:
            self._run(apply, begin="BEGIN")
        except self._psycopg.Error as err:
            raise self._typed(err, connecting=True) from None

    # -- the Store protocol -----------------------------------------------------------------

    def _writable(self) -> None:
        if self.read_only:
            raise StoreReadOnlyError(
                f"{self.where} was opened read-only (read_only=True or mode=ro); open it "
                "read-write to write"
            )

    def commit(
        self, updates: Sequence[Update], read_logs: Sequence[str], now: float,
        fence: LeaseFence | None = None,
    ) -> dict[str, BranchLog]:
        """Apply ``updates`` in order, then read ``read_logs``; one transaction, all or nothing.

        With ``fence``, the executions written are locked and checked first, in the
        same transaction (``LeaseLostError`` if one is not held at its epoch; see
        ``actors.store.Store.commit``). One round trip either way.
        """
        self._writable()
        executions, branches, operations = rows_by_table(updates, now)
        fenced: Row = {}
        if fence is not None:
            ids = sorted({u.execution_id for u in updates})
            fenced = {"fx": fence.executor, "fids": ids,
                      "feps": [fence.epochs.get(eid) for eid in ids]}

        if len(updates) == 1 and not read_logs and not executions:
            # One statement is a transaction of its own: no BEGIN/COMMIT to send. A lone
            # branch's sync step is this case; it saves a fifth of its commit's latency.
            # Fenced, the fence is the statement's FROM: checked, locked, written at once.
            if branches:
                sql, row = (FENCED_UPSERT_BRANCH if fenced else UPSERT_BRANCH), branches[0]
            else:
                sql, row = (FENCED_UPSERT_OPERATION if fenced else UPSERT_OPERATION), \
                    operations[0]
            self._run(lambda conn: conn.execute(sql, {**row, **fenced}), begin=None)
            return {}

        def write(conn: psycopg.Connection[Any]) -> Any:
            with conn.cursor() as cursor:
                if fenced:
                    cursor.execute(f"SELECT {FENCE}", fenced)
                if executions:
                    cursor.executemany(UPSERT_EXECUTION, executions)
                if branches:
                    cursor.executemany(UPSERT_BRANCH, branches)
                if operations:
                    cursor.executemany(UPSERT_OPERATION, operations)
                if executions:  # delivered on COMMIT only; see postgres_changes
                    cursor.executemany(NOTIFY_SQL, [(e,) for e in
                                                    dict.fromkeys(x["e"] for x in executions)])
            return read_logs_later(conn, read_logs) if read_logs else dict

        found: dict[str, BranchLog] = self._run_fetching(write, begin="BEGIN")
        return found

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._run(lambda conn: conn.execute(sql, params).fetchall(),
                         begin="BEGIN READ ONLY")

    def read_execution(self, execution_id: str) -> ExecutionRecord | None:
        rows = self._read(
            f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE execution_id = %s", (execution_id,)
        )
        return execution_record(rows[0]) if rows else None

    def read_executions(self, status: ExecutionStatus | None = None) -> list[ExecutionRecord]:
        """Every execution (or those with ``status``), oldest first."""
        where, params = ("", ()) if status is None else ("WHERE status = %s", (status.value,))
        rows = self._read(
            f"SELECT {EXECUTION_COLUMNS} FROM executions {where} ORDER BY created_at, row_order",
            params)
        return [execution_record(row) for row in rows]

    def read_branches(self, execution_id: str) -> list[BranchRecord]:
        rows = self._read(
            f"SELECT {BRANCH_COLUMNS} FROM branches WHERE execution_id = %s "
            "ORDER BY coalesce(parent_branch_id, ''), idx, row_order",
            (execution_id,),
        )
        return [branch_record(row) for row in rows]

    def read_log(self, branch_id: str) -> BranchLog:
        return self._run(lambda conn: read_logs_of(conn, [branch_id])[branch_id],
                         begin=READ_SNAPSHOT)

    def read_logs(self, branch_ids: Sequence[str], chunk: int) -> Iterator[dict[str, BranchLog]]:
        """The logs of ``branch_ids``, ``chunk`` branches at a time, all from one snapshot.

        One REPEATABLE READ transaction stays open while the caller handles each chunk.
        """
        chunks = log_chunks(branch_ids, chunk)
        with self._snapshot() as conn:
            for branch_chunk in chunks:
                try:
                    logs = read_logs_of(conn, branch_chunk)
                except self._psycopg.Error as err:
                    raise self._typed(err) from None
                yield logs

    def read_due_timers(self, execution_id: str | None = None) -> list[OperationRecord]:
        """Operations suspended or retrying with a ``due_at``, soonest first."""
        where = "" if execution_id is None else " AND execution_id = %s"
        rows = self._read(
            f"SELECT {OPERATION_COLUMNS} FROM operations WHERE due_at IS NOT NULL "
            f"AND status IN ('SUSPENDED', 'RETRYING'){where} ORDER BY due_at",
            () if execution_id is None else (execution_id,),
        )
        return [operation_record(row) for row in rows]

    def read_payloads(self, execution_id: str | None = None,
                      exclude: str | None = None) -> Iterator[bytes]:
        """Read in one snapshot; the rows are materialized before they are handed out."""
        yield from self._run(lambda conn: read_payloads(conn, execution_id, exclude),
                             begin=READ_SNAPSHOT)

    # -- executors and leases (the SQL is in ``postgres_leases``) -----------------------------

    def _call(self, executor: str, lease_seconds: float, now: float) -> leases.LeaseCall:
        clock = now if self.lease_clock is LeaseClock.CALLER else None
        return leases.LeaseCall(executor, lease_seconds, now, clock)

    def register_executor(self, executor: ExecutorInfo, lease_seconds: float, now: float,
                          alive: bool) -> None:
        self._writable()
        call = self._call(executor.executor_id, lease_seconds, now)
        self._run_fetching(lambda conn: leases.register_executor(conn, call, executor, alive),
                           begin="BEGIN")

    def read_executor(self, executor_id: str) -> tuple[ExecutorInfo, float] | None:
        """The executor and its last heartbeat (by the store's lease clock)."""
        found = self._run(lambda conn: leases.read_executors(conn, executor_id),
                          begin="BEGIN READ ONLY")
        return found[0] if found else None

    def read_executors(self) -> list[tuple[ExecutorInfo, float]]:
        return self._run(lambda conn: leases.read_executors(conn, None), begin="BEGIN READ ONLY")

    def create_execution(self, new: NewExecution, executor: str, lease_seconds: float,
                         now: float) -> ExecutionClaim:
        self._writable()
        call = self._call(executor, lease_seconds, now)
        claim: ExecutionClaim = self._run_fetching(
            lambda conn: leases.create_execution(conn, call, new), begin="BEGIN")
        return claim

    def claim_execution(self, execution_id: str, executor: str, lease_seconds: float,
                        now: float, dead_owners: Collection[str] = ()) -> ExecutionClaim:
        self._writable()
        call = self._call(executor, lease_seconds, now)
        claim: ExecutionClaim = self._run_fetching(
            lambda conn: leases.claim_execution(conn, call, execution_id, dead_owners),
            begin="BEGIN")
        return claim

    def renew_leases(self, executor: str, held: Mapping[str, int], lease_seconds: float,
                     now: float, claim_orphans: int = 0,
                     skip: Collection[str] = (), dead_owners: Collection[str] = ()
                     ) -> LeaseRound:
        self._writable()
        call = self._call(executor, lease_seconds, now)
        rounds = self._signal_rounds
        round_id, acked = rounds.new_round(), rounds.acked
        found: LeaseRound = self._run_fetching(
            lambda conn: renew_leases(conn, call, held, claim_orphans, skip, dead_owners,
                                             round_id, acked), begin="BEGIN")
        rounds.acked = round_id  # its signals reached the caller: the next round deletes them
        return found

    def release_leases(self, executor: str, held: Mapping[str, int], now: float) -> None:
        self._writable()
        call = self._call(executor, 0.0, now)
        self._run_fetching(lambda conn: leases.release_leases(conn, call, held), begin="BEGIN")

    def cancel_execution(self, execution_id: str, now: float) -> ExecutionRecord:
        self._writable()
        call = self._call("", 0.0, now)
        record: ExecutionRecord = self._run_fetching(
            lambda conn: leases.cancel_execution(conn, call, execution_id), begin="BEGIN")
        return record

    def settle_operation(self, update: OperationUpdate, now: float) -> OperationRecord:
        self._writable()
        row = rows_by_table([update], now)[2][0]
        op: OperationRecord = self._run_fetching(
            lambda conn: leases.settle_operation(conn, UPSERT_OPERATION, row), begin="BEGIN")
        return op

    def reopen_execution(self, execution_id: str, executor: str, lease_seconds: float,
                         now: float, deadline_at: float | None) -> ExecutionClaim:
        self._writable()
        call = self._call(executor, lease_seconds, now)
        claim: ExecutionClaim = self._run_fetching(
            lambda conn: leases.reopen_execution(conn, call, execution_id, deadline_at),
            begin="BEGIN")
        return claim

    def delete_execution(self, execution_id: str) -> bool:
        self._writable()
        deleted: bool = self._run_fetching(
            lambda conn: leases.delete_execution(conn, execution_id), begin="BEGIN")
        return deleted


__all__ = ["MIGRATIONS", "LeaseClock", "PostgresStore"]
