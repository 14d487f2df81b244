"""The embedded SQLite store: one file, WAL mode, one writer and many readers.

The checkpoint actor is the only writer; every ``commit`` is one
``BEGIN IMMEDIATE ... COMMIT`` transaction, so a batch is written whole or not at
all. Readers in other processes open their own ``SqliteStore`` (``read_only=True``
if they never write) and read the last committed state while the writer runs.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from actors.errors import (
    SchemaTooNewError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreReadOnlyError,
    StoreUnavailableError,
)
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
from actors.ownership import ExecutionClaim, ExecutorInfo, LeaseFence, LeaseRound, NewExecution
from actors.store import log_chunks
from runtime.stores import sqlite_leases as leases


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

_EXECUTION_COLUMNS = (
    "execution_id, kind, status, spec, branch_count, result, error, created_at, updated_at, "
    "fingerprint, owner, lease_epoch, lease_expires_at, deadline_at"
)
_BRANCH_COLUMNS = (
    "execution_id, branch_id, parent_branch_id, parent_op_id, idx, status, input, result, "
    "error, epoch, created_at, updated_at"
)
_OPERATION_COLUMNS = (
    "execution_id, branch_id, op_id, seq, kind, name, status, attempt, payload, error, "
    "due_at, created_at, updated_at"
)

# Numbered parameters let DO UPDATE reuse the bound values: NULL keeps the stored field.
# A SUCCEEDED/FAILED branch or operation keeps its status: updates from different processes
# (a deferred suspension, a completion, a timeout) can reach the store in either order, and
# the first outcome written is the one everybody was told.
_UPSERT_EXECUTION = """
INSERT INTO executions (execution_id, kind, status, spec, branch_count, result, error,
    created_at, updated_at)
VALUES (?1, coalesce(?2, ''), ?3, ?4, coalesce(?5, 0), ?6, ?7, ?8, ?8)
ON CONFLICT (execution_id) DO UPDATE SET
    kind = coalesce(?2, kind), status = ?3, spec = coalesce(?4, spec),
    branch_count = coalesce(?5, branch_count), result = coalesce(?6, result),
    error = coalesce(?7, error), updated_at = ?8
WHERE status NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED')"""
_UPSERT_BRANCH = f"""
INSERT INTO branches ({_BRANCH_COLUMNS})
VALUES (?1, ?2, ?3, ?4, coalesce(?5, 0), ?6, ?7, ?8, ?9, coalesce(?10, 0), ?11, ?11)
ON CONFLICT (branch_id) DO UPDATE SET
    parent_branch_id = coalesce(?3, parent_branch_id), parent_op_id = coalesce(?4, parent_op_id),
    idx = coalesce(?5, idx), status = ?6, input = coalesce(?7, input),
    result = coalesce(?8, result), error = coalesce(?9, error), epoch = coalesce(?10, epoch),
    updated_at = ?11
WHERE ?12 = 0 AND NOT (status IN ('SUCCEEDED', 'FAILED') AND ?6 != status)"""
_UPSERT_OPERATION = f"""
INSERT INTO operations ({_OPERATION_COLUMNS})
VALUES (?1, ?2, ?3, (SELECT coalesce(max(seq) + 1, 0) FROM operations WHERE branch_id = ?2),
    ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)
ON CONFLICT (branch_id, op_id) DO UPDATE SET
    kind = ?4, name = ?5, status = ?6, attempt = ?7, payload = coalesce(?8, payload),
    error = CASE WHEN ?6 = 'SUCCEEDED' THEN ?9 ELSE coalesce(?9, error) END,
    due_at = coalesce(?10, due_at), updated_at = ?11
WHERE NOT (status IN ('SUCCEEDED', 'FAILED') AND ?6 != status)"""
_IN_CHUNK = 500  # branch ids per IN (...) query; far below SQLite's variable limit

# Primary result codes (the low byte of an extended code).
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26


def _execution(r: Any) -> ExecutionRecord:
    return ExecutionRecord(r[0], r[1], ExecutionStatus(r[2]), r[3], r[4], r[5], r[6], r[7], r[8],
                           r[9], r[10], r[11], r[12], r[13])


# Enum members by stored value: a dict lookup, where ``OpStatus(value)`` goes through
# the enum machinery (~1.3 µs); a resume wave reads three per branch.
_BRANCH_STATUS: dict[Any, BranchStatus] = dict(BranchStatus._value2member_map_)
_OP_KIND: dict[Any, OpKind] = dict(OpKind._value2member_map_)
_OP_STATUS: dict[Any, OpStatus] = dict(OpStatus._value2member_map_)


