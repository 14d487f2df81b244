"""The SQLite store's own behaviour: WAL, locks, file permissions, synchronous modes, URLs.

What every store does (upserts, snapshots, migrations, durability) is in
``test_store_contract.py``.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from actors.errors import (
    StoreLockedError,
    StoreUnavailableError,
)
from actors.records import (
    ExecutionStatus,
    ExecutionUpdate,
    OperationUpdate,
    OpKind,
    OpStatus,
    Update,
)
from actors.store import MemoryStore
from runtime.stores import open_store
from runtime.stores.sqlite import SqliteStore

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


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


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


def test_a_store_opened_while_another_process_writes_its_first_transaction_waits_for_wal(
        tmp_path: Path) -> None:
    # A new file in rollback mode, a writer holding its first transaction: switching to WAL
    # is refused at once (no busy handler), and the store must wait it out, not fail.
    path = tmp_path / "state.db"
    holding, release = threading.Event(), threading.Event()

    def first_writer() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TABLE first (x)")
        holding.set()
        release.wait(10)
        conn.execute("COMMIT")
        conn.close()

    writer = threading.Thread(target=first_writer)
    writer.start()
    assert holding.wait(10)
    threading.Timer(0.3, release.set).start()
    store = SqliteStore(path, lock_timeout=10.0)
    try:
        assert store._conn is not None
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        store.close()
        release.set()
        writer.join(10)
