"""Managing stored executions: list, cancel, retry, delete, deadlines, ids that mismatch.

Real processes on a real SQLite file and a real PostgreSQL database (the
``system`` fixture, once per ``store_url``); the ledger (``runtime.tools.ledger``)
counts which step bodies ran.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from actors import BranchActor, BranchContext
from actors.errors import (
    ExecutionCancelledError,
    ExecutionMismatchError,
    ExecutionStateError,
    UnknownExecutionError,
)
from actors.policies import BatchStatus
from runtime import ActorSystem
from runtime.durable import digests_in
from runtime.stores import open_store, read_only_url
from runtime.tools.ledger import LedgerBranch, LedgerItem, expected_total, read_ledger, record

from conftest import wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def actor_system_store(store_url: str) -> str:
    """``system`` runs on each store kind in turn."""
    return store_url


def ledger_items(path: Path, n: int, **fields: Any) -> list[LedgerItem]:
    return [LedgerItem(i, str(path), **fields) for i in range(n)]


class FailsUntilFixed(BranchActor):
    """A step that fails while the file ``fixed`` is absent; two steps around it."""

    def run(self, ctx: BranchContext, item: Any) -> str:
        path, index = item

        def before() -> int:
            record(path, "before", ctx.branch_id)
            return index

        def fragile() -> int:
            record(path, "fragile", ctx.branch_id)
            if index == 1 and not os.path.exists(path + ".fixed"):
                raise RuntimeError("not fixed yet")
            return index

        return f"{ctx.step('before', before)}-{ctx.step('fragile', fragile)}"


class SavesBlob(BranchActor):
    """Returns a Ref to ``size`` bytes of ``fill``: its result row refers to the blob."""

    def run(self, ctx: BranchContext, item: Any) -> Any:
        fill, size = item
        return ctx.save(bytes([fill]) * size)


def test_an_empty_map_and_an_empty_parallel_finish_at_once(system: ActorSystem) -> None:
    for run in (system.map(LedgerBranch, [], execution_id="empty-map"),
                system.parallel([], execution_id="empty-parallel")):
        result = run.result(timeout=30)
        assert (result.results, result.status) == ((), BatchStatus.ALL_COMPLETED)
        assert run.status() == "SUCCEEDED"


def test_the_same_id_with_other_items_raises_a_mismatch(system: ActorSystem,
                                                         tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    system.map(LedgerBranch, ledger_items(ledger, 2), execution_id="same").result(timeout=60)
    with pytest.raises(ExecutionMismatchError, match="another execution_id"):
        system.map(LedgerBranch, ledger_items(ledger, 3), execution_id="same")


def test_the_same_id_with_another_branch_class_raises_a_mismatch(system: ActorSystem,
                                                                 tmp_path: Path) -> None:
    system.map(FailsUntilFixed, [(str(tmp_path / "l"), 0)], execution_id="cls").result(60)
    with pytest.raises(ExecutionMismatchError):
        system.map(LedgerBranch, [(str(tmp_path / "l"), 0)], execution_id="cls")


def test_the_same_id_and_items_returns_the_stored_execution(system: ActorSystem,
                                                            tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    first = system.map(LedgerBranch, ledger_items(ledger, 2), execution_id="again")
    first.result(timeout=60)
    again = system.map(LedgerBranch, ledger_items(ledger, 2), execution_id="again")
    assert again.started == "finished"
    assert again.result(timeout=10).values() == first.result(timeout=10).values()


def test_a_cancelled_execution_starts_no_step_and_never_resumes(system: ActorSystem,
                                                                tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    run = system.map(LedgerBranch, ledger_items(ledger, 3, steps=3, wait=1.0),
                     execution_id="to-cancel")
    wait_until(lambda: len(read_ledger(ledger).acknowledged) >= 3, timeout=30)
    assert system.cancel("to-cancel") is True
    assert run.status() == "CANCELLED"
    with pytest.raises(ExecutionCancelledError):
        run.result(timeout=10)
    starts_at_cancel = _starts(ledger)
    time.sleep(2.5)  # past every wait's due time: a resumed branch would start its next step
    assert _starts(ledger) == starts_at_cancel
    assert system.cancel("to-cancel") is False  # finished: nothing to cancel


def _starts(ledger: Path) -> int:
    return sum(1 for line in ledger.read_text().splitlines() if line.startswith("start"))


def test_a_deadline_cancels_the_execution(system: ActorSystem, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    run = system.map(LedgerBranch, ledger_items(ledger, 2, steps=2, wait=30.0),
                     execution_id="late", timeout=1.0)
    with pytest.raises(ExecutionCancelledError):
        run.result(timeout=30)
    assert run.status() == "CANCELLED"


def test_a_failed_execution_is_retried_from_its_log(system: ActorSystem, tmp_path: Path) -> None:
    path = str(tmp_path / "ledger")
    run = system.map(FailsUntilFixed, [(path, 0), (path, 1)], execution_id="fragile")
    assert run.result(timeout=60).status is BatchStatus.FAILURE_TOLERANCE_EXCEEDED
    assert run.status() == "FAILED"
    Path(path + ".fixed").touch()
    again = system.retry("fragile")
    assert again.result(timeout=60).values() == ["0-0", "1-1"]
    lines = Path(path).read_text().splitlines()
    assert lines.count("before fragile/1") == 1  # succeeded steps do not run again
    assert lines.count("fragile fragile/1") == 2  # the failed one does


def test_a_cancelled_execution_is_retried_to_its_end(system: ActorSystem, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    items = ledger_items(ledger, 3, steps=2, wait=0.5)
    system.map(LedgerBranch, items, execution_id="resumed-later")
    wait_until(lambda: len(read_ledger(ledger).acknowledged) >= 2, timeout=30)
    system.cancel("resumed-later")
    run = system.retry("resumed-later")
    assert run.result(timeout=60).values() == [expected_total(i) for i in items]
    report = read_ledger(ledger)
    assert report.started_after_ack == [] and report.completed_after_ack == []


def test_a_running_execution_cannot_be_retried_or_deleted(system: ActorSystem,
                                                          tmp_path: Path) -> None:
    system.map(LedgerBranch, ledger_items(tmp_path / "l", 1, steps=1, wait=30.0),
               execution_id="busy")
    with pytest.raises(ExecutionStateError, match="still running"):
        system.retry("busy")
    with pytest.raises(ExecutionStateError, match="cancel it"):
        system.delete("busy")


def test_executions_are_listed_newest_first_and_by_status(system: ActorSystem,
                                                          tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    for eid in ("first", "second"):
        system.map(LedgerBranch, ledger_items(ledger, 1, steps=1), execution_id=eid).result(60)
    system.map(LedgerBranch, ledger_items(ledger, 1, steps=1, wait=30.0), execution_id="third")
    assert [run.id for run in system.executions()] == ["third", "second", "first"]
    assert [run.id for run in system.executions(status="SUCCEEDED")] == ["second", "first"]
    assert system.execution("first").status() == "SUCCEEDED"
    with pytest.raises(UnknownExecutionError):
        system.execution("nope")


def test_deleting_removes_the_rows_and_the_blobs_no_other_execution_refers_to(
        system: ActorSystem, tmp_path: Path) -> None:
    shared, own = (1, 70_000), (2, 80_000)  # a blob in both executions; one only in the first
    system.map(SavesBlob, [shared, own], execution_id="doomed").result(timeout=60)
    system.map(SavesBlob, [shared], execution_id="kept").result(timeout=60)
    blobs = sorted(p for p in (tmp_path / "blobs").rglob("*") if p.is_file()
                   and p.parent.name != "tmp")
    assert len(blobs) == 2
    for blob in blobs:  # older than the grace period a save in flight is given
        os.utime(blob, (time.time() - 3600, time.time() - 3600))
    assert system.delete("doomed") is True
    left = [p for p in blobs if p.exists()]
    assert len(left) == 1
    store = open_store(read_only_url(system.store_url or ""))
    try:
        assert store.read_execution("doomed") is None and store.read_branches("doomed") == []
        kept = set().union(*(digests_in(p) for p in store.read_payloads("kept")))
    finally:
        store.close()
    assert {p.parent.name + p.name for p in left} == kept
    assert system.delete("doomed") is False
