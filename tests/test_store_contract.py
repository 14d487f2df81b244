"""The store contract: memory, SQLite and PostgreSQL give the same answers to the same commits.

``MemoryStore`` is the reference; every test here runs on each store kind
(``store``: all three; ``durable_url``: the two that keep data in files or on a
server, for what only they can show: reopening, another process, a second
connection). Store-specific behaviour lives in ``test_sqlite_store.py`` and
``test_postgres_store.py``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from actors.errors import SchemaTooNewError, StoreReadOnlyError
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
from runtime.stores import open_store, read_only_url
from runtime.stores import postgres as postgres_module
from runtime.stores import sqlite as sqlite_module
from runtime.stores.sqlite import MIGRATIONS, Migration

from conftest import STORE_KINDS

ROOT = Path(__file__).resolve().parent.parent


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
def durable_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of each store that outlives its connection: a SQLite file, a PostgreSQL database."""
    kind = getattr(request, "param", None)
    assert kind in STORE_KINDS
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


durable_kinds = pytest.mark.parametrize("durable_url", STORE_KINDS, indirect=True)


@pytest.fixture
def opened() -> Iterator[Callable[[str], Store]]:
    """``opened(url)`` opens a store that is closed after the test."""
    stores: list[Store] = []

    def open_(url: str) -> Store:
        stores.append(open_store(url))
        return stores[-1]

    yield open_
    for store in stores:
        store.close()


@pytest.fixture(params=["memory", *STORE_KINDS])
def store(request: pytest.FixtureRequest, tmp_path: Path,
          opened: Callable[[str], Store]) -> Store:
    """A fresh store of each kind in turn."""
    if request.param == "memory":
        return MemoryStore()
    url = f"sqlite:///{tmp_path / 'state.db'}" if request.param == "sqlite" else \
        request.getfixturevalue("postgres_url")
    return opened(url)


@durable_kinds
def test_a_history_reads_back_exactly_as_the_memory_store_gives_it(
    durable_url: str, opened: Callable[[str], Store]
) -> None:
    memory, store = MemoryStore(), opened(durable_url)
    replay(memory)
    replay(store)
    assert snapshot(store) == snapshot(memory)
    assert store.commit([], ["b1", "b0"], 30.0) == memory.commit([], ["b1", "b0"], 30.0)


def test_read_logs_hands_out_what_read_log_reads_in_chunks(store: Store) -> None:
    replay(store)
    wanted = ["b1", "b0", "nobody", "b1"]  # a repeated branch is read once
    chunks = list(store.read_logs(wanted, 2))
    assert [list(c) for c in chunks] == [["b1", "b0"], ["nobody"]]
    assert {b: log for c in chunks for b, log in c.items()} == {
        b: store.read_log(b) for b in ("b0", "b1", "nobody")
    }


@durable_kinds
def test_read_logs_reads_every_chunk_from_one_snapshot(
    durable_url: str, opened: Callable[[str], Store]
) -> None:
    reader, writer = opened(durable_url), opened(durable_url)
    reader.commit([op(b, "1") for b in ("b0", "b1")], [], 1.0)
    chunks = reader.read_logs(["b0", "b1"], 1)
    assert [o.op_id for o in next(chunks)["b0"].operations] == ["1"]
    writer.commit([op("b1", "2")], [], 2.0)  # lands while the read is under way
    assert [o.op_id for o in next(chunks)["b1"].operations] == ["1"]
    assert next(chunks, None) is None
    assert [o.op_id for o in reader.read_log("b1").operations] == ["1", "2"]


def test_read_logs_refuses_a_chunk_below_1(store: Store) -> None:
    with pytest.raises(ValueError, match="chunk"):
        next(store.read_logs(["b0"], 0))


def test_an_upsert_keeps_fields_given_as_none_and_the_creation_time(store: Store) -> None:
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


