"""The ``durable-actors`` command line: the demo runs, resumes and reports; inspect only reads."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from actors import BranchActor, BranchContext
from actors.branch import encode_error
from actors.errors import StoreError
from actors.messages import (
    BranchStatus,
    BranchUpdate,
    ExecutionStatus,
    ExecutionUpdate,
    OperationUpdate,
    OpKind,
    OpStatus,
)
from runtime import ActorSystem, serialization
from runtime.cli import main
from runtime.demo import choose_execution
from runtime.inspect_cmd import open_reader
from runtime.stores import SqliteStore
from runtime.testing import wait_until

WIDE = "250"  # rich wraps at 80 columns when not on a terminal; assertions want whole lines
DEMO_ITEMS = 15  # items 0, 7 and 14 are the ones the pretend service shows late


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", WIDE)


@pytest.fixture(scope="module")
def finished_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A store holding one finished demo execution, and what the demo printed."""
    url = url_of(tmp_path_factory.mktemp("demo") / "state.db")
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        patch.setenv("COLUMNS", WIDE)
        code = main(["demo", "--store", url, "--items", str(DEMO_ITEMS)])
    assert code == 0, out.getvalue()
    return url, out.getvalue()


def stored_branches(url: str, execution_id: str) -> dict[int, BranchStatus]:
    reader = open_reader(url)
    try:
        return {b.index: b.status for b in reader.read_branches(execution_id)}
    finally:
        reader.close()


# -- demo ---------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_demo_runs_every_branch_to_the_end_and_prints_a_summary(
    finished_demo: tuple[str, str],
) -> None:
    url, printed = finished_demo
    assert f"started execution demo-{DEMO_ITEMS} with {DEMO_ITEMS} branches" in printed
    assert f"execution demo-{DEMO_ITEMS}: SUCCEEDED (ALL_COMPLETED)" in printed
    assert f"{DEMO_ITEMS} succeeded, 0 failed" in printed
    for row in ("items", "steps run", "steps retried", "waits", "resumes", "database",
                "wall time"):
        assert row in printed
    summary = printed[printed.index(f"execution demo-{DEMO_ITEMS}: SUCCEEDED"):].lower()
    for internal in ("checkpoint", "evict", "epoch", "coalesc", "replay", "deferred", "batch"):
        assert internal not in summary, f"the summary says {internal!r}, a word of the internals"
    assert set(stored_branches(url, f"demo-{DEMO_ITEMS}").values()) == {BranchStatus.SUCCEEDED}


@pytest.mark.timeout(120)
def test_demo_confirms_late_items_by_retrying_and_the_rest_at_the_first_attempt(
    finished_demo: tuple[str, str],
) -> None:
    url, _ = finished_demo
    reader = open_reader(url)
    try:
        confirms = {
            branch.index: next(op for op in reader.read_log(branch.branch_id).operations
                               if op.name == "confirm")
            for branch in reader.read_branches(f"demo-{DEMO_ITEMS}")
        }
    finally:
        reader.close()
    assert all(op.status is OpStatus.SUCCEEDED for op in confirms.values())
    assert all(op.attempt == 1 for i, op in confirms.items() if i % 7)
    # A late item fails its first attempt unless the publish checkpoint itself took longer
    # than the visibility delay; of three late items, at least one must have been retried.
    assert any(confirms[i].attempt == 2 for i in (0, 7, 14))


@pytest.mark.timeout(120)
def test_demo_run_again_after_it_finished_reports_the_stored_result(
    finished_demo: tuple[str, str], capsys: pytest.CaptureFixture[str],
) -> None:
    url, _ = finished_demo
    assert main(["demo", "--store", url, "--items", str(DEMO_ITEMS)]) == 0
    printed = capsys.readouterr().out
    assert f"execution demo-{DEMO_ITEMS} already finished" in printed
    assert "SUCCEEDED (ALL_COMPLETED)" in printed
    assert "started execution" not in printed


