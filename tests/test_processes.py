"""``system.processes()`` and the process titles: every process of a system, by name."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from runtime import ActorSystem, RestartPolicy, SystemConfig

from actors_for_tests import Counter
from branches_for_tests import Answer
from conftest import wait_until

pytestmark = pytest.mark.timeout(120)


def test_a_system_used_only_for_spawn_lists_its_spawned_actors(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter")
    assert system.processes() == {"counter": ref.ask("pid", timeout=10)}


def test_framework_processes_appear_once_the_durable_services_run(tmp_path: Path) -> None:
    config = SystemConfig(workers=2)
    with ActorSystem(store=f"sqlite:///{tmp_path / 'state.db'}", config=config) as system:
        system.spawn(Counter, name="counter")
        system.map(Answer, [1]).result(timeout=60)
        processes = system.processes()
        assert set(processes) == {"counter", "checkpoint", "scheduler", "digest", "worker-0",
                                  "worker-1"}
        ours = {p.pid for p in psutil.Process().children(recursive=True)}
        assert set(processes.values()) <= ours
        assert len(set(processes.values())) == len(processes)


def test_a_restarted_process_is_listed_with_its_new_pid(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter", restart=RestartPolicy(backoff=0.01))
    old = system.processes()["counter"]
    os.kill(old, signal.SIGKILL)
    new = wait_until(lambda: system.processes().get("counter") not in (None, old) and
                     system.processes()["counter"], timeout=30)
    assert ref.ask("pid", timeout=10) == new


def test_a_stopped_actor_is_no_longer_listed(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter")
    ref.stop(timeout=10)
    wait_until(lambda: "counter" not in system.processes(), timeout=10)


def test_process_titles_name_each_process_as_processes_does(tmp_path: Path) -> None:
    with ActorSystem(store=f"sqlite:///{tmp_path / 'state.db'}",
                     config=SystemConfig(workers=1)) as system:
        system.spawn(Counter, name="counter")
        system.map(Answer, [1]).result(timeout=60)
        titles = {name: " ".join(psutil.Process(pid).cmdline()).strip()
                  for name, pid in system.processes().items()}
    assert titles == {name: f"durable-actors: {name}" for name in titles}
    assert set(titles) == {"counter", "checkpoint", "scheduler", "digest", "worker-0"}


def test_the_service_process_keeps_its_own_title(system: ActorSystem) -> None:
    before = psutil.Process().cmdline()
    system.spawn(Counter, name="counter")
    assert psutil.Process().cmdline() == before