def test_a_create_only_branch_update_never_touches_an_existing_branch(store: Store) -> None:
    done = BranchUpdate("e", "e/0", BranchStatus.SUCCEEDED, index=0, result=b"r")
    again = BranchUpdate("e", "e/0", BranchStatus.PENDING, index=0, input=b"i", create_only=True)
    fresh = BranchUpdate("e", "e/1", BranchStatus.PENDING, index=1, input=b"j", create_only=True)
    store.commit([done], [], 1.0)
    store.commit([again, fresh], [], 2.0)
    kept, created = store.read_log("e/0").branch, store.read_log("e/1").branch
    assert kept is not None and kept.status is BranchStatus.SUCCEEDED and kept.input is None
    assert created is not None and created.status is BranchStatus.PENDING and created.input == b"j"


def test_a_step_that_succeeds_after_a_failed_attempt_keeps_no_error(store: Store) -> None:
    store.commit([op("b", "1", OpStatus.RETRYING, attempt=1, error=b"boom", due_at=5.0)], [], 1.0)
    store.commit([op("b", "1", OpStatus.SUCCEEDED, attempt=2, payload=b"ok")], [], 6.0)
    (step,) = store.read_log("b").operations
    assert (step.status, step.attempt, step.payload, step.error) == (
        OpStatus.SUCCEEDED, 2, b"ok", None)


def test_a_finished_operation_or_branch_keeps_its_first_outcome(store: Store) -> None:
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
    (kept,) = log.operations
    assert kept.status is OpStatus.SUCCEEDED and kept.payload == b"batch"


def test_operation_seq_is_the_order_of_first_write_within_the_branch(store: Store) -> None:
    replay(store)
    assert [(o.op_id, o.seq) for o in store.read_log("b1").operations] == [
        ("1", 0), ("2", 1), ("3", 2)]
    assert [(o.op_id, o.seq) for o in store.read_log("b0").operations] == [("1", 0)]


@durable_kinds
def test_a_batch_committed_twice_leaves_what_it_leaves_once(
    durable_url: str, opened: Callable[[str], Store]
) -> None:
    """What makes it safe to run a batch again when its COMMIT's fate is unknown."""
    once, twice = MemoryStore(), opened(durable_url)
    for store in (once, twice):
        replay(store)
    batch = [op("b1", "4"), op("b1", "4", OpStatus.SUCCEEDED, payload=b"p"),
             BranchUpdate("e1", "b2", BranchStatus.PENDING, index=2, input=b"i", create_only=True),
             op("b2", "1"), ExecutionUpdate("e1", ExecutionStatus.RUNNING)]
    once.commit(batch, [], 30.0)
    twice.commit(batch, [], 30.0)
    twice.commit(batch, [], 30.0)
    assert snapshot(twice) == snapshot(once)


def test_an_update_and_a_read_in_one_batch_read_what_the_batch_wrote(store: Store) -> None:
    logs = store.commit([op("b", "1"), op("b", "1", OpStatus.SUCCEEDED, payload=b"p")], ["b"],
                        1.0)
    (step,) = logs["b"].operations
    assert (step.status, step.payload) == (OpStatus.SUCCEEDED, b"p")


@durable_kinds
@pytest.mark.parametrize(
    "bad",
    [
        op("b1", "2", payload=object()),  # cannot be bound
        OperationUpdate("e1", "b1", "2", OpKind.STEP, None, OpStatus.STARTED),  # type: ignore[arg-type]
    ],
    ids=["unbindable", "not-null"],
)
def test_an_update_failing_mid_commit_leaves_nothing_written(
    durable_url: str, opened: Callable[[str], Store], bad: Update
) -> None:
    store = opened(durable_url)
    with pytest.raises(Exception):  # noqa: B017 - each driver raises its own
        store.commit([ExecutionUpdate("e1", ExecutionStatus.RUNNING), op("b1", "1"), bad], [], 1.0)
    assert store.read_executions() == []
    assert store.read_log("b1").operations == ()
    store.commit([op("b1", "1")], [], 2.0)  # the connection is usable again
    assert len(store.read_log("b1").operations) == 1