def test_demo_resumes_its_latest_execution_and_fresh_starts_the_next(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    store.commit([ExecutionUpdate(eid, ExecutionStatus.SUCCEEDED, kind="map", branch_count=5)
                  for eid in ("demo-5", "demo-5-2", "demo-50")], [], now=time.time())
    store.close()
    assert choose_execution(url_of(path), 5, fresh=False)[0] == "demo-5-2"
    assert choose_execution(url_of(path), 5, fresh=True)[0] == "demo-5-3"
    assert choose_execution(url_of(path), 7, fresh=False) == ("demo-7", None)


def _done_count(url: str, execution_id: str) -> int | None:
    """Branches of the execution that succeeded, or None while the store cannot be read yet."""
    if not Path(url.removeprefix("sqlite:///")).exists():
        return None
    try:
        statuses = stored_branches(url, execution_id)
    except StoreError:  # the schema is still being created by the system's first open
        return None
    return sum(1 for s in statuses.values() if s is BranchStatus.SUCCEEDED)


def console_script() -> str:
    beside = Path(sys.executable).with_name("durable-actors")
    found = str(beside) if beside.exists() else shutil.which("durable-actors")
    assert found, "the durable-actors console script is not installed: pip install -e ."
    return found


@pytest.mark.timeout(120)
def test_demo_interrupted_with_ctrl_c_resumes_where_it_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    url = url_of(tmp_path / "state.db")
    command = [console_script(), "demo", "--store", url, "--items", "200"]
    demo = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": WIDE})
    try:
        # Interrupt once some but at most half are done, so plenty is left when SIGINT lands.
        def some_done() -> int | None:
            done = _done_count(url, "demo-200")
            assert done is None or done <= 100, f"{done} of 200 done before it was interrupted"
            return done

        done_before = wait_until(some_done, timeout=60)
        demo.send_signal(signal.SIGINT)
        printed, errors = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 130, printed + errors
    assert "interrupted; run the same command again to resume" in printed
    left = _done_count(url, "demo-200")
    assert left is not None and done_before <= left < 200

    assert main(command[1:]) == 0
    resumed = capsys.readouterr().out
    assert f"resuming execution demo-200: {left} of 200 branches already done" in resumed
    assert "200 succeeded, 0 failed" in resumed
    assert set(stored_branches(url, "demo-200").values()) == {BranchStatus.SUCCEEDED}


# -- inspect ------------------------------------------------------------------------


def test_inspect_lists_the_executions_of_a_store(
    finished_demo: tuple[str, str], capsys: pytest.CaptureFixture[str],
) -> None:
    url, _ = finished_demo
    assert main(["inspect", "--store", url]) == 0
    printed = capsys.readouterr().out
    row = next(line for line in printed.splitlines() if f"demo-{DEMO_ITEMS}" in line)
    for cell in ("map", "SUCCEEDED", f"{DEMO_ITEMS} ({DEMO_ITEMS} succeeded)", "ago"):
        assert cell in row


def test_inspect_an_execution_shows_its_branches_and_their_operations(
    finished_demo: tuple[str, str], capsys: pytest.CaptureFixture[str],
) -> None:
    url, _ = finished_demo
    assert main(["inspect", "--store", url, f"demo-{DEMO_ITEMS}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"execution demo-{DEMO_ITEMS} · map · SUCCEEDED" in lines[0]
    branches = [line for line in lines if "branch demo-" in line]
    assert len(branches) == DEMO_ITEMS
    first = lines.index(next(line for line in lines if f"branch demo-{DEMO_ITEMS}/0 " in line))
    ops = lines[first + 1:first + 5]
    for op, expected in zip(ops, ("1 STEP fingerprint", "2 WAIT cooldown", "3 STEP publish",
                                  "4 STEP confirm"), strict=True):
        assert expected in op and "SUCCEEDED" in op


def _hand_written_store(path: Path) -> None:
    """An execution whose branch waits on children, with a timer and a logged failure."""
    now = time.time()
    error = encode_error(KeyError("sku-9"), serialization.dumps)
    store = SqliteStore(path)
    store.commit([
        ExecutionUpdate("orders", ExecutionStatus.RUNNING, kind="map", branch_count=1),
        BranchUpdate("orders", "orders/0", BranchStatus.SUSPENDED, index=0),
        OperationUpdate("orders", "orders/0", "1", OpKind.CHILDREN, "lines", OpStatus.SUSPENDED),
        BranchUpdate("orders", "orders/0/1/0", BranchStatus.FAILED, "orders/0", "1", 0,
                     error=error),
        OperationUpdate("orders", "orders/0/1/0", "1", OpKind.STEP, "price", OpStatus.FAILED,
                        attempt=3, error=error),
        BranchUpdate("orders", "orders/0/1/1", BranchStatus.SUSPENDED, "orders/0", "1", 1),
        OperationUpdate("orders", "orders/0/1/1", "1", OpKind.WAIT, "cool", OpStatus.SUSPENDED,
                        due_at=now + 600),
    ], [], now=now)
    store.close()


def test_inspect_nests_children_under_their_parent_operation_with_timers_and_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    _hand_written_store(tmp_path / "state.db")
    assert main(["inspect", "--store", url_of(tmp_path / "state.db"), "orders"]) == 0
    lines = capsys.readouterr().out.splitlines()

    def line_of(text: str) -> int:
        return next(i for i, line in enumerate(lines) if text in line)

    def depth(index: int) -> int:
        return lines[index].index(next(c for c in lines[index] if c.isalnum()))

    parent, op = line_of("branch orders/0 "), line_of("1 CHILDREN lines")
    failed, waiting = line_of("branch orders/0/1/0"), line_of("branch orders/0/1/1")
    assert parent < op < failed < waiting
    assert depth(parent) < depth(op) < depth(failed) == depth(waiting)
    assert "FAILED" in lines[failed] and "KeyError" in lines[failed]
    price = lines[line_of("1 STEP price")]
    assert "attempt 3" in price and "error KeyError" in price
    assert "due in 10 min" in lines[line_of("1 WAIT cool")]


def test_inspect_an_unknown_execution_exits_1_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    _hand_written_store(tmp_path / "state.db")
    assert main(["inspect", "--store", url_of(tmp_path / "state.db"), "nope"]) == 1
    assert "no execution 'nope'" in capsys.readouterr().err


def test_inspect_without_a_store_file_exits_1_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["inspect", "--store", url_of(tmp_path / "missing.db")]) == 1
    assert "no store at" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


class Dawdle(BranchActor):
    """Suspends for a minute after one step, so a test can look at a live execution."""

    def run(self, ctx: BranchContext, item: Any) -> Any:
        ctx.step("start", int, item)
        ctx.wait("long", seconds=60)
        return item


def suspended_waits(url: str, execution_id: str) -> int:
    """Branches of the execution whose store log shows a suspended wait."""
    reader = open_reader(url)
    try:
        return sum(
            1
            for branch in reader.read_branches(execution_id)
            if any(op.kind is OpKind.WAIT and op.status is OpStatus.SUSPENDED
                   for op in reader.read_log(branch.branch_id).operations)
        )
    finally:
        reader.close()


@pytest.mark.timeout(120)
def test_inspect_reads_a_store_while_a_system_is_writing_it(
    actor_system: ActorSystem, capsys: pytest.CaptureFixture[str],
) -> None:
    url = actor_system.store_url
    assert url is not None
    run = actor_system.map(Dawdle, [1, 2], execution_id="live")
    wait_until(lambda: suspended_waits(url, "live") == 2, timeout=30)
    assert main(["inspect", "--store", url]) == 0
    assert "live" in capsys.readouterr().out
    assert main(["inspect", "--store", url, "live"]) == 0
    printed = capsys.readouterr().out
    assert "RUNNING" in printed.splitlines()[0]
    assert printed.count("WAIT long · SUSPENDED") == 2 and "due in" in printed
    # The system went on undisturbed (its eviction reports may trail the store's rows).
    wait_until(lambda: run.progress()["suspended"] == 2, timeout=30)


@pytest.mark.timeout(180)
def test_a_trace_of_the_demo_exports_as_trace_event_json_with_one_track_per_process(
    tmp_path: Path,
) -> None:
    from test_trace_cmd import assert_valid_trace_event_json

    trace, exported = tmp_path / "demo.jsonl", tmp_path / "demo.json"
    assert main(["demo", "--store", url_of(tmp_path / "d.db"), "--items", "20",
                 "--trace", str(trace)]) == 0
    assert main(["trace", str(trace), "--perfetto", str(exported)]) == 0
    data = assert_valid_trace_event_json(exported.read_text())
    tracks = {e["pid"]: e["args"]["name"] for e in data["traceEvents"]
              if e.get("ph") == "M" and e.get("name") == "process_name"}
    roles = {name.split(" (")[0] for name in tracks.values()}
    assert {"service", "checkpoint", "scheduler", "worker-0"} <= roles
    assert len(tracks) == len(roles)  # one track per process
