"""``durable-actors inspect`` for scripts and searches: JSON, filters, results, errors, pages."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from actors.branch import encode_error
from actors.messages import (
    BranchStatus,
    BranchUpdate,
    ExecutionStatus,
    ExecutionUpdate,
    OperationUpdate,
    OpKind,
    OpStatus,
    Update,
)
from runtime import serialization
from runtime.cli import main
from runtime.stores import SqliteStore


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps at 80 columns off a terminal


def lookup(catalogue: dict[str, int], key: str) -> int:
    return catalogue[key]


def logged_key_error() -> bytes:
    try:
        lookup({}, "missing")
    except KeyError as exc:
        return encode_error(exc, serialization.dumps)
    raise AssertionError("lookup did not fail")


def write(path: Path, updates: list[Update]) -> str:
    store = SqliteStore(path)
    store.commit(updates, [], now=time.time())
    store.close()
    return f"sqlite:///{path}"


@pytest.fixture
def orders(tmp_path: Path) -> str:
    """An execution of three branches: one succeeded, one failed, one suspended."""
    dumps, error = serialization.dumps, logged_key_error()
    return write(tmp_path / "state.db", [
        ExecutionUpdate("orders", ExecutionStatus.RUNNING, kind="map", branch_count=3),
        BranchUpdate("orders", "orders/0", BranchStatus.SUCCEEDED, index=0,
                     result=dumps({"total": 42})),
        OperationUpdate("orders", "orders/0", "1", OpKind.STEP, "price", OpStatus.SUCCEEDED,
                        attempt=1, payload=dumps(["x" * 500])),
        BranchUpdate("orders", "orders/1", BranchStatus.FAILED, index=1, error=error),
        OperationUpdate("orders", "orders/1", "1", OpKind.STEP, "price", OpStatus.FAILED,
                        attempt=1, error=error),
        BranchUpdate("orders", "orders/2", BranchStatus.SUSPENDED, index=2),
        OperationUpdate("orders", "orders/2", "1", OpKind.WAIT, "cool", OpStatus.SUSPENDED,
                        due_at=time.time() + 600),
    ])


def inspect(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["inspect", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def branch_ids(document: dict[str, Any]) -> list[str]:
    return [b["id"] for b in document["branches"]["items"]]


def test_json_holds_results_error_messages_and_tracebacks(
    orders: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = inspect(capsys, "--store", orders, "orders", "--json")
    assert code == 0
    document = json.loads(out)
    assert document["execution"]["counts"] == {"succeeded": 1, "failed": 1, "suspended": 1}
    done, failed, _waiting = document["branches"]["items"]
    assert done["result"] == "{'total': 42}"
    price = done["operations"][0]["result"]
    assert price.startswith("['xxx") and len(price) <= 120  # a truncated repr
    assert failed["error"]["type"] == "KeyError" and failed["error"]["message"] == "'missing'"
    assert "in lookup" in failed["error"]["traceback"]
    assert "in lookup" in failed["operations"][0]["error"]["traceback"]


def test_the_tree_shows_an_error_with_its_message_and_a_result(
    orders: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = inspect(capsys, "--store", orders, "orders")
    assert code == 0
    failed = next(line for line in out.splitlines() if "branch orders/1 " in line)
    assert "error KeyError: 'missing'" in failed
    done = next(line for line in out.splitlines() if "branch orders/0 " in line)
    assert "→ {'total': 42}" in done
    assert "in lookup" not in out  # tracebacks only with --failed


def test_failed_shows_only_failed_branches_each_with_its_traceback(
    orders: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = inspect(capsys, "--store", orders, "orders", "--failed")
    assert code == 0
    assert "branch orders/1 " in out
    assert "branch orders/0 " not in out and "branch orders/2 " not in out
    assert "in lookup" in out and "return catalogue[key]" in out


def test_status_keeps_the_branches_of_that_status_and_json_says_which(
    orders: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = inspect(capsys, "--store", orders, "orders", "--status", "suspended", "--json")
    assert code == 0
    document = json.loads(out)
    assert branch_ids(document) == ["orders/2"]
    assert document["branches"]["status"] == "SUSPENDED"


def test_an_unknown_status_exits_2_and_names_the_valid_ones(
    orders: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = inspect(capsys, "--store", orders, "orders", "--status", "broken")
    assert code == 2
    assert "unknown status 'broken'" in err and "SUSPENDED" in err


def test_the_list_filters_executions_by_status_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = write(tmp_path / "state.db", [
        ExecutionUpdate("good", ExecutionStatus.SUCCEEDED, kind="map", branch_count=0),
        ExecutionUpdate("bad", ExecutionStatus.FAILED, kind="map", branch_count=0,
                        error=logged_key_error()),
    ])
    code, out, _ = inspect(capsys, "--store", url, "--failed", "--json")
    assert code == 0
    (bad,) = json.loads(out)["executions"]
    assert bad["id"] == "bad" and bad["error"]["message"] == "'missing'"


def test_a_large_execution_shows_one_page_and_says_how_to_see_more(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    updates: list[Update] = [ExecutionUpdate("big", ExecutionStatus.RUNNING, kind="map",
                                             branch_count=3000)]
    for i in range(3000):
        updates.append(BranchUpdate("big", f"big/{i}", BranchStatus.SUCCEEDED, index=i))
        updates.append(OperationUpdate("big", f"big/{i}", "1", OpKind.STEP, "work",
                                       OpStatus.SUCCEEDED, attempt=1))
    url = write(tmp_path / "state.db", updates)
    code, out, _ = inspect(capsys, "--store", url, "big")
    assert code == 0
    assert len(out.splitlines()) < 60
    assert "big: branches 1–20 of 3000 shown; --offset 20 for the next page" in out
    code, out, _ = inspect(capsys, "--store", url, "big", "--offset", "2990", "--json")
    assert branch_ids(json.loads(out)) == [f"big/{i}" for i in range(2990, 3000)]