@durable_kinds
def test_committed_updates_survive_closing_and_reopening(durable_url: str) -> None:
    store = open_store(durable_url)
    replay(store)
    before = snapshot(store)
    store.close()
    reopened = open_store(durable_url)
    assert snapshot(reopened) == before
    reopened.close()


@durable_kinds
@pytest.mark.timeout(60)
def test_an_acknowledged_commit_survives_kill_9_of_the_writer(durable_url: str) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time
            from actors.records import ExecutionStatus, ExecutionUpdate
            from runtime.stores import open_store
            store = open_store({durable_url!r})
            store.commit([ExecutionUpdate("e1", ExecutionStatus.RUNNING, kind="map")], [], 1.0)
            print("acknowledged", flush=True)
            time.sleep(60)
        """)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "acknowledged"
        writer.kill()
        writer.wait(timeout=10)
    finally:
        writer.kill()
        writer.wait(timeout=10)
    store = open_store(durable_url)
    execution = store.read_execution("e1")
    assert execution is not None and execution.status == ExecutionStatus.RUNNING
    store.close()


@durable_kinds
def test_a_store_opened_read_only_refuses_writes_with_store_read_only(
    durable_url: str, opened: Callable[[str], Store]
) -> None:
    opened(durable_url)  # creates the schema
    reader = opened(read_only_url(durable_url))
    with pytest.raises(StoreReadOnlyError, match=r"read_only=True|mode=ro"):
        reader.commit([op("b1", "1")], [], 1.0)
    assert reader.read_log("b1").operations == ()


def _record_schema_version(url: str, version: int) -> None:
    """Write a schema version row as a newer durable-actors would, past the store's API."""
    if url.startswith("sqlite"):
        import sqlite3

        raw = sqlite3.connect(url.removeprefix("sqlite:///"))
        raw.execute("INSERT INTO schema_version VALUES (?, 'from the future', 0)", (version,))
        raw.commit()
        raw.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_version VALUES (%s, 'from the future', 0)", (version,))


def _schema_versions(url: str) -> list[str]:
    query = "SELECT description FROM schema_version ORDER BY version"
    if url.startswith("sqlite"):
        import sqlite3

        raw = sqlite3.connect(url.removeprefix("sqlite:///"))
        found = [d for (d,) in raw.execute(query)]
        raw.close()
        return found
    import psycopg

    with psycopg.connect(url) as conn:
        return [d for (d,) in conn.execute(query)]


@durable_kinds
def test_a_schema_newer_than_this_code_raises_schema_too_new(durable_url: str) -> None:
    open_store(durable_url).close()
    _record_schema_version(durable_url, len(MIGRATIONS) + 1)
    with pytest.raises(SchemaTooNewError, match="upgrade durable-actors"):
        open_store(durable_url)


@durable_kinds
def test_migrations_apply_in_order_once_and_record_each_version(
    durable_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store(durable_url).close()
    is_sqlite = durable_url.startswith("sqlite")
    module = sqlite_module if is_sqlite else postgres_module
    current = list(module.MIGRATIONS)
    later = [
        Migration("add notes", ("CREATE TABLE notes (id INTEGER PRIMARY KEY)",)),
        # Needs the one before it: only works when applied in order.
        Migration("notes get text", ("ALTER TABLE notes ADD COLUMN text TEXT",)),
    ]
    monkeypatch.setattr(module, "MIGRATIONS", [*current, *later])
    open_store(durable_url).close()
    open_store(durable_url).close()  # nothing left to apply: no error, no new rows
    assert _schema_versions(durable_url) == [m.description for m in [*current, *later]]


@durable_kinds
def test_a_reader_opened_before_the_schema_exists_is_told_to_open_it_read_write(
    durable_url: str,
) -> None:
    from actors.errors import StoreError

    if durable_url.startswith("sqlite"):
        Path(durable_url.removeprefix("sqlite:///")).touch()  # an empty file: schema version 0
    with pytest.raises(StoreError, match="read-write"):
        open_store(read_only_url(durable_url))
