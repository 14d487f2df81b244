"""What is particular to ``ActorSystem(backend="ray")``: placement, processes, kill -9.

What both backends share runs once per backend elsewhere: the pykka semantics
(``tests/pykka_semantics``) and durable executions end to end
(``tests/test_durable_backends.py``).
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import pytest
from test_crash_resume import durable_successes

from runtime import ActorSystem, ConfigurationError, SystemConfig
from runtime.durable import Execution
from runtime.processes import ChildState

from branches_for_tests import Squares, effects, expected_squares
from conftest import pid_gone, wait_until
from ray_actors_for_tests import Counter as CounterActor
from ray_actors_for_tests import WhereItRan
from ray_for_tests import RunningRay, TrackedRay

ITEMS = 12  # the branches of a map a test breaks into


def _map_under_way(system: ActorSystem, path: str, store: str) -> Execution:
    """A map of ``ITEMS`` three-step branches ("crash-1"), once 6 of its steps are durable."""
    run = system.map(Squares, [(i, path, 0.2) for i in range(ITEMS)], max_concurrency=4,
                     execution_id="crash-1")
    wait_until(lambda: len(durable_successes(store)) >= 6, timeout=60)
    return run


def _ran_again(path: str, acknowledged: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """The acknowledged (branch, step) pairs whose body did not run exactly once."""
    runs = Counter((e[0], e[1]) for e in effects(path))
    return [key for key in acknowledged if runs[key] != 1]


FRAMEWORK = {"checkpoint", "coordinator", "scheduler", "digest", "worker-0", "worker-1"}


def test_an_unknown_backend_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="'local', 'ray'"):
        ActorSystem(backend="threads")  # type: ignore[arg-type]


def test_ray_worker_options_must_be_a_mapping_of_options() -> None:
    with pytest.raises(ConfigurationError, match="ray_worker_options"):
        SystemConfig(ray_worker_options=["num_cpus"])  # type: ignore[arg-type]


def test_every_framework_actor_on_ray_is_a_process_of_its_own(
        ray_local: RunningRay, tmp_path: Path) -> None:
    with ActorSystem(store=f"sqlite:///{tmp_path / 's.db'}", config=SystemConfig(workers=2),
                     backend="ray") as system:
        system.start_durable()
        processes = system.processes()
        assert set(processes) >= FRAMEWORK
        assert len(set(processes.values())) == len(processes)  # one process each
        assert os.getpid() not in processes.values()  # none in the service process
        assert system.host.pid_of(system.spawn(CounterActor).actor_id) not in processes.values()


def test_the_checkpoint_actor_of_a_sqlite_store_runs_on_the_service_node(
        ray_local: RunningRay, tmp_path: Path) -> None:
    with ActorSystem(store=f"sqlite:///{tmp_path / 's.db'}", config=SystemConfig(workers=1),
                     backend="ray") as system:
        system.start_durable()
        host = system.host
        assert host.nodes()["checkpoint"] == host.node_id  # type: ignore[attr-defined]


@pytest.mark.timeout(240)
def test_kill_9_of_a_worker_on_ray_finishes_the_execution_and_reruns_no_acknowledged_step(
        ray_local: RunningRay, tmp_path: Path) -> None:
    path = str(tmp_path / "effects")
    store = f"sqlite:///{tmp_path / 's.db'}"
    with ActorSystem(store=store, config=SystemConfig(workers=2), backend="ray") as system:
        run = _map_under_way(system, path, store)
        victim = system.processes()["worker-0"]
        os.kill(victim, signal.SIGKILL)
        acknowledged = durable_successes(store)
        assert run.result(timeout=180).values() == [expected_squares(i) for i in range(ITEMS)]
        # Ray restarted it; the supervisor saw the crash and the restart.
        wait_until(lambda: system.processes().get("worker-0") not in (None, victim), timeout=60)
    assert pid_gone(victim)
    assert len(acknowledged) < 3 * ITEMS, "the map finished before the kill; nothing to test"
    twice = _ran_again(path, acknowledged)
    assert twice == [], f"acknowledged steps that ran again: {twice}"


@pytest.mark.timeout(240)
def test_kill_9_of_the_checkpoint_process_on_ray_restarts_it_and_the_execution_finishes(
        ray_local: RunningRay, tmp_path: Path) -> None:
    path = str(tmp_path / "effects")
    store = f"sqlite:///{tmp_path / 's.db'}"
    with ActorSystem(store=store, config=SystemConfig(workers=2), backend="ray") as system:
        run = _map_under_way(system, path, store)
        checkpoint = system._durable.checkpoint  # type: ignore[union-attr]
        victim = system.processes()["checkpoint"]
        os.kill(victim, signal.SIGKILL)
        assert run.result(timeout=180).values() == [expected_squares(i) for i in range(ITEMS)]
        # Ray restarted it; the supervisor saw the crash and the restart.
        wait_until(lambda: system.processes().get("checkpoint") not in (None, victim),
                   timeout=60)
        assert system.host.state_of(checkpoint.actor_id) is ChildState.RUNNING


def test_a_spawned_actor_without_a_restart_policy_is_dead_after_kill_9(
        ray_local: RunningRay) -> None:
    with ActorSystem(backend="ray") as system:
        ref = system.spawn(CounterActor, name="counter")
        os.kill(system.processes()["counter"], signal.SIGKILL)
        wait_until(lambda: system.host.state_of(ref.actor_id) is ChildState.DEAD, timeout=30)
        assert not ref.is_alive()
        assert "counter" not in system.processes()


@pytest.mark.timeout(300)
def test_a_map_of_cpu_bound_branches_runs_on_both_nodes_of_a_two_node_cluster(
        ray_cluster: RunningRay, tmp_path: Path) -> None:
    with ActorSystem(store=f"sqlite:///{tmp_path / 's.db'}", config=SystemConfig(workers=2),
                     backend="ray") as system:
        placed = system.map(WhereItRan, [200_000] * 6).result(timeout=240).values()
        workers = {name: node for name, node in system.host.nodes().items()  # type: ignore[attr-defined]
                   if name.startswith("worker-")}
    assert {node for node, _ in placed} == set(ray_cluster.node_ids)
    assert set(workers.values()) == set(ray_cluster.node_ids)  # one worker per node


@pytest.mark.timeout(300)
def test_a_node_lost_mid_map_its_branches_finish_on_the_other_node(
        ray_cluster: RunningRay, ray_session: TrackedRay, tmp_path: Path) -> None:
    path = str(tmp_path / "effects")
    store = f"sqlite:///{tmp_path / 's.db'}"
    with ActorSystem(store=store, config=SystemConfig(workers=2), backend="ray") as system:
        system.start_durable()
        host = system.host
        on_other_node = [name for name, node in host.nodes().items()  # type: ignore[attr-defined]
                         if name.startswith("worker-") and node != host.node_id]  # type: ignore[attr-defined]
        assert on_other_node, f"no worker on the second node: {host.nodes()}, {host.node_id}"  # type: ignore[attr-defined]
        run = _map_under_way(system, path, store)
        ray_session.lose_node()
        acknowledged = durable_successes(store)
        assert run.result(timeout=240).values() == [expected_squares(i) for i in range(ITEMS)]
    assert len(acknowledged) < 3 * ITEMS, "the map finished before the node was lost"
    assert _ran_again(path, acknowledged) == []
