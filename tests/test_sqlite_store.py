"""The SQLite store: MemoryStore's semantics on a real file, atomic, durable, typed errors."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from actors.errors import (
    SchemaTooNewError,
    StoreLockedError,
    StoreReadOnlyError,
    StoreUnavailableError,
)
from actors.records import (
    BranchStatus,
    BranchUpdate,
    ExecutionStatus,
    ExecutionUpdate,
    OperationUpdate,
    OpKind,
    OpStatus,
    Update,
)
from actors.store import MemoryStore, Store
from runtime.stores import open_store
from runtime.stores import sqlite as sqlite_module
from runtime.stores.sqlite import MIGRATIONS, Migration, SqliteStore

ROOT = Path(__file__).resolve().parent.parent


def _permissions_bind_us() -> bool:
    """False when this user writes through permissions anyway (root with CAP_DAC_OVERRIDE)."""
    probe = Path(tempfile.mkdtemp()) / "probe"
    probe.touch(mode=0o444)
    try:
        probe.open("a").close()
    except PermissionError:
        return True
    finally:
        probe.chmod(0o644)
        probe.unlink()
        probe.parent.rmdir()
    return False


PERMISSIONS_BIND = _permissions_bind_us()
# Root writes through permission bits with CAP_DAC_OVERRIDE; a child that lost it (and
# CAP_DAC_READ_SEARCH) from its bounding set before exec is bound by them like any user.
BOUND_BY_PERMISSIONS = [] if PERMISSIONS_BIND else [
    "setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]


def open_where_permissions_bind(path: Path) -> str:
    """Open ``SqliteStore(path)`` in a process that permission bits bind; what it raised."""
    code = textwrap.dedent(f"""
        from runtime.stores.sqlite import SqliteStore
        try:
            SqliteStore({str(path)!r}).close()
        except Exception as exc:
            print(type(exc).__name__, exc)
        else:
            print("opened")
    """)
    done = subprocess.run([*BOUND_BY_PERMISSIONS, sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def op(branch: str, op_id: str, status: OpStatus = OpStatus.STARTED, **fields: object) -> Update:
    return OperationUpdate("e1", branch, op_id, OpKind.STEP, f"step-{op_id}", status, **fields)  # type: ignore[arg-type]


# Creation, upserts that keep None fields, seq by first write, timers: the lot.
HISTORY: list[tuple[float, list[Update]]] = [
    (10.0, [
        ExecutionUpdate("e1", ExecutionStatus.RUNNING, kind="map", spec=b"spec", branch_count=2),
        BranchUpdate("e1", "b1", BranchStatus.RUNNING, index=1, input=b"in1", epoch=1),
        BranchUpdate("e1", "b0", BranchStatus.PENDING, index=0, input=b"in0"),
        op("b1", "1"),
        op("b1", "2"),
        op("b0", "1", OpStatus.SUSPENDED, due_at=99.0),
    ]),
    (20.0, [
        op("b1", "1", OpStatus.SUCCEEDED, payload=b"result"),
        op("b1", "3", OpStatus.RETRYING, attempt=1, error=b"boom", due_at=50.0),
        op("b1", "2", OpStatus.FAILED, error=b"err"),
        BranchUpdate("e1", "b1", BranchStatus.SUCCEEDED, result=b"out"),
        ExecutionUpdate("e1", ExecutionStatus.SUCCEEDED, result=b"done"),
        ExecutionUpdate("e2", ExecutionStatus.RUNNING),
    ]),
]


def replay(store: Store) -> None:
    for now, updates in HISTORY:
        store.commit(updates, [], now)


def snapshot(store: Store) -> object:
    return (
        store.read_executions(),
        store.read_execution("e1"),
        store.read_branches("e1"),
        [store.read_log(b) for b in ("b0", "b1", "nobody")],
        sorted(store.read_due_timers(), key=lambda o: (o.branch_id, o.op_id)),
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


def test_round_trip_gives_exactly_what_the_memory_store_gives(db: Path) -> None:
    memory, sqlite = MemoryStore(), SqliteStore(db)
    replay(memory)
    replay(sqlite)
    assert snapshot(sqlite) == snapshot(memory)
    assert sqlite.commit([], ["b1", "b0"], 30.0) == memory.commit([], ["b1", "b0"], 30.0)
    sqlite.close()


def test_read_logs_hands_out_what_read_log_reads_in_chunks_like_the_memory_store(
    db: Path,
) -> None:
    memory, sqlite = MemoryStore(), SqliteStore(db)
    replay(memory)
    replay(sqlite)
    wanted = ["b1", "b0", "nobody", "b1"]  # a repeated branch is read once
    chunks = list(sqlite.read_logs(wanted, 2))
    assert [list(c) for c in chunks] == [["b1", "b0"], ["nobody"]]
    assert chunks == list(memory.read_logs(wanted, 2))
    assert {b: log for c in chunks for b, log in c.items()} == {
        b: sqlite.read_log(b) for b in ("b0", "b1", "nobody")
    }
    sqlite.close()


def test_read_logs_reads_every_chunk_from_one_snapshot(db: Path) -> None:
    reader, writer = SqliteStore(db), SqliteStore(db)
    reader.commit([op(b, "1") for b in ("b0", "b1")], [], 1.0)
    chunks = reader.read_logs(["b0", "b1"], 1)
    assert [o.op_id for o in next(chunks)["b0"].operations] == ["1"]
    writer.commit([op("b1", "2")], [], 2.0)  # lands while the read is under way
    assert [o.op_id for o in next(chunks)["b1"].operations] == ["1"]
    assert next(chunks, None) is None
    assert [o.op_id for o in reader.read_log("b1").operations] == ["1", "2"]
    reader.close()
    writer.close()


def test_read_logs_refuses_a_chunk_below_1(db: Path) -> None:
    store = SqliteStore(db)
    with pytest.raises(ValueError, match="chunk"):
        next(store.read_logs(["b0"], 0))
    store.close()


def test_upsert_keeps_fields_given_as_none_and_the_creation_time(db: Path) -> None:
    store = SqliteStore(db)
    replay(store)
    execution = store.read_execution("e1")
    assert execution is not None
    assert (execution.kind, execution.spec, execution.branch_count) == ("map", b"spec", 2)
    assert (execution.status, execution.result) == (ExecutionStatus.SUCCEEDED, b"done")
    assert (execution.created_at, execution.updated_at) == (10.0, 20.0)
    branch = store.read_log("b1").branch
    assert branch is not None
    assert (branch.input, branch.epoch, branch.index, branch.result) == (b"in1", 1, 1, b"out")
    step = store.read_log("b1").by_op_id()["1"]
    assert (step.status, step.payload, step.created_at, step.updated_at) == (
        OpStatus.SUCCEEDED, b"result", 10.0, 20.0)
    store.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_create_only_branch_update_never_touches_an_existing_branch(
    kind: str, db: Path
) -> None:
    store: Store = MemoryStore() if kind == "memory" else SqliteStore(str(db))
    done = BranchUpdate("e", "e/0", BranchStatus.SUCCEEDED, index=0, result=b"r")
    again = BranchUpdate("e", "e/0", BranchStatus.PENDING, index=0, input=b"i", create_only=True)
    fresh = BranchUpdate("e", "e/1", BranchStatus.PENDING, index=1, input=b"j", create_only=True)
    store.commit([done], [], 1.0)
    store.commit([again, fresh], [], 2.0)
    kept, created = store.read_log("e/0").branch, store.read_log("e/1").branch
    assert kept is not None and kept.status is BranchStatus.SUCCEEDED and kept.input is None
    assert created is not None and created.status is BranchStatus.PENDING and created.input == b"j"
    store.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_step_that_succeeds_after_a_failed_attempt_keeps_no_error(
    kind: str, db: Path
) -> None:
    store: Store = MemoryStore() if kind == "memory" else SqliteStore(str(db))
    store.commit([op("b", "1", OpStatus.RETRYING, attempt=1, error=b"boom", due_at=5.0)], [], 1.0)
    store.commit([op("b", "1", OpStatus.SUCCEEDED, attempt=2, payload=b"ok")], [], 6.0)
    (step,) = store.read_log("b").operations
    assert (step.status, step.attempt, step.payload, step.error) == (
        OpStatus.SUCCEEDED, 2, b"ok", None)
    store.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_finished_operation_or_branch_keeps_its_first_outcome(
    kind: str, db: Path
) -> None:
    store: Store = MemoryStore() if kind == "memory" else SqliteStore(str(db))
    done = OperationUpdate("e", "e/0", "3", OpKind.CHILDREN, "kids", OpStatus.SUCCEEDED,
                           payload=b"batch")
    late = OperationUpdate("e", "e/0", "3", OpKind.CHILDREN, "kids", OpStatus.SUSPENDED)
    other = OperationUpdate("e", "e/0", "3", OpKind.CHILDREN, "kids", OpStatus.FAILED,
                            error=b"timed out")
    store.commit([BranchUpdate("e", "e/0", BranchStatus.SUCCEEDED), done], [], 1.0)
    store.commit([late, BranchUpdate("e", "e/0", BranchStatus.SUSPENDED)], [], 2.0)
    store.commit([other, BranchUpdate("e", "e/0", BranchStatus.FAILED)], [], 3.0)  # too late
    log = store.read_log("e/0")
    assert log.branch is not None and log.branch.status is BranchStatus.SUCCEEDED
    (op,) = log.operations
    assert op.status is OpStatus.SUCCEEDED and op.payload == b"batch"
    store.close()


def test_operation_seq_is_the_order_of_first_write_within_the_branch(db: Path) -> None:
    store = SqliteStore(db)
    replay(store)
    assert [(o.op_id, o.seq) for o in store.read_log("b1").operations] == [
        ("1", 0), ("2", 1), ("3", 2)]
    assert [(o.op_id, o.seq) for o in store.read_log("b0").operations] == [("1", 0)]
    store.close()


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (op("b1", "2", payload=object()), sqlite3.ProgrammingError),  # cannot be bound
        (OperationUpdate("e1", "b1", "2", OpKind.STEP, None, OpStatus.STARTED),  # type: ignore[arg-type]
         sqlite3.IntegrityError),  # NOT NULL name, raised by SQLite inside the transaction
    ],
)
def test_an_update_failing_mid_commit_leaves_nothing_written(
    db: Path, bad: Update, error: type[Exception]
) -> None:
    store = SqliteStore(db)
    with pytest.raises(error):
        store.commit([ExecutionUpdate("e1", ExecutionStatus.RUNNING), op("b1", "1"), bad], [], 1.0)
    assert store.read_executions() == []
    assert store.read_log("b1").operations == ()
    store.commit([op("b1", "1")], [], 2.0)  # the connection is usable again
    assert len(store.read_log("b1").operations) == 1
    store.close()


def test_committed_updates_survive_closing_and_reopening(db: Path) -> None:
    store = SqliteStore(db)
    replay(store)
    before = snapshot(store)
    store.close()
    reopened = SqliteStore(db)
    assert snapshot(reopened) == before
    reopened.close()


@pytest.mark.timeout(30)
def test_an_acknowledged_commit_survives_kill_9_of_the_writer(db: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from actors.records import ExecutionStatus, ExecutionUpdate
            from runtime.stores.sqlite import SqliteStore
            store = SqliteStore({str(db)!r})
            store.commit([ExecutionUpdate("e1", ExecutionStatus.RUNNING, kind="map")], [], 1.0)
            print("acknowledged", flush=True)
            time.sleep(60)
        """)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "acknowledged"
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
    finally:
        writer.kill()
    store = SqliteStore(db)
    execution = store.read_execution("e1")
    assert execution is not None and execution.status == ExecutionStatus.RUNNING
    store.close()


