"""The embedded SQLite store: one file, WAL mode, one writer and many readers.

The checkpoint actor is the only writer; every ``commit`` is one
``BEGIN IMMEDIATE ... COMMIT`` transaction, so a batch is written whole or not at
all. Readers in other processes open their own ``SqliteStore`` (``read_only=True``
if they never write) and read the last committed state while the writer runs.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from actors.errors import (
    SchemaTooNewError,
    StoreError,
    StoreReadOnlyError,
    StoreUnavailableError,
)
from actors.records._leases import (
    ExecutionClaim,
    ExecutorInfo,
    LeaseFence,
    LeaseRound,
    NewExecution,
)
from actors.records._rows import BranchLog, BranchRecord, ExecutionRecord, OperationRecord
from actors.records._status import ExecutionStatus
from actors.records._updates import OperationUpdate, Update
from actors.store._contract import log_chunks
from runtime.stores import sqlite_leases as leases
from runtime.stores.rows import branch_record, execution_record, operation_record
from runtime.stores.sqlite_errors import into_wal, typed_error, unwritable
from runtime.stores.sqlite_schema import (
    BRANCH_COLUMNS,
    EXECUTION_COLUMNS,
    MIGRATIONS,
    OPERATION_COLUMNS,
    SYNCHRONOUS_MODES,
    UPSERT_BRANCH,
    UPSERT_EXECUTION,
    UPSERT_OPERATION,
    Migration,
    branch_logs,
    update_rows,
)


class SqliteStore:
    """The ``Store`` of ``actors.store`` on one SQLite file in WAL mode.

        store = SqliteStore("state.db")            # creates the file and its schema
        store.commit([ExecutionUpdate("e1", ExecutionStatus.RUNNING, kind="map")], [], now=0.0)
        store.read_execution("e1").status          # ExecutionStatus.RUNNING
        store.close()

    ``synchronous`` trades durability for commit latency:

    * ``FULL`` (default): a commit that returned survives a process crash, an OS
      crash and a power loss. This is what "acknowledged means durable" needs.
    * ``NORMAL``: in WAL mode it survives a process crash (``kill -9``), but the
      last transactions acknowledged before a power loss or an OS crash may be
      lost (the database itself stays consistent).
    * ``OFF``: no fsync at all; an OS crash or power loss may lose transactions
      and may corrupt the file. For throwaway runs only.

    ``lock_timeout`` is how long a write waits for another writer before raising
    ``StoreLockedError``. ``read_only=True`` opens the file without ever taking a
    write lock (for inspectors in other processes); its ``commit`` raises
    ``StoreReadOnlyError``. One instance may be shared by threads (a lock
    serializes them); other processes open their own.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        lock_timeout: float = 5.0,
        read_only: bool = False,
    ) -> None:
        mode = synchronous.upper()
        if mode not in SYNCHRONOUS_MODES:
            raise ValueError(
                f"synchronous={synchronous!r} is not a SQLite mode this store allows; "
                f"use one of {', '.join(SYNCHRONOUS_MODES)}"
            )
        self.path = os.fspath(path)
        self.synchronous = mode
        self.lock_timeout = lock_timeout
        self.read_only = read_only
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        try:
            with self._translated(opening=True):
                self._migrate(self._connect())
        except BaseException:
            self.close()
            raise

    def _check_writable(self) -> None:
        """Say early, and precisely, why a writer could not write here."""
        problem = unwritable(self.path, self.read_only)
        if problem is not None:
            raise StoreReadOnlyError(problem)

    def _connect(self) -> sqlite3.Connection:
        target, uri = self.path, False
        if not self.read_only:
            self._check_writable()
        else:
            target, uri = f"file:{quote(os.path.abspath(self.path))}?mode=ro", True
        # timeout is SQLite's busy timeout; isolation_level=None: BEGIN/COMMIT are issued here.
        self._conn = conn = sqlite3.connect(
            target, timeout=self.lock_timeout, isolation_level=None,
            check_same_thread=False, uri=uri,
        )
        if not self.read_only:
            journal = into_wal(conn, self.lock_timeout)
            if str(journal).lower() != "wal":
                raise StoreUnavailableError(
                    f"the SQLite store at {self.path} cannot use WAL mode (got {journal!r}); "
                    "put it on a local filesystem, not a network share"
                )
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        return conn

    def _schema_version(self, conn: sqlite3.Connection) -> int:
        exists = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()[0]
        if not exists:
            return 0
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
        return int(row[0])

    def _check_not_newer(self, version: int) -> None:
        if version > len(MIGRATIONS):
            raise SchemaTooNewError(
                f"the store at {self.path} has schema version {version}, but this durable-actors "
                f"knows versions up to {len(MIGRATIONS)}; upgrade durable-actors to open it"
            )

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # Read first without a lock, so that opening an up-to-date store never waits on the writer.
        version = self._schema_version(conn)
        self._check_not_newer(version)
        if version == len(MIGRATIONS):
            return
        if self.read_only:
            raise StoreUnavailableError(
                f"the store at {self.path} has schema version {version}, older than this code's "
                f"{len(MIGRATIONS)}; open it once read-write to upgrade it"
            )
        with self._transaction(conn):
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                "description TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            version = self._schema_version(conn)  # another process may have migrated meanwhile
            self._check_not_newer(version)
            for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version VALUES (?, ?, ?)",
                    (number, migration.description, time.time()),
                )

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreUnavailableError(f"the store at {self.path} is closed; open a new one")
        return self._conn

    @contextmanager
    def _transaction(
        self, conn: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE"
    ) -> Iterator[None]:
        """One transaction: committed if the block succeeds, rolled back on any error."""
        with self._translated():
            conn.execute(begin)
            try:
                yield
                conn.execute("COMMIT")
            except BaseException:
                try:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the error being raised already says what went wrong
                raise

    @contextmanager
    def _translated(self, opening: bool = False) -> Iterator[None]:
        """Raise driver errors as typed ``StoreError``s; the caller's own errors stay as is."""
        try:
            yield
        except sqlite3.Error as err:
            typed = self._typed(err, opening)
            if typed is None:
                raise
            raise typed from err

    def _typed(self, err: sqlite3.Error, opening: bool) -> StoreError | None:
        return typed_error(err, self.path, lock_timeout=self.lock_timeout,
                           read_only=self.read_only, opening=opening)

    def commit(
        self, updates: Sequence[Update], read_logs: Sequence[str], now: float,
        fence: LeaseFence | None = None,
    ) -> dict[str, BranchLog]:
        """Apply ``updates`` in order, then read ``read_logs``; one transaction, all or nothing.

        With ``fence``, writes to executions it does not hold are refused in the same
        transaction (``LeaseLostError``); see ``actors.store.Store.commit``.
        """
        executions, branches, operations = update_rows(updates, now)
        with self._lock:
            conn = self._live()
            with self._transaction(conn):
                if fence is not None:
                    leases.check_fence(conn, fence, {u.execution_id for u in updates})
                if executions:
                    conn.executemany(UPSERT_EXECUTION, executions)
                if branches:
                    conn.executemany(UPSERT_BRANCH, branches)
                if operations:
                    conn.executemany(UPSERT_OPERATION, operations)
                logs = branch_logs(conn, read_logs) if read_logs else {}
        return logs

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock, self._translated():
            return self._live().execute(sql, params).fetchall()

    def read_execution(self, execution_id: str) -> ExecutionRecord | None:
        rows = self._read(
            f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE execution_id = ?", (execution_id,)
        )
        return execution_record(rows[0]) if rows else None

    def read_executions(self, status: ExecutionStatus | None = None) -> list[ExecutionRecord]:
        if status is None:
            rows = self._read(
                f"SELECT {EXECUTION_COLUMNS} FROM executions ORDER BY created_at, rowid")
        else:
            rows = self._read(f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE status = ? "
                              "ORDER BY created_at, rowid", (status.value,))
        return [execution_record(row) for row in rows]

    @staticmethod
    def _execution_in(conn: sqlite3.Connection, execution_id: str) -> ExecutionRecord | None:
        row = conn.execute(f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE execution_id = ?",
                           (execution_id,)).fetchone()
        return None if row is None else execution_record(row)

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """The connection inside one write transaction (``BEGIN IMMEDIATE``), under the lock."""
        with self._lock:
            conn = self._live()
            with self._transaction(conn):
                yield conn

    # -- executors and leases (the SQL is in ``sqlite_leases``) ----------------------------

    def register_executor(self, executor: ExecutorInfo, lease_seconds: float, now: float,
                          alive: bool) -> None:
        with self._writing() as conn:
            leases.register_executor(conn, executor, lease_seconds, now, alive)

    def read_executor(self, executor_id: str) -> tuple[ExecutorInfo, float] | None:
        with self._lock, self._translated():
            return leases.read_executor(self._live(), executor_id)

    def read_executors(self) -> list[tuple[ExecutorInfo, float]]:
        with self._lock, self._translated():
            return leases.read_executors(self._live())

    def create_execution(self, new: NewExecution, executor: str, lease_seconds: float,
                         now: float) -> ExecutionClaim:
        with self._writing() as conn:
            return leases.create_execution(conn, self._execution_in, new, executor,
                                           lease_seconds, now)

    def claim_execution(self, execution_id: str, executor: str, lease_seconds: float,
                        now: float, dead_owners: Collection[str] = ()) -> ExecutionClaim:
        with self._writing() as conn:
            return leases.claim_execution(conn, self._execution_in, execution_id, executor,
                                          lease_seconds, now, dead_owners)

    def renew_leases(self, executor: str, held: Mapping[str, int], lease_seconds: float,
                     now: float, claim_orphans: int = 0,
                     skip: Collection[str] = (), dead_owners: Collection[str] = ()
                     ) -> LeaseRound:
        with self._writing() as conn:
            return leases.renew_leases(conn, self._execution_in, executor, held, lease_seconds,
                                       now, claim_orphans, skip, dead_owners)

    def release_leases(self, executor: str, held: Mapping[str, int], now: float) -> None:
        with self._writing() as conn:
            leases.release_leases(conn, executor, held, now)

    def cancel_execution(self, execution_id: str, now: float) -> ExecutionRecord:
        with self._writing() as conn:
            return leases.cancel_execution(conn, self._execution_in, execution_id, now)

    def settle_operation(self, update: OperationUpdate, now: float) -> OperationRecord:
        u = update
        row = (u.execution_id, u.branch_id, u.op_id, u.kind._value_, u.name, u.status._value_,
               u.attempt, u.payload, u.error, u.due_at, now)

        def read_op() -> OperationRecord:
            found = branch_logs(conn, [u.branch_id])[u.branch_id].by_op_id()
            return found[u.op_id]

        with self._writing() as conn:
            return leases.settle_operation(conn, UPSERT_OPERATION, row, read_op, update, now)

    def reopen_execution(self, execution_id: str, executor: str, lease_seconds: float,
                         now: float, deadline_at: float | None) -> ExecutionClaim:
        def read_ops(eid: str) -> list[OperationRecord]:
            rows = conn.execute(
                f"SELECT {OPERATION_COLUMNS} FROM operations WHERE execution_id = ?", (eid,))
            return [operation_record(row) for row in rows]

        with self._writing() as conn:
            return leases.reopen_execution(conn, self._execution_in, read_ops, execution_id,
                                           executor, lease_seconds, now, deadline_at)

    def delete_execution(self, execution_id: str) -> bool:
        with self._writing() as conn:
            return leases.delete_execution(conn, self._execution_in, execution_id)

    def read_payloads(self, execution_id: str | None = None,
                      exclude: str | None = None) -> Iterator[bytes]:
        """Read in one snapshot; the rows are materialized before they are handed out."""
        with self._lock:
            conn = self._live()
            with self._transaction(conn, "BEGIN"):
                found = list(leases.read_payloads(conn, execution_id, exclude))
        yield from found

    def read_branches(self, execution_id: str) -> list[BranchRecord]:
        rows = self._read(
            f"SELECT {BRANCH_COLUMNS} FROM branches WHERE execution_id = ? "
            "ORDER BY coalesce(parent_branch_id, ''), idx, rowid",
            (execution_id,),
        )
        return [branch_record(row) for row in rows]

    def read_log(self, branch_id: str) -> BranchLog:
        with self._lock:
            conn = self._live()
            with self._transaction(conn, "BEGIN"):  # one snapshot of the branch and its operations
                return branch_logs(conn, [branch_id])[branch_id]

    def read_logs(self, branch_ids: Sequence[str], chunk: int) -> Iterator[dict[str, BranchLog]]:
        """The logs of ``branch_ids``, ``chunk`` branches at a time, all from one snapshot.

        One read transaction stays open while the caller handles each chunk, so
        the checkpoint actor answers a wave's first empties while it reads the rest.
        """
        chunks = log_chunks(branch_ids, chunk)
        with self._lock:
            conn = self._live()
            with self._transaction(conn, "BEGIN"):
                for branch_chunk in chunks:
                    yield branch_logs(conn, branch_chunk)

    def read_due_timers(self, execution_id: str | None = None) -> list[OperationRecord]:
        """Operations suspended or retrying with a ``due_at``, soonest first."""
        where = "" if execution_id is None else " AND execution_id = ?"
        rows = self._read(
            f"SELECT {OPERATION_COLUMNS} FROM operations WHERE due_at IS NOT NULL "
            f"AND status IN ('SUSPENDED', 'RETRYING'){where} ORDER BY due_at",
            () if execution_id is None else (execution_id,),
        )
        return [operation_record(row) for row in rows]

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


__all__ = ["MIGRATIONS", "SYNCHRONOUS_MODES", "Migration", "SqliteStore"]
