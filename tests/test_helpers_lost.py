"""Losing multiprocess's helpers (the forkserver, the resource tracker) stops nothing.

The helpers are found the way an operator would: by their command line among
the children of this process, and killed with ``kill -9``.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import psutil
import pytest

from runtime import ActorRef, ActorSystem, RestartPolicy, SystemConfig
from runtime._compat.multiprocess import waits_on_the_forkserver
from runtime.testing import TraceEvents

from actors_for_tests import Counter
from branches_for_tests import Squares, effects, expected_squares
from conftest import pid_gone, wait_until

pytestmark = pytest.mark.timeout(180)

FORKSERVER = "multiprocess.forkserver"
RESOURCE_TRACKER = "multiprocess.resource_tracker"


def helper_pid(module: str) -> int:
    """The pid of the running helper whose command line runs ``module``."""
    for child in psutil.Process().children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and module in " ".join(child.cmdline()):
                return child.pid
        except psutil.NoSuchProcess:
            continue
    raise AssertionError(f"no {module} helper runs under this process")


def kill_helper(module: str) -> int:
    pid = helper_pid(module)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: pid_gone(pid), timeout=10)
    return pid


def system_on(tmp_path: Path, workers: int = 1) -> ActorSystem:
    tmp_path.mkdir(exist_ok=True)
    config = SystemConfig(workers=workers, trace_path=str(tmp_path / "trace.jsonl"))
    return ActorSystem(store=f"sqlite:///{tmp_path / 'state.db'}", config=config)


def assert_nothing_crashed(tmp_path: Path) -> None:
    trace = TraceEvents(tmp_path / "trace.jsonl")
    assert trace.named("actor.crashed") == []
    assert trace.named("process.orphaned") == []


def assert_all_gone(pids: dict[str, int]) -> None:
    # Children of a dead forkserver belong to init now: only the system can have ended them.
    wait_until(lambda: all(pid_gone(pid) for pid in pids.values()), timeout=15)


def test_spawned_actors_keep_serving_when_the_forkserver_is_killed(tmp_path: Path) -> None:
    with system_on(tmp_path) as system:
        ref = system.spawn(Counter, name="counter")
        before = ref.ask("pid", timeout=10)
        kill_helper(FORKSERVER)
        assert ref.ask(5, timeout=10) == 5
        assert ref.ask("pid", timeout=10) == before
        assert system.processes() == {"counter": before}
        assert_nothing_crashed(tmp_path)
        pids = system.processes()
    assert_all_gone(pids)


def test_spawns_after_the_forkserver_was_killed_start_a_new_one(tmp_path: Path) -> None:
    with system_on(tmp_path) as system:
        first = system.spawn(Counter, name="first")
        killed = kill_helper(FORKSERVER)
        second = system.spawn(Counter, 7, name="second")
        assert second.ask("count", timeout=10) == 7
        assert helper_pid(FORKSERVER) != killed
        assert first.ask("count", timeout=10) == 0
        pids = system.processes()
    assert_all_gone(pids)


def test_a_crashed_actor_is_restarted_after_the_forkserver_was_killed(tmp_path: Path) -> None:
    with system_on(tmp_path) as system:
        ref = system.spawn(Counter, name="counter", restart=RestartPolicy(backoff=0.01))
        old = ref.ask("pid", timeout=10)
        kill_helper(FORKSERVER)
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: system.processes().get("counter") not in (None, old), timeout=30)
        assert ref.ask("count", timeout=10) == 0
        assert ref.ask("pid", timeout=10) == system.processes()["counter"]
        pids = {**system.processes(), "old": old}
    assert_all_gone(pids)


def test_a_running_map_finishes_when_the_forkserver_is_killed(tmp_path: Path) -> None:
    path = str(tmp_path / "effects")
    with system_on(tmp_path, workers=2) as system:
        run = system.map(Squares, [(i, path, 0.05) for i in range(16)], max_concurrency=4)
        wait_until(lambda: len(effects(path)) >= 6, timeout=60)
        before = system.processes()
        kill_helper(FORKSERVER)
        assert run.result(timeout=90).values() == [expected_squares(i) for i in range(16)]
        assert system.processes() == before
        assert len(effects(path)) == 16 * 3  # no step ran twice: nobody was restarted
        assert_nothing_crashed(tmp_path)
        after = system.map(Squares, [(i, path, 0.0) for i in range(4)])
        assert after.result(timeout=60).values() == [expected_squares(i) for i in range(4)]
    assert_all_gone(before)


def test_a_system_started_after_the_forkserver_died_works(tmp_path: Path) -> None:
    path = str(tmp_path / "effects")
    with system_on(tmp_path / "a") as first:
        first.spawn(Counter, name="counter")
        kill_helper(FORKSERVER)
        with system_on(tmp_path / "b") as second:
            run = second.map(Squares, [(i, path, 0.0) for i in range(4)])
            assert run.result(timeout=60).values() == [expected_squares(i) for i in range(4)]
            pids = {**first.processes(), **second.processes()}
    assert_all_gone(pids)


def test_a_spawn_the_forkserver_dies_under_is_made_again_with_a_new_one(tmp_path: Path) -> None:
    with system_on(tmp_path) as system:
        system.spawn(Counter, name="first")  # the forkserver runs
        server = helper_pid(FORKSERVER)
        os.kill(server, signal.SIGSTOP)  # it takes the start's request but never answers
        spawned: dict[str, Any] = {}

        def spawn() -> None:
            try:
                spawned["ref"] = system.spawn(Counter, 4, name="second")
            except BaseException as exc:
                spawned["error"] = exc

        thread = threading.Thread(target=spawn)
        thread.start()
        try:
            wait_until(lambda: waits_on_the_forkserver(thread), timeout=20)
        finally:
            os.kill(server, signal.SIGKILL)
        thread.join(timeout=60)
        assert "error" not in spawned, repr(spawned.get("error"))
        second: ActorRef[Any] = spawned["ref"]
        assert second.ask("count", timeout=10) == 4
        assert helper_pid(FORKSERVER) != server
        pids = system.processes()
    assert_all_gone(pids)


@pytest.mark.filterwarnings("ignore:resource_tracker:UserWarning")  # "relaunching"
def test_a_running_map_finishes_when_the_resource_tracker_is_killed(tmp_path: Path) -> None:
    path = str(tmp_path / "effects")
    with system_on(tmp_path, workers=2) as system:
        run = system.map(Squares, [(i, path, 0.05) for i in range(16)], max_concurrency=4)
        wait_until(lambda: len(effects(path)) >= 6, timeout=60)
        before = system.processes()
        kill_helper(RESOURCE_TRACKER)
        assert run.result(timeout=90).values() == [expected_squares(i) for i in range(16)]
        assert system.processes() == before
        later = system.spawn(Counter, 3, name="later")
        assert later.ask("count", timeout=10) == 3
        assert_nothing_crashed(tmp_path)
        pids = system.processes()
    assert_all_gone(pids)
