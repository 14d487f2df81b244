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

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from actors.errors import (
    SchemaTooNewError,
    StoreError,
    StoreReadOnlyError,
    StoreUnavailableError,
)
from actors.messages import (
    BranchLog,
    BranchRecord,
    ExecutionRecord,
    OperationRecord,
    Update,
)
from actors.store import log_chunks
from runtime.stores.postgres_changes import NOTIFY_SQL
from runtime.stores.postgres_faults import ConnectionTarget, Fault, classify, import_psycopg
from runtime.stores.postgres_schema import (
    BRANCH_COLUMNS,
    EXECUTION_COLUMNS,
    MIGRATIONS,
    OPERATION_COLUMNS,
    UPSERT_BRANCH,
    UPSERT_EXECUTION,
    UPSERT_OPERATION,
    branch_record,
    execution_record,
    operation_record,
    read_logs_of,
    rows_by_table,
)

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")
log = structlog.get_logger("runtime.stores.postgres")

_SCHEMA_LOCK = 0x6475_7261  # pg_advisory_xact_lock key: one process migrates at a time
_CONFLICT_RETRIES = 8  # serialization failures and deadlocks retried this many times
_READ_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"  # one snapshot for all reads


class PostgresStore:
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
    """

    def __init__(
        self,
        url: str,
        *,
        lock_timeout: float = 5.0,
        read_only: bool = False,
        reconnect_timeout: float = 10.0,
    ) -> None:
        self._psycopg = import_psycopg()
        self.target = ConnectionTarget.parse(url, self._psycopg)
        self.read_only = read_only or self.target.read_only
        self.lock_timeout = lock_timeout
        self.reconnect_timeout = reconnect_timeout
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = False
        try:
            self._conn = self._connect()
            self._migrate(self._conn)
        except BaseException:
            self.close()
            raise

    @property
    def where(self) -> str:
        """The store as people read it: its URL without the password."""
        return f"the PostgreSQL store at {self.target.safe_url}"

    # -- connections ------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        """One connection attempt; raises the typed error of a failed one."""
        try:
            return self._connect_once()
        except self._psycopg.Error as err:
            raise self._typed(err, connecting=True) from None

    def _connect_once(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] = self._psycopg.connect(self.target.conninfo,
                                                             autocommit=True)
        try:
            # Session settings, again on every reconnect: the store's rules, not the server's.
            conn.execute(f"SET lock_timeout = {max(1, round(self.lock_timeout * 1000))}")
            if self.read_only:
                conn.execute("SET default_transaction_read_only = on")
        except BaseException:
            conn.close()
            raise
        return conn

    def _reconnect(self, cause: str) -> psycopg.Connection[Any]:
        """A new connection, retried with back-off for ``reconnect_timeout`` seconds."""
        deadline = time.monotonic() + self.reconnect_timeout
        delay = 0.05
        attempts = 0
        while True:
            attempts += 1
            try:
                self._conn = self._connect_once()
            except self._psycopg.Error as failed:
                fault, err = self._classify(failed, connecting=True)
                if fault is Fault.REFUSED:
                    raise err from None  # credentials or a dropped database: waiting won't help
                if time.monotonic() + delay > deadline:
                    raise StoreUnavailableError(
                        f"{self.where} went away ({cause}) and did not come back within "
                        f"{self.reconnect_timeout}s ({attempts} attempts; last: {err}); nothing "
                        "was acknowledged that was not committed; retry once the server is back"
                    ) from None
                log.warning("store.reconnecting", store=self.target.safe_url, attempt=attempts,
                            error=str(err), retry_in=delay)
                time.sleep(delay)  # back-off between attempts against a server that is down
                delay = min(delay * 2, 1.0)
                continue
            log.info("store.reconnected", store=self.target.safe_url, attempts=attempts)
            return self._conn

    def _live(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise StoreUnavailableError(f"{self.where} is closed; open a new one")
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            conn = self._reconnect("its connection was closed")
        return conn

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close
                conn.close()

    # -- transactions and errors ------------------------------------------------------------

    def _classify(self, err: Exception, connecting: bool = False) -> tuple[Fault, StoreError]:
        return classify(err, self.target, self.where, self.lock_timeout, self.read_only,
                        connecting)

    def _typed(self, err: Exception, connecting: bool = False) -> StoreError:
        return self._classify(err, connecting)[1]

    def _run(self, work: Callable[[psycopg.Connection[Any]], T], *, begin: str | None) -> T:
        """``work`` in one transaction, sent as one pipeline; run again where that is safe.

        A lost connection runs the whole transaction again on a new one, whether or not
        its COMMIT had reached the server: a batch's upserts are idempotent (a batch
        applied twice leaves the rows it leaves once), and the caller is answered only
        after a COMMIT returned. Serialization failures and deadlocks run it again too.
        """
        psycopg = self._psycopg
        conflicts = 0
        lost_since: float | None = None
        with self._lock:
            while True:
                conn = self._live()
                try:
                    return self._attempt(conn, work, begin)
                except psycopg.Error as err:
                    fault, typed = self._classify(err)
                    if fault is Fault.CONNECTION_LOST:
                        self._discard()
                        lost_since = lost_since or time.monotonic()
                        if time.monotonic() - lost_since > self.reconnect_timeout:
                            raise typed from None  # connections keep dying: stop trying
                        log.warning("store.connection_lost", store=self.target.safe_url,
                                    error=str(typed), retrying=True)
                        continue
                    if fault is Fault.CONFLICT and conflicts < _CONFLICT_RETRIES:
                        conflicts += 1
                        log.info("store.conflict_retried", store=self.target.safe_url,
                                 attempt=conflicts, error=str(typed))
                        time.sleep(0.001 * 2 ** conflicts)  # let the other transaction finish
                        continue
                    if fault is Fault.OTHER:
                        raise  # the caller's own data error (a NOT NULL, a type): as is
                    raise typed from None

    def _attempt(self, conn: psycopg.Connection[Any],
                 work: Callable[[psycopg.Connection[Any]], T], begin: str | None) -> T:
        """BEGIN, ``work``, COMMIT in one pipeline: one round trip unless ``work`` reads.

        ``begin=None``: ``work`` is one statement, its own transaction (autocommit).
        """
        if begin is None:
            return work(conn)
        try:
            with conn.pipeline():
                conn.execute(begin)
                result = work(conn)
                conn.execute("COMMIT")
            return result
        except BaseException:
            idle = self._psycopg.pq.TransactionStatus.IDLE
            if not conn.closed and not conn.broken and conn.info.transaction_status != idle:
                conn.execute("ROLLBACK")  # a failed statement left the transaction open
            raise

    @contextmanager
    def _snapshot(self) -> Iterator[psycopg.Connection[Any]]:
        """One read-only snapshot (for streaming reads that cannot be run again)."""
        psycopg = self._psycopg
        with self._lock:
            conn = self._live()
            try:
                conn.execute(_READ_SNAPSHOT)
            except psycopg.Error as err:
                fault, typed = self._classify(err)
                self._discard()
                if fault is not Fault.CONNECTION_LOST:
                    raise typed from None
                conn = self._live()  # nothing was read yet: reconnect, with back-off, and begin
                try:
                    conn.execute(_READ_SNAPSHOT)
                except psycopg.Error as again:
                    self._discard()
                    raise self._typed(again) from None
            try:
                yield conn
                conn.execute("COMMIT")
            except psycopg.Error as err:
                self._discard()
                raise self._typed(err) from None
            except BaseException:
                if not conn.broken and not conn.closed:
                    conn.execute("ROLLBACK")
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

    def commit(
        self, updates: Sequence[Update], read_logs: Sequence[str], now: float
    ) -> dict[str, BranchLog]:
        """Apply ``updates`` in order, then read ``read_logs``; one transaction, all or nothing."""
        if self.read_only:
            raise StoreReadOnlyError(
                f"{self.where} was opened read-only (read_only=True or mode=ro); open it "
                "read-write to write"
            )
        executions, branches, operations = rows_by_table(updates, now)

        if len(updates) == 1 and not read_logs and not executions:
            # One statement is a transaction of its own: no BEGIN/COMMIT to send. A lone
            # branch's sync step is this case; it saves a fifth of its commit's latency.
            sql, row = (UPSERT_BRANCH, branches[0]) if branches else \
                (UPSERT_OPERATION, operations[0])
            self._run(lambda conn: conn.execute(sql, row), begin=None)
            return {}

        def write(conn: psycopg.Connection[Any]) -> dict[str, BranchLog]:
            with conn.cursor() as cursor:
                if executions:
                    cursor.executemany(UPSERT_EXECUTION, executions)
                if branches:
                    cursor.executemany(UPSERT_BRANCH, branches)
                if operations:
                    cursor.executemany(UPSERT_OPERATION, operations)
                if executions:  # delivered on COMMIT only; see postgres_changes
                    cursor.executemany(NOTIFY_SQL, [(e,) for e in
                                                    dict.fromkeys(x["e"] for x in executions)])
            return read_logs_of(conn, read_logs) if read_logs else {}

        return self._run(write, begin="BEGIN")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._run(lambda conn: conn.execute(sql, params).fetchall(),
                         begin="BEGIN READ ONLY")

    def read_execution(self, execution_id: str) -> ExecutionRecord | None:
        rows = self._read(
            f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE execution_id = %s", (execution_id,)
        )
        return execution_record(rows[0]) if rows else None

    def read_executions(self) -> list[ExecutionRecord]:
        rows = self._read(
            f"SELECT {EXECUTION_COLUMNS} FROM executions ORDER BY created_at, row_order"
        )
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
                         begin=_READ_SNAPSHOT)

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

    def read_due_timers(self) -> list[OperationRecord]:
        """Operations suspended or retrying with a ``due_at``, soonest first."""
        rows = self._read(
            f"SELECT {OPERATION_COLUMNS} FROM operations WHERE due_at IS NOT NULL "
            "AND status IN ('SUSPENDED', 'RETRYING') ORDER BY due_at"
        )
        return [operation_record(row) for row in rows]

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        with self._lock:
            self._closed = True
            self._discard()


__all__ = ["MIGRATIONS", "PostgresStore"]
