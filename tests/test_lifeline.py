"""Watching processes by pid (``runtime.processes``), on real processes.

The pidfd path is what Linux uses; the fallback path (no ``os.pidfd_open``) is
what other systems use, and is tested here by taking ``pidfd_open`` away.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import multiprocess
import pytest

from runtime._compat import multiprocess as mp_compat
from runtime.processes import _lifeline as lifeline

from conftest import pid_gone, wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def no_helpers_left() -> Iterator[None]:
    """These tests start multiprocess's helpers without a system: stop them after each."""
    yield
    mp_compat.stop_helpers_now()


@pytest.fixture(params=["pidfd", "fallback"])
def watch_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "fallback":
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    return str(request.param)


@pytest.fixture
def grandchild() -> Iterator[int]:
    """The pid of a process that is not our child (its parent, a shell, reaps it)."""
    shell = subprocess.Popen(["sh", "-c", "sleep 60 & echo $!; wait"], stdout=subprocess.PIPE,
                             text=True)
    assert shell.stdout is not None
    pid = int(shell.stdout.readline())
    try:
        yield pid
    finally:
        if not pid_gone(pid):
            os.kill(pid, signal.SIGKILL)
        shell.wait(timeout=10)
        shell.stdout.close()


def test_await_exit_returns_once_a_process_that_is_not_our_child_exits(
        watch_kind: str, grandchild: int) -> None:
    returned = threading.Event()
    threading.Thread(target=lambda: (lifeline.await_exit(grandchild), returned.set()),
                     daemon=True).start()
    assert not returned.wait(0.3)
    os.kill(grandchild, signal.SIGKILL)
    assert returned.wait(10), f"await_exit did not notice the exit ({watch_kind})"


def test_await_exit_returns_at_once_for_a_process_already_gone(watch_kind: str) -> None:
    done = subprocess.Popen(["true"])
    done.wait(timeout=10)
    started = time.monotonic()
    lifeline.await_exit(done.pid)
    assert time.monotonic() - started < 5


def _sleep_forever() -> None:
    threading.Event().wait()


def _exit_with(code: int) -> None:
    os._exit(code)


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_a_child_process_reports_its_exit_code(method: str, watch_kind: str) -> None:
    process = multiprocess.get_context(method).Process(target=_exit_with, args=(7,))
    process.start()
    child = lifeline.ChildProcess(process)
    child.join(timeout=30)
    assert child.exitcode == 7
    assert not child.is_alive()


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_a_killed_child_process_reports_the_signal(method: str, watch_kind: str) -> None:
    process = multiprocess.get_context(method).Process(target=_sleep_forever)
    process.start()
    child = lifeline.ChildProcess(process)
    assert child.is_alive() and child.exitcode is None
    child.kill()
    child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL


def test_a_child_of_a_killed_forkserver_is_still_seen_running_and_can_be_killed() -> None:
    process = multiprocess.get_context("forkserver").Process(target=_sleep_forever)
    process.start()
    child = lifeline.ChildProcess(process)
    server = mp_compat.forkserver_pid()  # the helper that forked it
    assert server is not None
    os.kill(server, signal.SIGKILL)
    wait_until(lambda: pid_gone(server), timeout=10)
    assert child.is_alive() and child.exitcode is None  # multiprocess alone would say 255
    child.kill()
    child.join(timeout=30)
    assert not child.is_alive()
    assert child.exitcode == lifeline.UNKNOWN_EXIT  # the forkserver that knew the code is gone
    wait_until(lambda: pid_gone(child.pid), timeout=10)


SERVICE = """
import time
from runtime import ActorSystem, SystemConfig
from actors_for_tests import Counter

system = ActorSystem(config=SystemConfig(workers=1))
system.spawn(Counter, name="counter")
print(system.processes()["counter"], flush=True)
time.sleep(600)
"""


def test_actors_exit_with_their_service_even_when_nobody_reads_their_stderr(
        tmp_path: Path) -> None:
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    service = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL)
    assert service.stdout is not None and service.stderr is not None
    try:
        actor = int(service.stdout.readline())
        service.stdout.close()
        service.stderr.close()  # the actor's "orphaned" warning now meets a broken pipe
        service.kill()
        service.wait(timeout=10)
        wait_until(lambda: pid_gone(actor), timeout=15)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait(timeout=10)
