"""Durable runs on PostgreSQL: through server faults, woken by the store's notifications,
and sharing Refs across hosts through a shared blob directory."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from actors.records import OpStatus
from runtime import ActorSystem, SystemConfig
from runtime.stores import open_store, read_only_url
from runtime.stores.postgres_server import EmbeddedPostgres

from branches_for_tests import Approval, Squares, Waits, effects, expected_squares
from conftest import children_of, database_name, wait_until

pytestmark = pytest.mark.timeout(180)
ITEMS = 12


@pytest.fixture
def own_server() -> Iterator[EmbeddedPostgres]:
    with EmbeddedPostgres(durable=False) as server:
        yield server


def acknowledged_steps(url: str, execution_id: str) -> set[tuple[str, str]]:
    store = open_store(read_only_url(url))
    try:
        return {(b.branch_id, op.name) for b in store.read_branches(execution_id)
                for op in store.read_log(b.branch_id).operations
                if op.status is OpStatus.SUCCEEDED}
    finally:
        store.close()


@pytest.mark.parametrize("down_seconds", [1.0, 12.0], ids=["brief", "past-reconnect-timeout"])
def test_a_server_restart_mid_run_delays_the_run_and_it_finishes(
    own_server: EmbeddedPostgres, tmp_path: Path, down_seconds: float
) -> None:
    """Brief: batches wait for the server. Long: batches fail, branches back off and resume."""
    url = own_server.create_database("app")
    path = str(tmp_path / "effects")
    with ActorSystem(store=url, config=SystemConfig(workers=2)) as system:
        run = system.map(Squares, [(i, path, 0.05) for i in range(ITEMS)], max_concurrency=4,
                         execution_id="restart-1")
        wait_until(lambda: len(effects(path)) >= 6, timeout=60)
        before = acknowledged_steps(url, "restart-1")
        own_server.restart(down_seconds=down_seconds)
        result = run.result(timeout=150)
        assert run.status() == "SUCCEEDED"
    assert result.values() == [expected_squares(i) for i in range(ITEMS)]
    runs = Counter((e[0], e[1]) for e in effects(path))
    assert len(acknowledged_steps(url, "restart-1")) == 3 * ITEMS
    assert before, "nothing was durable before the restart; nothing to test"
    twice = [key for key in before if runs[key] != 1]
    assert twice == [], f"steps durable before the restart that ran again: {twice}"


def test_no_trace_line_process_command_line_or_inspect_output_carries_the_password(
    embedded_postgres: EmbeddedPostgres, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    password = embedded_postgres.password
    postgres_url = embedded_postgres.create_database(database_name(request.node.nodeid))
    trace = tmp_path / "trace.jsonl"
    config = SystemConfig(workers=1, trace_path=str(trace))
    with ActorSystem(store=postgres_url, config=config) as system:
        run = system.map(Squares, [(i, str(tmp_path / "effects"), 0.0) for i in range(3)],
                         execution_id="quiet-1")
        run.result(timeout=60)
        command_lines = " ".join(" ".join(p.cmdline()) for p in children_of(os.getpid()))
    assert password not in trace.read_text()
    assert password not in command_lines
    for args in ([], ["quiet-1"], ["nonesuch"]):
        shown = subprocess.run(
            [sys.executable, "-m", "runtime.tools.cli", "inspect", "--store", postgres_url, *args],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
        assert "quiet-1" in shown.stdout + shown.stderr or args == ["nonesuch"], shown
        assert password not in shown.stdout + shown.stderr


# -- woken by the store, not by a poll ------------------------------------------------------

QUIET = SystemConfig(workers=1, lease_seconds=120.0, poll_interval=60.0)  # rounds every 40 s


def test_a_callback_completed_by_another_system_resumes_its_branch_before_the_next_lease_round(
    postgres_url: str, tmp_path: Path,
) -> None:
    path = str(tmp_path / "ids")
    with ActorSystem(store=postgres_url, config=QUIET) as owner, \
            ActorSystem(store=postgres_url, config=QUIET) as other:
        run = owner.map(Approval, [(path, None)], execution_id="approval-1")
        callback_id = wait_until(lambda: effects(path), timeout=30)[0][0]
        wait_until(lambda: run.progress()["suspended"] == 1, timeout=30)
        assert other.complete_callback(callback_id, "yes") is True
        assert run.result(timeout=20).values() == [("approved", "yes")]


def test_an_observer_hears_an_execution_finish_before_its_next_poll(
    postgres_url: str, tmp_path: Path,
) -> None:
    path = str(tmp_path / "ids")
    with ActorSystem(store=postgres_url, config=QUIET) as owner, \
            ActorSystem(store=postgres_url, config=QUIET) as observer:
        run = owner.map(Approval, [(path, None)], execution_id="approval-2")
        callback_id = wait_until(lambda: effects(path), timeout=30)[0][0]
        watched = observer.execution("approval-2")
        outcome: list[Any] = []
        asking = threading.Event()

        def wait_for_it() -> None:
            asking.set()
            outcome.append(watched.result(timeout=30))

        waiter = threading.Thread(target=wait_for_it, daemon=True)
        waiter.start()
        asking.wait(timeout=10)
        watched.progress()  # after the waiter's own request: it polled once, found it running
        owner.complete_callback(callback_id, "yes")
        assert run.result(timeout=30).values() == [("approved", "yes")]
        waiter.join(timeout=40)
        assert outcome and outcome[0].values() == [("approved", "yes")]


def test_the_executions_of_a_system_that_stops_are_taken_over_before_the_next_lease_round(
    postgres_url: str,
) -> None:
    config = SystemConfig(workers=1, lease_seconds=120.0, poll_interval=60.0)
    with ActorSystem(store=postgres_url, config=replace(config, executor_id="b")) as taker:
        with ActorSystem(store=postgres_url, config=replace(config, executor_id="a")) as a:
            run = a.map(Waits, [(1, 3.0)], execution_id="handoff-1")
            wait_until(lambda: run.progress()["suspended"] == 1, timeout=30)
            watched = taker.execution("handoff-1")  # its first lease round goes now
        # a stopped cleanly and gave its lease up: b hears of it and claims it at once
        wait_until(lambda: stored_owner(postgres_url, "handoff-1") == "b", timeout=20)
        assert watched.result(timeout=60).values() == [1]


def stored_owner(url: str, execution_id: str) -> str | None:
    store = open_store(read_only_url(url))
    try:
        record = store.read_execution(execution_id)
        return None if record is None else record.owner
    finally:
        store.close()


# -- Refs across hosts --------------------------------------------------------------------

BLOB_SERVICE = textwrap.dedent(
    """
    import hashlib, json, sys
    from actors import BranchActor, BranchContext
    from runtime import ActorSystem, SystemConfig

    class SavesBytes(BranchActor):
        def run(self, ctx: BranchContext, item):
            return ctx.save(bytes([item]) * 200_000)

    store, blob_dir, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    config = SystemConfig(workers=1, blob_dir=None if blob_dir == "-" else blob_dir)
    with ActorSystem(store=store, config=config) as system:
        if mode == "save":
            system.map(SavesBytes, [7], execution_id="blobs-1").result(timeout=60)
        ref = system.execution("blobs-1").result(timeout=60).values()[0]
        print(json.dumps({"sha256": hashlib.sha256(ref.get(timeout=30)).hexdigest()}))
    """
)


def run_on_host(host: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A service process whose working directory is ``host``: a host of its own."""
    host.mkdir(exist_ok=True)
    script = host / "blob_service.py"
    script.write_text(BLOB_SERVICE)
    return subprocess.run([sys.executable, str(script), *args], cwd=host, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)


def test_systems_on_two_hosts_share_refs_through_a_shared_blob_dir(
    postgres_url: str, tmp_path: Path,
) -> None:
    shared = tmp_path / "shared-blobs"
    saved = run_on_host(tmp_path / "host-a", postgres_url, str(shared), "save")
    read = run_on_host(tmp_path / "host-b", postgres_url, str(shared), "read")
    assert saved.returncode == 0, saved.stderr[-2000:]
    assert read.returncode == 0, read.stderr[-2000:]
    expected = hashlib.sha256(bytes([7]) * 200_000).hexdigest()
    assert json.loads(read.stdout.splitlines()[-1]) == {"sha256": expected}
    assert any(shared.rglob("*")) and not (tmp_path / "host-a" / ".durable").exists()


def test_without_a_shared_blob_dir_another_host_cannot_read_the_refs(
    postgres_url: str, tmp_path: Path,
) -> None:
    saved = run_on_host(tmp_path / "host-a", postgres_url, "-", "save")
    read = run_on_host(tmp_path / "host-b", postgres_url, "-", "read")
    assert saved.returncode == 0, saved.stderr[-2000:]
    assert read.returncode != 0 and "blob" in read.stderr.lower(), read.stderr[-2000:]
