"""The process host on its own: spawn, hooks by actor id, stop order, hosting by class hooks.

A ``ProcessHost`` without any durable layer on it: what ``runtime.durable`` (or a
second backend) builds on is its public methods and ``ProcessHooks``.
"""

from __future__ import annotations

import os
import pickle
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from runtime import RestartPolicy, SystemConfig
from runtime.processes import ChildState, ProcessExit, ProcessHooks, ProcessHost
from runtime.processes._host import hosted_class

from actors_for_tests import Counter, FailOnTell
from conftest import wait_until

pytestmark = pytest.mark.timeout(120)


class StopStamp(pykka.ThreadingActor):
    """Appends its label to a file as it stops: the order of the lines is the stop order."""

    def __init__(self, path: str, label: str) -> None:
        super().__init__()
        self.path = path
        self.label = label

    def on_stop(self) -> None:
        with open(self.path, "a") as f:
            f.write(f"{self.label}\n")


class Told(ProcessHooks):
    """Records every hook call as (hook, actor id or rank)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_crash(self, actor_id: str) -> None:
        self.calls.append(("crash", actor_id))

    def on_ready(self, actor_id: str) -> None:
        self.calls.append(("ready", actor_id))

    def on_give_up(self, actor_id: str, why: str) -> None:
        self.calls.append(("give_up", actor_id))
        self.why = why

    def before_stop_rank(self, rank: int, deadline: float) -> None:
        self.calls.append(("rank", rank))


@pytest.fixture
def host() -> Iterator[ProcessHost]:
    host = ProcessHost(f"sys-host-{uuid.uuid4().hex[:8]}", SystemConfig())
    try:
        yield host
    finally:
        host.stop_children(time.monotonic() + 10, 10.0)
        host.kill_remaining()
        host.close()


def test_processes_stop_by_ascending_rank_each_told_to_the_hooks_first(
        host: ProcessHost, tmp_path: Path) -> None:
    stamps = str(tmp_path / "stops")
    told = Told()
    host.add_hooks(told)
    for rank in (2, 1, 0):  # spawned in the reverse of the stop order
        host.spawn(StopStamp, (stamps, f"rank-{rank}"), name=f"r{rank}", stop_rank=rank)
    host.stop_children(time.monotonic() + 30, 30.0)
    assert Path(stamps).read_text().split() == ["rank-0", "rank-1", "rank-2"]
    assert [call for call in told.calls if call[0] == "rank"] == [
        ("rank", 0), ("rank", 1), ("rank", 2)]


def test_a_crash_is_told_by_actor_id_and_so_is_the_restarted_process_being_ready(
        host: ProcessHost) -> None:
    told = Told()
    host.add_hooks(told)
    ref = host.spawn(Counter, name="counter", restart=RestartPolicy(backoff=0.01))
    old = host.pid_of(ref.actor_id)
    assert old is not None
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: ("ready", ref.actor_id) in told.calls, timeout=30)
    assert told.calls[:2] == [("crash", ref.actor_id), ("ready", ref.actor_id)]
    assert host.pid_of(ref.actor_id) not in (None, old)
    assert host.state_of(ref.actor_id) is ChildState.RUNNING


def test_a_crash_without_a_restart_policy_is_given_up_and_says_how_it_ended(
        host: ProcessHost) -> None:
    told = Told()
    host.add_hooks(told)
    ref = host.spawn(Counter, name="counter")
    pid = host.pid_of(ref.actor_id)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: ("give_up", ref.actor_id) in told.calls, timeout=30)
    assert "SIGKILL" in told.why
    assert host.state_of(ref.actor_id) is ChildState.DEAD
    ended = host.exit_of(ref.actor_id)
    assert ended is not None and ended.signal is signal.SIGKILL and str(ended) == "SIGKILL"
    assert "counter" not in host.processes()


def _listed(host: ProcessHost, actor_id: str) -> bool:
    return any(getattr(r, "actor_id", None) == actor_id
               and getattr(r, "system_id", None) == host.system_id
               for r in pykka.ActorRegistry.get_all())


def test_only_registered_spawns_are_listed_in_the_registry(host: ProcessHost) -> None:
    listed = host.spawn(Counter, name="listed")
    unlisted = host.spawn(Counter, name="framework", registered=False)
    wait_until(lambda: _listed(host, listed.actor_id), timeout=10)
    assert not _listed(host, unlisted.actor_id)


def test_a_hosted_actor_is_an_instance_of_one_subclass_per_class_not_a_patched_instance(
        host: ProcessHost) -> None:
    first = host.host_here("here-1", Counter)
    second = host.host_here("here-2", Counter)
    try:
        assert type(first._actor) is type(second._actor) is hosted_class(Counter)
        assert not {"on_stop", "on_failure", "_actor_loop"} & set(vars(first._actor))
        assert first.pykka_ref is not None and first.pykka_ref.ask(2, timeout=10) == 2
    finally:
        for hosted in (first, second):
            assert hosted.pykka_ref is not None
            hosted.pykka_ref.stop(timeout=10)
    for hosted in (first, second):
        hosted.wait_stopped()
        assert hosted.finished.is_set() and hosted.loop_ended.is_set() and not hosted.failed


def test_a_hosted_actor_that_fails_is_known_as_failed_after_its_own_on_failure_ran(
        host: ProcessHost, tmp_path: Path) -> None:
    hosted = host.host_here("fails", FailOnTell, (str(tmp_path),))
    assert hosted.pykka_ref is not None
    hosted.pykka_ref.tell("fail")
    hosted.wait_stopped()
    assert hosted.failed
    assert "told to fail" in next(tmp_path.glob("on_failure-*")).read_text()
    assert hosted.stopped.done()


def test_an_exit_says_how_a_process_ended_for_people_and_for_code() -> None:
    assert str(ProcessExit(3)) == "exit code 3" and ProcessExit(3).signal is None
    assert str(ProcessExit(-9, before_ready=True)).startswith("SIGKILL before it was ready")
    failed = ProcessExit(4, boot_error=PermissionError("read-only store"))
    assert str(failed) == "its start failed with PermissionError: read-only store"
    assert str(pickle.loads(pickle.dumps(failed))) == str(failed)


def test_a_running_process_handle_is_alive_without_an_exit_until_killed(
        host: ProcessHost) -> None:
    ref = host.spawn(Counter, name="counter")
    handle = host._supervisor.children[ref.actor_id].process  # the local ProcessHandle
    assert handle.alive and handle.exit is None
    handle.kill()
    wait_until(lambda: not handle.alive, timeout=30)
    assert handle.exit is not None and handle.exit.signal is signal.SIGKILL
