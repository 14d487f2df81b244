"""``durable-actors executions``: managing a store's executions with no service of its own.

Every test runs on a SQLite file and on a PostgreSQL database (``store_url``).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from actors import BranchActor, BranchContext
from actors.errors import ExecutionCancelledError
from runtime import ActorSystem
from runtime.tools.cli import main
from runtime.tools.ledger import LedgerBranch, LedgerItem, record

from conftest import wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def actor_system_store(store_url: str) -> str:
    """``system`` runs on each store kind in turn."""
    return store_url


class Fragile(BranchActor):
    """Fails while ``<path>.fixed`` is absent."""

    def run(self, ctx: BranchContext, item: Any) -> str:
        def attempt() -> str:
            record(item, "attempt")
            if not os.path.exists(item + ".fixed"):
                raise RuntimeError("not fixed yet")
            return "fixed"

        return ctx.step("attempt", attempt)


class SavesBytes(BranchActor):
    """Returns a Ref to 100 kB of ``item``: its blob is the execution's alone."""

    def run(self, ctx: BranchContext, item: Any) -> Any:
        return ctx.save(bytes([item]) * 100_000)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code = main(["executions", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_list_shows_every_execution_newest_first_with_its_owner(
        system: ActorSystem, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = system.store_url or ""
    path = str(tmp_path / "ledger")
    system.map(LedgerBranch, [LedgerItem(0, path, steps=1)], execution_id="old").result(60)
    system.map(LedgerBranch, [LedgerItem(0, path, steps=1, wait=30)], execution_id="new")
    code, found = cli(capsys, "list", "--store", url)
    assert code == 0
    assert [(e["id"], e["status"]) for e in found["executions"]][:2] == [
        ("new", "RUNNING"), ("old", "SUCCEEDED")]
    assert found["executions"][0]["owner"] and found["executions"][0]["lease_expires_in"] > 0
    code, failed = cli(capsys, "list", "--store", url, "--status", "FAILED")
    assert failed["executions"] == []


def test_show_describes_one_execution(system: ActorSystem, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "ledger")
    system.map(LedgerBranch, [LedgerItem(i, path, steps=1) for i in range(3)],
               execution_id="shown").result(60)
    code, found = cli(capsys, "show", "shown", "--store", system.store_url or "")
    assert code == 0 and found["status"] == "SUCCEEDED" and found["branches"] == 3
    code, missing = cli(capsys, "show", "nope", "--store", system.store_url or "")
    assert code == 1 and missing["error"] == "UnknownExecutionError"


def test_cancel_from_the_command_line_stops_an_execution_a_service_runs(
        system: ActorSystem, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "ledger")
    run = system.map(LedgerBranch, [LedgerItem(0, path, steps=3, wait=5)],
                     execution_id="stop-me")
    code, found = cli(capsys, "cancel", "stop-me", "--store", system.store_url or "")
    assert (code, found["cancelled"]) == (0, True)
    with pytest.raises(ExecutionCancelledError):
        run.result(timeout=30)  # the owner took the signal at its next lease round
    code, again = cli(capsys, "cancel", "stop-me", "--store", system.store_url or "")
    assert (code, again["cancelled"], again["status"]) == (1, False, "CANCELLED")


def test_retry_from_the_command_line_is_taken_over_by_a_running_service(
        system: ActorSystem, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "attempts")
    run = system.map(Fragile, [path], execution_id="fragile")
    assert run.result(timeout=60).failed == 1
    Path(path + ".fixed").touch()
    code, found = cli(capsys, "retry", "fragile", "--store", system.store_url or "")
    assert (code, found["retried"]) == (0, True)
    wait_until(lambda: system.execution("fragile").status() == "SUCCEEDED", timeout=60)
    assert system.execution("fragile").result(timeout=10).values() == ["fixed"]


def test_delete_from_the_command_line_removes_a_finished_execution(
        system: ActorSystem, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "ledger")
    system.map(LedgerBranch, [LedgerItem(0, path, steps=1)], execution_id="gone").result(60)
    code, found = cli(capsys, "delete", "gone", "--store", system.store_url or "")
    assert (code, found["deleted"]) == (0, True)
    code, _ = cli(capsys, "show", "gone", "--store", system.store_url or "")
    assert code == 1


def test_deleting_a_running_execution_is_refused_with_what_to_do(
        system: ActorSystem, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "ledger")
    system.map(LedgerBranch, [LedgerItem(0, path, steps=1, wait=30)], execution_id="busy")
    code, found = cli(capsys, "delete", "busy", "--store", system.store_url or "")
    assert code == 1 and "cancel it first" in found["message"]


def test_delete_collects_the_blobs_in_the_blob_dir_it_is_given(
        system: ActorSystem, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    system.map(SavesBytes, [9], execution_id="blobbed").result(60)
    blob_dir = Path(system.config.blob_dir or "")
    blobs = [p for p in blob_dir.rglob("*") if p.is_file() and p.parent.name != "tmp"]
    assert len(blobs) == 1
    os.utime(blobs[0], (time.time() - 3600, time.time() - 3600))  # past a save's grace
    code, found = cli(capsys, "delete", "blobbed", "--store", system.store_url or "",
                      "--blob-dir", str(blob_dir))
    assert (code, found["deleted"], found["blobs_deleted"]) == (0, True, 1)
    assert not blobs[0].exists()


def test_list_and_show_for_people_say_a_finished_execution_holds_no_lease(
        system: ActorSystem, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")  # a terminal wide enough that no cell wraps
    path = str(tmp_path / "ledger")
    system.map(LedgerBranch, [LedgerItem(i, path, steps=1) for i in range(2)],
               execution_id="done").result(60)
    system.map(LedgerBranch, [LedgerItem(0, path, steps=1, wait=30)], execution_id="busy")
    url = system.store_url or ""
    assert main(["executions", "list", "--store", url]) == 0
    rows = {cells[1]: cells for line in capsys.readouterr().out.splitlines()
            if len(cells := [c.strip() for c in line.split("│")]) > 7}
    assert rows["done"][6] == "-" and rows["busy"][6].endswith(" s left")
    assert main(["executions", "show", "done", "--store", url]) == 0
    shown = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    shown = {label.strip(): text for label, text in shown.items()}
    assert shown["status"] == "SUCCEEDED" and shown["branches"] == "2 (2 succeeded)"
    assert shown["lease"] == "none (finished), epoch 1"
    # A date people read, and how long ago, not seconds since 1970.
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \((just now|.+ ago)\)", shown["created"])