@pytest.mark.timeout(30)
def test_another_process_reads_the_last_commit_while_a_writer_holds_the_lock(db: Path) -> None:
    store = SqliteStore(db)
    store.commit([ExecutionUpdate("e1", ExecutionStatus.RUNNING)], [], 1.0)
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE executions SET status = 'FAILED'")  # not committed
    reader = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(f"""
            from runtime.stores.sqlite import SqliteStore
            store = SqliteStore({str(db)!r}, read_only=True, lock_timeout=0.5)
            print(store.read_execution("e1").status.value)
        """)],
        cwd=ROOT, capture_output=True, text=True, timeout=20, check=False,
    )
    writer.execute("ROLLBACK")
    assert reader.stdout.strip() == "RUNNING", reader.stderr
    store.close()


def test_a_path_that_cannot_be_opened_raises_store_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match="does not exist; create it"):
        SqliteStore(tmp_path / "missing" / "state.db")
    with pytest.raises(StoreUnavailableError, match="is a directory"):
        SqliteStore(tmp_path)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database" * 512)
    with pytest.raises(StoreUnavailableError, match="not a durable-actors SQLite store"):
        SqliteStore(garbage)


@pytest.mark.timeout(30)
def test_a_write_lock_held_past_the_timeout_raises_store_locked(db: Path) -> None:
    store = SqliteStore(db, lock_timeout=0.2)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    with pytest.raises(StoreLockedError, match=r"locked by another writer for more than 0.2s"):
        store.commit([op("b1", "1")], [], 1.0)
    assert 0.15 <= time.monotonic() - started < 5
    other.execute("ROLLBACK")
    store.commit([op("b1", "1")], [], 2.0)  # usable once the lock is gone
    store.close()


