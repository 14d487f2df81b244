"""Callbacks: outside code completes an id; the waiting branch resumes once.

The tests on the ``system`` fixture run on each store (``store_url``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.errors import (
    CallbackError,
    CallbackFailedError,
    CallbackTimeoutError,
    UnknownCallbackError,
)
from actors.policies import Completion
from runtime import ActorSystem, SystemConfig

from branch_kinds import Kind
from branches_for_tests import Approval, effects
from conftest import wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def actor_system_store(store_url: str) -> str:
    """``system`` runs on each store kind in turn."""
    return store_url


def published_id(path: str) -> str:
    found = wait_until(lambda: effects(path), timeout=30)
    callback_id: str = found[0][0]
    return callback_id


def test_completing_a_callback_resumes_its_branch_with_the_value(
    system: ActorSystem, tmp_path: Path, kind: Kind
) -> None:
    path = str(tmp_path / "ids")
    run = system.map(kind(Approval), [(path, None)])
    assert system.complete_callback(published_id(path), {"by": "ana"}) is True
    assert run.result(timeout=60).values() == [("approved", {"by": "ana"})]


def test_a_callback_completed_while_its_branch_is_evicted_resumes_it_by_replay(
    tmp_path: Path, kind: Kind
) -> None:
    path = str(tmp_path / "ids")
    config = SystemConfig(workers=1, suspend_checkpoint_delay=0)  # the wait is written at once
    with ActorSystem(store=f"sqlite:///{tmp_path / 's.db'}", config=config) as system:
        run = system.map(kind(Approval), [(path, None)])
        callback_id = published_id(path)
        wait_until(lambda: run.progress()["suspended"] == 1)
        system.complete_callback(callback_id, 7)
        assert run.result(timeout=60).values() == [("approved", 7)]
        assert system.metrics()["branch.replays"] == 1


def test_failing_a_callback_raises_in_its_branch(
    system: ActorSystem, tmp_path: Path, kind: Kind
) -> None:
    path = str(tmp_path / "ids")
    run = system.map(kind(Approval), [(path, None)], completion=Completion.all_completed())
    system.fail_callback(published_id(path), "rejected by the reviewer")
    result = run.result(timeout=60)
    assert isinstance(result.errors[0], CallbackFailedError)
    assert "rejected" in str(result.errors[0])


def test_completing_twice_with_the_same_value_is_idempotent_and_reported(
    system: ActorSystem, tmp_path: Path, kind: Kind
) -> None:
    path = str(tmp_path / "ids")
    run = system.map(kind(Approval), [(path, None)])
    callback_id = published_id(path)
    assert system.complete_callback(callback_id, "yes") is True
    assert system.complete_callback(callback_id, "yes") is False
    assert run.result(timeout=60).values() == [("approved", "yes")]


def test_completing_again_with_another_value_is_a_typed_error(
    system: ActorSystem, tmp_path: Path, kind: Kind
) -> None:
    path = str(tmp_path / "ids")
    run = system.map(kind(Approval), [(path, None)])
    callback_id = published_id(path)
    system.complete_callback(callback_id, "yes")
    run.result(timeout=60)
    with pytest.raises(CallbackError, match="another outcome"):
        system.complete_callback(callback_id, "no")


def test_completing_an_unknown_callback_is_a_typed_error(system: ActorSystem) -> None:
    with pytest.raises(UnknownCallbackError, match="not a callback id"):
        system.complete_callback("nonsense", 1)
    with pytest.raises(UnknownCallbackError, match="no callback"):
        system.complete_callback("cb:no-such-execution/0:1", 1)


def test_a_callback_that_times_out_fails_its_branch_and_cannot_be_completed(
    system: ActorSystem, tmp_path: Path, kind: Kind
) -> None:
    path = str(tmp_path / "ids")
    run = system.map(kind(Approval), [(path, 0.3)], completion=Completion.all_completed())
    callback_id = published_id(path)
    result = run.result(timeout=60)
    assert isinstance(result.errors[0], CallbackTimeoutError)
    with pytest.raises(CallbackTimeoutError):
        system.complete_callback(callback_id, "too late")
