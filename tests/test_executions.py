"""Durable executions on real processes, on a real SQLite file and a real PostgreSQL server.

Every test that uses the store runs once per store kind (``store_url``).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from actors.errors import BatchFailedError
from actors.policies import BatchStatus, Completion
from runtime import ActorSystem, SystemConfig

from branch_kinds import Kind
from branches_for_tests import (
    Answer,
    Burn,
    FailsOn,
    Flaky,
    Interval,
    Parent,
    Squares,
    Unpicklable,
    Waits,
    effects,
    expected_squares,
)
from conftest import wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def actor_system_store(store_url: str) -> str:
    """``system`` runs on each store kind in turn."""
    return store_url


def test_map_returns_results_in_input_order(
    system: ActorSystem, tmp_path: Path, kind: Kind
) -> None:
    path = str(tmp_path / "effects")
    run = system.map(kind(Squares), [(i, path, 0.0) for i in range(12)], max_concurrency=4)
    result = run.result(timeout=60)
    assert result.values() == [expected_squares(i) for i in range(12)]
    assert result.status is BatchStatus.ALL_COMPLETED
    assert run.status() == "SUCCEEDED"


def test_parallel_runs_different_branch_classes(
    system: ActorSystem, tmp_path: Path, kind: Kind
) -> None:
    path = str(tmp_path / "effects")
    run = system.parallel([(kind(Squares), (1, path, 0.0)), kind(Answer), (kind(Answer), 42)],
                          execution_id="p-1")
    assert run.result(timeout=60).values() == [expected_squares(1), ("answer", None),
                                               ("answer", 42)]


def test_map_is_fail_fast_by_default(system: ActorSystem, tmp_path: Path, kind: Kind) -> None:
    path = str(tmp_path / "effects")
    run = system.map(kind(FailsOn), [(i, 2, path) for i in range(10)], max_concurrency=1)
    result = run.result(timeout=60)
    assert result.status is BatchStatus.FAILURE_TOLERANCE_EXCEEDED
    assert run.status() == "FAILED"
    assert [int(e[2]) for e in effects(path)] == [0, 1, 2]  # nothing started after the failure
    assert isinstance(result.errors[2], ValueError)
    with pytest.raises(BatchFailedError):
        result.values()


def test_tolerated_failures_let_the_map_complete(
    system: ActorSystem, tmp_path: Path, kind: Kind
) -> None:
    path = str(tmp_path / "effects")
    run = system.map(kind(FailsOn), [(i, 3, path) for i in range(6)],
                     completion=Completion(tolerated_failures=1))
    result = run.result(timeout=60)
    assert result.status is BatchStatus.ALL_COMPLETED
    assert result.results == (0, 1, 2, None, 4, 5)
    assert (result.succeeded, result.failed) == (5, 1)


def test_max_concurrency_limits_branches_in_flight(
    system: ActorSystem, tmp_path: Path, kind: Kind
) -> None:
    path = str(tmp_path / "effects")
    system.map(kind(Interval), [(i, path, 0.05) for i in range(8)], max_concurrency=2).result(60)
    intervals = [(float(e[2]), float(e[3])) for e in effects(path)]
    most = max(sum(1 for s, e in intervals if s <= t < e) for t, _ in intervals)
    assert most <= 2


def test_a_finished_execution_returns_its_stored_result_without_running(
    tmp_path: Path, store_url: str, kind: Kind
) -> None:
    path = str(tmp_path / "effects")
    store = store_url
    items = [(i, path, 0.0) for i in range(3)]
    with ActorSystem(store=store, config=SystemConfig(workers=1)) as first:
        first.map(kind(Squares), items, execution_id="done-1").result(timeout=60)
    ran = len(effects(path))
    with ActorSystem(store=store, config=SystemConfig(workers=1)) as second:
        run = second.map(kind(Squares), items, execution_id="done-1")
        assert run.started == "finished"
        assert run.result(timeout=10).values() == [expected_squares(i) for i in range(3)]
    assert len(effects(path)) == ran


def test_a_suspended_branch_holds_no_thread(tmp_path: Path, store_url: str, kind: Kind) -> None:
    config = SystemConfig(workers=1, worker_threads=2)
    with ActorSystem(store=store_url, config=config) as system:
        run = system.map(kind(Waits), [(i, 1.5) for i in range(30)])
        # 30 branches wait at once on a worker that has only 2 threads.
        wait_until(lambda: run.progress()["suspended"] == 30, timeout=30)
        assert run.result(timeout=60).values() == list(range(30))
        assert system.metrics()["branch.evictions"] == 30


def test_a_retry_backs_off_as_a_suspension(tmp_path: Path, store_url: str, kind: Kind) -> None:
    path = str(tmp_path / "effects")
    config = SystemConfig(workers=1, suspend_checkpoint_delay=0)  # every suspension evicts
    with ActorSystem(store=store_url, config=config) as system:
        run = system.map(kind(Flaky), [(2, path)])
        assert run.result(timeout=60).values() == [3]
        metrics = system.metrics()
    assert len(effects(path)) == 3
    assert metrics["branch.evictions"] == 2  # one per back-off
    assert metrics["step.executions"] == 3


def test_children_of_a_branch_run_and_their_batch_result_returns(
    system: ActorSystem, tmp_path: Path, kind: Kind
) -> None:
    path = str(tmp_path / "effects")
    run = system.map(kind(Parent), [(3, path), (2, path)])
    assert run.result(timeout=60).values() == [
        sum(expected_squares(i) for i in range(3)), sum(expected_squares(i) for i in range(2))
    ]
    assert len(effects(path)) == 3 * (3 + 2)  # every child step ran once


def test_cpu_bound_branches_run_at_once_in_different_processes(tmp_path: Path, kind: Kind) -> None:
    path = str(tmp_path / "effects")
    config = SystemConfig(workers=2)
    with ActorSystem(store=f"sqlite:///{tmp_path / 's.db'}", config=config) as system:
        system.map(kind(Burn), [(400_000, path), (400_000, path)]).result(timeout=120)
    (_, pid_a, start_a, end_a), (_, pid_b, start_b, end_b) = effects(path)
    assert pid_a != pid_b
    assert float(start_a) < float(end_b) and float(start_b) < float(end_a)  # they overlapped


def test_a_killed_worker_does_not_lose_its_branches(
    tmp_path: Path, store_url: str, kind: Kind
) -> None:
    path = str(tmp_path / "effects")
    config = SystemConfig(workers=2)
    with ActorSystem(store=store_url, config=config) as system:
        run = system.map(kind(Squares), [(i, path, 0.1) for i in range(10)], max_concurrency=10)
        wait_until(lambda: len(effects(path)) >= 3)
        victim = system._durable.workers[0]  # type: ignore[union-attr]
        pid = system.host.pid_of(victim.actor_id)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert run.result(timeout=60).values() == [expected_squares(i) for i in range(10)]


def test_an_unpicklable_result_fails_the_branch_with_a_clear_error(
    system: ActorSystem, kind: Kind
) -> None:
    result = system.map(kind(Unpicklable), [0], completion=Completion.all_completed()).result(60)
    assert result.failed == 1
    assert "lock" in str(result.errors[0]).lower()


def test_metrics_use_the_api_counter_names(system: ActorSystem, tmp_path: Path, kind: Kind) -> None:
    system.map(kind(Answer), [1, 2]).result(timeout=60)
    metrics = system.metrics()
    for name in ("checkpoint.store_calls", "checkpoint.batches", "checkpoint.updates",
                 "checkpoint.empty_requests", "checkpoint.empty_batches", "branch.replays",
                 "branch.evictions", "step.executions"):
        assert isinstance(metrics[name], int), name


def test_a_store_that_cannot_be_opened_raises_a_typed_error(tmp_path: Path, kind: Kind) -> None:
    from actors.errors import StoreError
    from runtime.stores.postgres_server import free_port

    unreachable = f"postgresql://user:secret@127.0.0.1:{free_port()}/db"
    with ActorSystem(store=unreachable) as system, \
            pytest.raises(StoreError, match="cannot reach") as caught:
        system.map(kind(Answer), [1])
    assert "secret" not in str(caught.value)


def test_an_invalid_execution_id_raises_a_typed_error(system: ActorSystem, kind: Kind) -> None:
    from runtime import ConfigurationError

    with pytest.raises(ConfigurationError, match="execution_id"):
        system.map(kind(Answer), [1], execution_id="a/b")


def test_a_killed_checkpoint_process_is_restarted_and_the_map_finishes(
    tmp_path: Path, store_url: str, kind: Kind
) -> None:
    path = str(tmp_path / "effects")
    config = SystemConfig(workers=2)
    with ActorSystem(store=store_url, config=config) as system:
        run = system.map(kind(Squares), [(i, path, 0.05) for i in range(12)], max_concurrency=6)
        wait_until(lambda: len(effects(path)) >= 6)
        checkpoint = system._durable.checkpoint  # type: ignore[union-attr]
        pid = system.host.pid_of(checkpoint.actor_id)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert run.result(timeout=90).values() == [expected_squares(i) for i in range(12)]
