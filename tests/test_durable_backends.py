"""Durable executions end to end, once per backend: the local one and Ray.

One system per backend serves the module (a Ray system starts its framework
actors as Ray actors, seconds each); every test runs its own execution on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.errors import BatchFailedError, ExecutionCancelledError
from actors.policies import BatchStatus, Completion
from actors.refs import Ref
from runtime import ActorSystem, SystemConfig

from branch_kinds import Kind
from branches_for_tests import (
    Answer,
    Approval,
    FailsOn,
    Flaky,
    Parent,
    Squares,
    Waits,
    effects,
    expected_squares,
)
from conftest import wait_until
from ray_actors_for_tests import BigResult

BACKENDS = ["local", "ray"]


@pytest.fixture(scope="module", params=BACKENDS)
def system(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ActorSystem]:
    """A started system of the backend under test, its durable services running."""
    if request.param == "ray":
        request.getfixturevalue("ray_module")
    directory = tmp_path_factory.mktemp(f"durable-{request.param}")
    config = SystemConfig(workers=2, blob_dir=str(directory / "blobs"))
    with ActorSystem(store=f"sqlite:///{directory / 'state.db'}", config=config,
                     backend=request.param) as started:
        started.start_durable()
        yield started


def test_a_map_returns_every_result_in_input_order(
        system: ActorSystem, tmp_path: Path, kind: Kind) -> None:
    path = str(tmp_path / "effects")
    run = system.map(kind(Squares), [(i, path, 0.0) for i in range(6)])
    assert run.result(timeout=120).values() == [expected_squares(i) for i in range(6)]
    assert len(effects(path)) == 3 * 6  # every step ran once


def test_a_parallel_runs_different_branch_classes(system: ActorSystem, kind: Kind) -> None:
    run = system.parallel([(kind(Answer), 1), (kind(Answer), 2)])
    assert run.result(timeout=120).values() == [("answer", 1), ("answer", 2)]


def test_a_failing_branch_fails_the_execution_with_its_error(
        system: ActorSystem, tmp_path: Path, kind: Kind) -> None:
    run = system.map(kind(FailsOn), [(i, 1, str(tmp_path / "effects")) for i in range(3)])
    result = run.result(timeout=120)
    assert result.status is BatchStatus.FAILURE_TOLERANCE_EXCEEDED
    assert run.status() == "FAILED"
    assert isinstance(result.errors[1], ValueError)
    assert "item 1 is bad" in str(result.errors[1])
    with pytest.raises(BatchFailedError):
        result.values()


def test_child_branches_run_and_their_results_reach_the_parent(
        system: ActorSystem, tmp_path: Path, kind: Kind) -> None:
    run = system.map(kind(Parent), [(3, str(tmp_path / "effects"))])
    assert run.result(timeout=120).values() == [sum(expected_squares(i) for i in range(3))]


def test_a_waiting_branch_resumes_when_its_timer_is_due(system: ActorSystem, kind: Kind) -> None:
    run = system.map(kind(Waits), [("a", 0.5), ("b", 0.2)])
    assert run.result(timeout=120).values() == ["a", "b"]


def test_a_failing_step_is_retried_by_its_policy(
        system: ActorSystem, tmp_path: Path, kind: Kind) -> None:
    path = str(tmp_path / "attempts")
    assert system.map(kind(Flaky), [(1, path)]).result(timeout=120).values() == [2]
    assert len(effects(path)) == 2


def test_a_completed_callback_resumes_its_branch(
        system: ActorSystem, tmp_path: Path, kind: Kind) -> None:
    path = str(tmp_path / "callbacks")
    run = system.map(kind(Approval), [(path, 120.0)])
    wait_until(lambda: len(effects(path)) == 1, timeout=60)
    assert system.complete_callback(effects(path)[0][0], {"ok": True}) is True
    assert run.result(timeout=120).values() == [("approved", {"ok": True})]


def test_a_cancelled_execution_raises_execution_cancelled(
        system: ActorSystem, kind: Kind) -> None:
    run = system.map(kind(Waits), [("never", 600.0)])
    wait_until(lambda: run.status() == "RUNNING", timeout=60)
    assert system.cancel(run.id) is True
    with pytest.raises(ExecutionCancelledError):
        run.result(timeout=120)


def test_a_large_result_is_stored_as_a_ref_and_loads_in_the_service(
        system: ActorSystem) -> None:
    (value,) = system.map(BigResult, [200_000], completion=Completion.all_successful()
                          ).result(timeout=120).values()
    assert isinstance(value, Ref)
    assert value.get(timeout=30) == b"x" * 200_000


def test_metrics_count_the_steps_the_workers_ran(system: ActorSystem, tmp_path: Path) -> None:
    before = system.metrics()["step.executions"]
    system.map(Squares, [(0, str(tmp_path / "effects"), 0.0)]).result(timeout=120)
    assert system.metrics()["step.executions"] - before == 3
