"""Two systems on one store: what one does to an execution the other runs.

Both systems run in the test's process (each with its own processes); the
second observes the first's executions through the store and writes signals
that the owner takes at its next lease round.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.errors import ExecutionCancelledError, ExecutionMismatchError
from runtime import ActorSystem, SystemConfig
from runtime.ledger import LedgerBranch, LedgerItem, expected_total

from branch_kinds import Kind
from branches_for_tests import Approval, effects
from conftest import wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[ActorSystem, ActorSystem]]:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    config = SystemConfig(workers=1, lease_seconds=2.0, poll_interval=0.05)
    owner = ActorSystem(store=url, config=SystemConfig(**{**config.__dict__,
                                                          "executor_id": "owner"}))
    other = ActorSystem(store=url, config=SystemConfig(**{**config.__dict__,
                                                          "executor_id": "other"}))
    try:
        yield owner, other
    finally:
        other.shutdown()
        owner.shutdown()


def test_another_system_observes_an_execution_and_gets_its_result(
        pair: tuple[ActorSystem, ActorSystem], tmp_path: Path) -> None:
    owner, other = pair
    items = [LedgerItem(i, str(tmp_path / "ledger"), steps=2, wait=0.2) for i in range(3)]
    run = owner.map(LedgerBranch, items, execution_id="shared")
    seen = other.map(LedgerBranch, items, execution_id="shared")
    assert seen.started == "observing"
    assert seen.result(timeout=60).values() == [expected_total(i) for i in items]
    assert run.result(timeout=10).values() == seen.result(timeout=10).values()
    assert other.execution("shared").progress()["done"] == 3


def test_another_system_cannot_start_other_items_under_a_running_id(
        pair: tuple[ActorSystem, ActorSystem], tmp_path: Path) -> None:
    owner, other = pair
    path = str(tmp_path / "ledger")
    owner.map(LedgerBranch, [LedgerItem(0, path, steps=1, wait=30)], execution_id="mine")
    with pytest.raises(ExecutionMismatchError):
        other.map(LedgerBranch, [LedgerItem(1, path, steps=1, wait=30)], execution_id="mine")


def test_a_cancel_from_another_system_stops_the_owner_s_execution(
        pair: tuple[ActorSystem, ActorSystem], tmp_path: Path) -> None:
    owner, other = pair
    path = str(tmp_path / "ledger")
    run = owner.map(LedgerBranch, [LedgerItem(0, path, steps=3, wait=5)], execution_id="c")
    assert other.cancel("c") is True
    with pytest.raises(ExecutionCancelledError):
        run.result(timeout=30)
    assert owner.execution("c").status() == "CANCELLED"
    assert other.cancel("c") is False


def test_a_callback_completed_on_another_system_resumes_the_owner_s_branch(
        pair: tuple[ActorSystem, ActorSystem], tmp_path: Path) -> None:
    owner, other = pair
    path = str(tmp_path / "ids")
    run = owner.map(Kind.SYNC(Approval), [(path, None)], execution_id="approve")
    callback_id = wait_until(lambda: effects(path), timeout=30)[0][0]
    assert other.complete_callback(callback_id, {"by": "bo"}) is True
    assert run.result(timeout=30).values() == [("approved", {"by": "bo"})]
