"""The PostgreSQL store's own behaviour: URLs, faults typed and survived, no password anywhere.

Tests that stop, restart or reconfigure a server start one of their own
(``own_server``); the others use a database of the session's server.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from actors.errors import StoreError, StoreLockedError, StoreUnavailableError
from actors.records import (
    ExecutionStatus,
    ExecutionUpdate,
    OperationUpdate,
    OpKind,
    OpStatus,
    Update,
)
from actors.tracelog import capture_events
from runtime.stores import PostgresStore, open_store
from runtime.stores.postgres_server import EmbeddedPostgres, free_port

from conftest import database_name, wait_until
from postgres_for_tests import in_thread, store_backends

pytestmark = pytest.mark.timeout(90)


def op(op_id: str, status: OpStatus = OpStatus.STARTED) -> Update:
    return OperationUpdate("e1", "b1", op_id, OpKind.STEP, f"step-{op_id}", status)


@pytest.fixture
def own_server() -> Iterator[EmbeddedPostgres]:
    """A server of this test alone, to stop, restart or reconfigure."""
    with EmbeddedPostgres(durable=False) as server:
        yield server


@pytest.fixture
def admin(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A raw connection to the test's database, outside the store (autocommit)."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        yield conn


def every_text_of(exc: BaseException) -> str:
    """What a user could see of ``exc``: its message, repr and the whole chained traceback."""
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


# -- URLs -----------------------------------------------------------------------------------


def test_open_store_opens_postgresql_and_postgres_urls(postgres_url: str) -> None:
    for url in (postgres_url, postgres_url.replace("postgresql://", "postgres://", 1)):
        store = open_store(url)
        assert isinstance(store, PostgresStore) and not store.read_only
        store.close()
    reader = open_store(f"{postgres_url}?mode=ro")
    assert isinstance(reader, PostgresStore) and reader.read_only
    reader.close()


def test_libpq_options_in_the_url_reach_the_session_so_a_schema_can_be_chosen(
    postgres_url: str, admin: psycopg.Connection[Any],
) -> None:
    admin.execute("CREATE SCHEMA tenant_a")
    store = open_store(f"{postgres_url}?options=-c%20search_path%3Dtenant_a")
    store.commit([ExecutionUpdate("e1", ExecutionStatus.RUNNING)], [], 1.0)
    found = admin.execute("SELECT to_regclass('tenant_a.executions') IS NOT NULL, "
                          "to_regclass('public.executions') IS NULL").fetchone()
    assert found == (True, True)
    store.close()


def test_a_url_with_an_unknown_mode_is_refused(postgres_url: str) -> None:
    with pytest.raises(StoreUnavailableError, match="mode=ro"):
        open_store(f"{postgres_url}?mode=rwc")


def test_without_psycopg_the_error_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what an import of a missing package does
    with pytest.raises(StoreUnavailableError, match=r"durable-actors\[postgres\]"):
        open_store("postgresql://app:secret@db.internal/app")


def test_the_store_names_itself_by_its_url_without_the_password(
    embedded_postgres: EmbeddedPostgres, request: pytest.FixtureRequest,
) -> None:
    url = embedded_postgres.create_database(database_name(request.node.nodeid))
    store = PostgresStore(url)
    assert embedded_postgres.password not in store.where
    assert store.target.safe_url.startswith(f"postgresql://durable@127.0.0.1:{embedded_postgres.port}/")
    store.close()
    embedded_postgres.drop_database(database_name(request.node.nodeid))


# -- connecting -----------------------------------------------------------------------------


def test_an_unreachable_server_raises_store_unavailable_saying_what_to_check() -> None:
    url = f"postgresql://app:hunter2secret@127.0.0.1:{free_port()}/app?connect_timeout=5"
    with pytest.raises(StoreUnavailableError, match="check that the server runs") as caught:
        open_store(url)
    assert "hunter2secret" not in every_text_of(caught.value)


def test_a_wrong_password_raises_store_unavailable_without_either_password(
    embedded_postgres: EmbeddedPostgres,
) -> None:
    right = embedded_postgres.password
    wrong = embedded_postgres.url("postgres", password="not-the-password-42")
    with pytest.raises(StoreUnavailableError, match="check the user and password") as caught:
        open_store(wrong)
    text = every_text_of(caught.value)
    assert "not-the-password-42" not in text and right not in text


def test_a_missing_database_raises_store_unavailable_saying_to_create_it(
    postgres_url: str,
) -> None:
    missing = postgres_url.rpartition("/")[0] + "/no_such_database"
    with pytest.raises(StoreUnavailableError, match="create it first") as caught:
        open_store(missing)
    assert "no_such_database" in str(caught.value)


def test_a_role_that_may_not_create_the_tables_is_told_what_to_grant(
    own_server: EmbeddedPostgres,
) -> None:
    own_server.owner = None  # the database belongs to the admin: the store's role may not CREATE
    own_server.create_database("app")
    with pytest.raises(StoreUnavailableError, match="grant") as caught:
        open_store(own_server.url("app"))
    assert own_server.password not in every_text_of(caught.value)


# -- faults during a run --------------------------------------------------------------------


def test_a_connection_killed_inside_a_batch_runs_the_batch_again_on_a_new_one(
    postgres_url: str, admin: psycopg.Connection[Any],
) -> None:
    store = PostgresStore(postgres_url, lock_timeout=60)
    store.commit([ExecutionUpdate("e1", ExecutionStatus.RUNNING, kind="map")], [], 1.0)
    holder = psycopg.connect(postgres_url)  # holds e1's row so that the batch waits inside
    holder.execute("SELECT 1 FROM executions WHERE execution_id = 'e1' FOR UPDATE")
    batch = [op("1"), ExecutionUpdate("e1", ExecutionStatus.SUCCEEDED, result=b"r"), op("2")]
    with capture_events() as logs:
        thread, outcome = in_thread(lambda: store.commit(batch, ["b1"], 2.0))
        first = wait_until(lambda: store_backends(admin, waiting_on_a_lock=True), timeout=30)
        admin.execute("SELECT pg_terminate_backend(%s)", (first[0],))
        # The batch runs again on a new connection, and waits on the same row again.
        wait_until(lambda: [p for p in store_backends(admin, True) if p != first[0]], timeout=30)
        holder.commit()
        thread.join(timeout=30)
    holder.close()
    assert not isinstance(outcome[0], BaseException), outcome
    assert [o.op_id for o in outcome[0]["b1"].operations] == ["1", "2"]
    execution = store.read_execution("e1")
    assert execution is not None and execution.status is ExecutionStatus.SUCCEEDED
    assert [e["event"] for e in logs].count("store.connection_lost") == 1
    store.close()


def test_a_server_restart_between_batches_costs_a_reconnect_not_an_error(
    own_server: EmbeddedPostgres,
) -> None:
    url = own_server.create_database("app")
    store = PostgresStore(url)
    store.commit([op("1")], [], 1.0)
    own_server.restart()
    store.commit([op("2")], [], 2.0)
    assert [o.op_id for o in store.read_log("b1").operations] == ["1", "2"]
    store.close()


def test_a_server_down_past_the_reconnect_timeout_fails_the_batch_and_writes_none_of_it(
    own_server: EmbeddedPostgres,
) -> None:
    url = own_server.create_database("app")
    store = PostgresStore(url, reconnect_timeout=0.5)
    store.commit([op("1")], [], 1.0)
    own_server.take_down()
    with capture_events() as logs, pytest.raises(StoreUnavailableError,
                                               match=r"did not come back within 0\.5s") as caught:
        store.commit([op("2"), op("3")], [], 2.0)
    own_server.start()
    store.commit([op("4")], [], 3.0)  # the next batch reconnects by itself
    assert [o.op_id for o in store.read_log("b1").operations] == ["1", "4"]
    assert "store.reconnecting" in [e["event"] for e in logs]
    assert own_server.password not in every_text_of(caught.value) + repr(logs)
    store.close()


def test_a_reader_reconnects_and_reads_after_a_server_restart(
    own_server: EmbeddedPostgres,
) -> None:
    url = own_server.create_database("app")
    PostgresStore(url).close()
    reader = PostgresStore(url, read_only=True)
    own_server.restart()
    assert reader.read_executions() == []
    own_server.restart()
    assert [list(chunk) for chunk in reader.read_logs(["b1", "b2"], 1)] == [["b1"], ["b2"]]
    reader.close()


def test_a_serialization_failure_is_retried_and_the_batch_commits(
    postgres_url: str, admin: psycopg.Connection[Any],
) -> None:
    store = PostgresStore(postgres_url, lock_timeout=60)
    store.commit([ExecutionUpdate("e1", ExecutionStatus.RUNNING, kind="map")], [], 1.0)
    database = admin.execute("SELECT current_database()").fetchone()
    assert database is not None
    admin.execute(f'ALTER DATABASE "{database[0]}" SET default_transaction_isolation '
                  "= 'serializable'")
    store.close()
    store = PostgresStore(postgres_url, lock_timeout=60)  # a session under the new default
    other = psycopg.connect(postgres_url)
    other.execute("UPDATE executions SET status = 'SUSPENDED' WHERE execution_id = 'e1'")
    with capture_events() as logs:
        thread, outcome = in_thread(lambda: store.commit(
            [ExecutionUpdate("e1", ExecutionStatus.SUCCEEDED, result=b"r")], [], 2.0))
        wait_until(lambda: store_backends(admin, waiting_on_a_lock=True), timeout=30)
        other.commit()  # the store's snapshot predates this: its upsert cannot serialize
        thread.join(timeout=30)
    other.close()
    assert outcome == [{}]
    execution = store.read_execution("e1")
    assert execution is not None and execution.status is ExecutionStatus.SUCCEEDED
    assert "store.conflict_retried" in [e["event"] for e in logs]
    store.close()


def test_a_row_locked_past_the_lock_timeout_raises_store_locked(postgres_url: str) -> None:
    store = PostgresStore(postgres_url, lock_timeout=0.3)
    store.commit([ExecutionUpdate("e1", ExecutionStatus.RUNNING, kind="map")], [], 1.0)
    holder = psycopg.connect(postgres_url)
    holder.execute("SELECT 1 FROM executions WHERE execution_id = 'e1' FOR UPDATE")
    with pytest.raises(StoreLockedError, match=r"more than 0\.3s"):
        store.commit([ExecutionUpdate("e1", ExecutionStatus.SUCCEEDED)], [], 2.0)
    holder.rollback()
    store.commit([ExecutionUpdate("e1", ExecutionStatus.SUCCEEDED)], [], 3.0)
    holder.close()
    store.close()


def test_a_reader_sees_the_last_commit_while_a_writer_holds_the_row(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    store.commit([ExecutionUpdate("e1", ExecutionStatus.RUNNING)], [], 1.0)
    writer = psycopg.connect(postgres_url)
    writer.execute("UPDATE executions SET status = 'FAILED'")  # not committed
    reader = PostgresStore(postgres_url, read_only=True, lock_timeout=0.5)
    execution = reader.read_execution("e1")
    assert execution is not None and execution.status is ExecutionStatus.RUNNING
    writer.rollback()
    writer.close()
    reader.close()
    store.close()


def test_a_closed_store_says_so(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    store.close()
    store.close()  # twice is fine
    with pytest.raises(StoreError, match="is closed"):
        store.read_executions()


def test_no_log_line_of_a_failing_store_carries_the_password(
    own_server: EmbeddedPostgres, caplog: pytest.LogCaptureFixture,
) -> None:
    url = own_server.create_database("app")
    caplog.set_level("DEBUG")
    with capture_events() as logs:
        store = PostgresStore(url, reconnect_timeout=0.3)
        own_server.take_down()
        with pytest.raises(StoreUnavailableError) as caught:
            store.commit([op("1")], [], 1.0)
        own_server.start()
        store.commit([op("1")], [], 2.0)
        store.close()
    seen = repr(logs) + caplog.text + every_text_of(caught.value)
    assert own_server.password not in seen
    assert "store.reconnected" in [e["event"] for e in logs]


# -- waking observers -----------------------------------------------------------------------


def test_a_listener_hears_of_an_execution_change_once_its_batch_commits(
    postgres_url: str,
) -> None:
    from runtime.stores.postgres_changes import ExecutionChanges

    store = PostgresStore(postgres_url)
    changes = ExecutionChanges(postgres_url)
    store.commit([op("1"), op("2")], [], 1.0)  # steps only: nobody is woken
    assert changes.wait(timeout=0.2) == set()
    store.commit([ExecutionUpdate("e1", ExecutionStatus.RUNNING, kind="map"),
                  ExecutionUpdate("e1", ExecutionStatus.SUCCEEDED),
                  ExecutionUpdate("e2", ExecutionStatus.RUNNING)], [], 2.0)
    assert changes.wait(timeout=10) == {"e1", "e2"}
    with pytest.raises(Exception):  # noqa: B017 - a batch that fails notifies nobody
        store.commit([ExecutionUpdate("e3", ExecutionStatus.RUNNING),
                      OperationUpdate("e3", "b", "1", OpKind.STEP, None,  # type: ignore[arg-type]
                                      OpStatus.STARTED)], [], 3.0)
    assert changes.wait(timeout=0.2) == set()
    changes.close()
    store.close()