def test_a_store_opened_read_only_refuses_writes_with_store_read_only(db: Path) -> None:
    SqliteStore(db).close()
    reader = SqliteStore(db, read_only=True)
    with pytest.raises(StoreReadOnlyError, match="read_only=True"):
        reader.commit([op("b1", "1")], [], 1.0)
    assert reader.read_log("b1").operations == ()
    reader.close()


def test_a_read_only_file_raises_store_read_only(db: Path) -> None:
    SqliteStore(db).close()
    db.chmod(0o444)
    raised = open_where_permissions_bind(db)
    assert raised.startswith(f"StoreReadOnlyError the store file {db} is read-only"), raised


def test_a_read_only_directory_raises_store_read_only(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    SqliteStore(directory / "state.db").close()
    directory.chmod(0o555)
    try:
        raised = open_where_permissions_bind(directory / "state.db")
    finally:
        directory.chmod(0o755)
    assert raised.startswith("StoreReadOnlyError the directory"), raised
    assert "state.db-wal" in raised


def test_a_schema_newer_than_this_code_raises_schema_too_new(db: Path) -> None:
    SqliteStore(db).close()
    raw = sqlite3.connect(db)
    newer = len(MIGRATIONS) + 1
    raw.execute("INSERT INTO schema_version VALUES (?, 'from the future', 0)", (newer,))
    raw.commit()
    raw.close()
    with pytest.raises(SchemaTooNewError, match="upgrade durable-actors"):
        SqliteStore(db)


def test_migrations_apply_in_order_once_and_record_each_version(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    SqliteStore(db).close()
    later = [
        Migration("add notes", ("CREATE TABLE notes (id INTEGER PRIMARY KEY)",)),
        # Needs the one before it: only works when applied in order.
        Migration("notes get text", ("ALTER TABLE notes ADD COLUMN text TEXT",)),
    ]
    monkeypatch.setattr(sqlite_module, "MIGRATIONS", [*MIGRATIONS, *later])
    SqliteStore(db).close()
    SqliteStore(db).close()  # nothing left to apply: no error, no new rows
    raw = sqlite3.connect(db)
    versions = raw.execute("SELECT version, description FROM schema_version ORDER BY version")
    assert [d for _, d in versions] == [m.description for m in [*MIGRATIONS, *later]]
    assert [c[1] for c in raw.execute("PRAGMA table_info(notes)")] == ["id", "text"]
    raw.close()


@pytest.mark.parametrize(("mode", "level"), [("FULL", 2), ("normal", 1), ("OFF", 0)])
def test_synchronous_mode_is_applied_to_the_connection(db: Path, mode: str, level: int) -> None:
    store = SqliteStore(db, synchronous=mode)
    assert store._live().execute("PRAGMA synchronous").fetchone()[0] == level
    assert store._live().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_an_unknown_synchronous_mode_is_refused(db: Path) -> None:
    with pytest.raises(ValueError, match="FULL, NORMAL, OFF"):
        SqliteStore(db, synchronous="EXTRA")


def test_open_store_understands_the_documented_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///relative.db")
    assert isinstance(relative, SqliteStore) and relative.path == "relative.db"
    absolute = open_store(f"sqlite:///{tmp_path}/absolute.db", synchronous="NORMAL")
    assert isinstance(absolute, SqliteStore) and absolute.path == f"{tmp_path}/absolute.db"
    assert absolute.synchronous == "NORMAL"
    reader = open_store(f"sqlite:///{tmp_path}/absolute.db?mode=ro")
    assert isinstance(reader, SqliteStore) and reader.read_only
    default = open_store(None)
    assert isinstance(default, SqliteStore) and (tmp_path / ".durable" / "durable.db").exists()
    assert isinstance(open_store("memory://"), MemoryStore)
    for store in (relative, absolute, reader, default):
        store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://user:secret@host/db", "PostgreSQL stores are not supported yet"),
        ("mysql://user:secret@host/db", "scheme 'mysql' are not supported"),
        ("state.db", "has no scheme"),
        ("sqlite://", "names no file"),
        ("sqlite:///state.db?mode=rw&x=1", "only one is mode=ro"),
    ],
)
def test_open_store_refuses_other_urls_saying_which_it_accepts(url: str, message: str) -> None:
    with pytest.raises(StoreUnavailableError, match=message) as caught:
        open_store(url)
    assert "secret" not in str(caught.value)
    assert "sqlite:///" in str(caught.value) or "mode=ro" in str(caught.value)