def _branch(r: Any) -> BranchRecord:
    return BranchRecord(
        r[0], r[1], r[2], r[3], r[4], _BRANCH_STATUS[r[5]], r[6], r[7], r[8], r[9], r[10], r[11]
    )


def _operation(r: Any) -> OperationRecord:
    return OperationRecord(
        r[0], r[1], r[2], r[3], _OP_KIND[r[4]], r[5], _OP_STATUS[r[6]], r[7], r[8], r[9], r[10],
        r[11], r[12],
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

    def _read_only_hint(self) -> str:
        if self.read_only:
            return "it was opened with read_only=True (mode=ro); open it read-write to write"
        return "make it writable, or open it with read_only=True (sqlite:///...?mode=ro) to read"

    def _check_writable(self) -> None:
        """Say early, and precisely, why a writer could not write here."""
        problem = self._unwritable()
        if problem is not None:
            raise StoreReadOnlyError(problem)

    def _unwritable(self) -> str | None:
        """Why a writer cannot write here, or None.

        The ``-wal`` and ``-shm`` files count as much as the file: SQLite maps the
        ``-shm`` file into memory, and a process that writes to an unwritable mapping
        is killed by SIGBUS instead of getting an error.
        """
        file = Path(self.path)
        directory = file.resolve().parent
        with contextlib.suppress(OSError):
            if directory.is_dir() and os.statvfs(directory).f_flag & os.ST_RDONLY:
                return (f"the filesystem holding the store at {file} is mounted read-only; "
                        f"{self._read_only_hint()}")
        for part in (file, Path(f"{file}-wal"), Path(f"{file}-shm")):
            if part.exists() and not os.access(part, os.W_OK):
                return f"the store file {part} is read-only; {self._read_only_hint()}"
        if directory.is_dir() and not os.access(directory, os.W_OK):
            return (
                f"the directory {directory} of the store is read-only, and WAL mode writes "
                f"{file.name}-wal and {file.name}-shm beside the file; {self._read_only_hint()}"
            )
        return None

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
            journal = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
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
        code = (getattr(err, "sqlite_errorcode", None) or 0) & 0xFF
        where = f"the SQLite store at {self.path}"
        if code in (_BUSY, _LOCKED):
            return StoreLockedError(
                f"{where} stayed locked by another writer for more than {self.lock_timeout}s; "
                "stop the other process using it (one system per store) or raise lock_timeout"
            )
        if code == _READONLY:
            return StoreReadOnlyError(f"{where} is read-only ({err}); {self._read_only_hint()}")
        directory = Path(self.path).resolve().parent
        if code == _CANTOPEN or (opening and code in (_NOTADB, _CORRUPT)):
            if not directory.is_dir():
                reason = f"the directory {directory} does not exist; create it or pick another path"
            elif Path(self.path).is_dir():
                reason = "that path is a directory; give the path of a file"
            elif code == _CANTOPEN:
                reason = f"{err}; check the path and its permissions"
            else:
                reason = f"{err}; it is not a durable-actors SQLite store, choose another path"
            return StoreUnavailableError(f"cannot open {where}: {reason}")
        if code == _FULL:
            return StoreFullError(
                f"{where} could not write: the disk is full; free space and it is retried")
        if code == _IOERR and not self.read_only:
            problem = self._unwritable()  # a file or its filesystem turned read-only under us
            if problem is not None:
                return StoreReadOnlyError(f"{where} could not write ({err}): {problem}")
        if code in (_IOERR, _CORRUPT, _NOTADB):
            return StoreError(f"{where} failed ({err}); check the disk and the file, then retry")
        return None

    def commit(
        self, updates: Sequence[Update], read_logs: Sequence[str], now: float,
        fence: LeaseFence | None = None,
    ) -> dict[str, BranchLog]:
        """Apply ``updates`` in order, then read ``read_logs``; one transaction, all or nothing.

        With ``fence``, writes to executions it does not hold are refused in the same
        transaction (``LeaseLostError``); see ``actors.store.Store.commit``.
        """
        executions: list[tuple[Any, ...]] = []
        branches: list[tuple[Any, ...]] = []
        operations: list[tuple[Any, ...]] = []
        # Tables do not refer to each other, so one executemany per table keeps each
        # table's order (what upserts and seq depend on) and the result of the whole.
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
        with self._lock:
            conn = self._live()
            with self._transaction(conn):
                if fence is not None:
                    leases.check_fence(conn, fence, {u.execution_id for u in updates})
                if executions:
                    conn.executemany(_UPSERT_EXECUTION, executions)
                if branches:
                    conn.executemany(_UPSERT_BRANCH, branches)
                if operations:
                    conn.executemany(_UPSERT_OPERATION, operations)
                logs = self._read_logs(conn, read_logs) if read_logs else {}
        return logs

    @staticmethod
    def _read_logs(conn: sqlite3.Connection, branch_ids: Sequence[str]) -> dict[str, BranchLog]:
        wanted = list(dict.fromkeys(branch_ids))
        found: dict[str, BranchRecord] = {}
        ops: dict[str, list[OperationRecord]] = {b: [] for b in wanted}
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start:start + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            for row in conn.execute(
                f"SELECT {_BRANCH_COLUMNS} FROM branches WHERE branch_id IN ({marks})", chunk
            ):
                found[row[1]] = _branch(row)
            for row in conn.execute(
                f"SELECT {_OPERATION_COLUMNS} FROM operations WHERE branch_id IN ({marks}) "
                "ORDER BY branch_id, seq",
                chunk,
            ):
                ops[row[1]].append(_operation(row))
        return {b: BranchLog(b, found.get(b), tuple(ops[b])) for b in wanted}

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock, self._translated():
            return self._live().execute(sql, params).fetchall()

    def read_execution(self, execution_id: str) -> ExecutionRecord | None:
        rows = self._read(
            f"SELECT {_EXECUTION_COLUMNS} FROM executions WHERE execution_id = ?", (execution_id,)
        )
        return _execution(rows[0]) if rows else None

    def read_executions(self, status: ExecutionStatus | None = None) -> list[ExecutionRecord]:
        if status is None:
            rows = self._read(
                f"SELECT {_EXECUTION_COLUMNS} FROM executions ORDER BY created_at, rowid")
        else:
            rows = self._read(f"SELECT {_EXECUTION_COLUMNS} FROM executions WHERE status = ? "
                              "ORDER BY created_at, rowid", (status.value,))
        return [_execution(row) for row in rows]

    @staticmethod
    def _execution_in(conn: sqlite3.Connection, execution_id: str) -> ExecutionRecord | None:
        row = conn.execute(f"SELECT {_EXECUTION_COLUMNS} FROM executions WHERE execution_id = ?",
                           (execution_id,)).fetchone()
        return None if row is None else _execution(row)

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
            found = self._read_logs(conn, [u.branch_id])[u.branch_id].by_op_id()
            return found[u.op_id]

        with self._writing() as conn:
            return leases.settle_operation(conn, _UPSERT_OPERATION, row, read_op, update, now)

    def reopen_execution(self, execution_id: str, executor: str, lease_seconds: float,
                         now: float, deadline_at: float | None) -> ExecutionClaim:
        def read_ops(eid: str) -> list[OperationRecord]:
            rows = conn.execute(
                f"SELECT {_OPERATION_COLUMNS} FROM operations WHERE execution_id = ?", (eid,))
            return [_operation(row) for row in rows]

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
            f"SELECT {_BRANCH_COLUMNS} FROM branches WHERE execution_id = ? "
            "ORDER BY coalesce(parent_branch_id, ''), idx, rowid",
            (execution_id,),
        )
        return [_branch(row) for row in rows]

    def read_log(self, branch_id: str) -> BranchLog:
        with self._lock:
            conn = self._live()
            with self._transaction(conn, "BEGIN"):  # one snapshot of the branch and its operations
                return self._read_logs(conn, [branch_id])[branch_id]

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
                    yield self._read_logs(conn, branch_chunk)

    def read_due_timers(self, execution_id: str | None = None) -> list[OperationRecord]:
        """Operations suspended or retrying with a ``due_at``, soonest first."""
        where = "" if execution_id is None else " AND execution_id = ?"
        rows = self._read(
            f"SELECT {_OPERATION_COLUMNS} FROM operations WHERE due_at IS NOT NULL "
            f"AND status IN ('SUSPENDED', 'RETRYING'){where} ORDER BY due_at",
            () if execution_id is None else (execution_id,),
        )
        return [_operation(row) for row in rows]

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


__all__ = ["MIGRATIONS", "SYNCHRONOUS_MODES", "Migration", "SqliteStore"]
