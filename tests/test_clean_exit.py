"""A system ends cleanly: scripts exit without shutdown(), and shutdown() ends everything.

Scripts run as real service processes (``python script.py``); their children are
found by the pids the script printed, since a script killed by a failing test
takes its children down through their orphan watch, not through us.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from actors.blobs import current_backend
from actors.execution import ExecutionActor
from runtime import ActorSystem, RestartPolicy, SystemConfig
from runtime.testing import TraceEvents

from actors_for_tests import Counter
from branches_for_tests import Squares, effects
from conftest import children_of, pid_gone, wait_until

pytestmark = pytest.mark.timeout(120)

TESTS = Path(__file__).parent


def run_script(tmp_path: Path, body: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "service.py"
    script.write_text(textwrap.dedent(body))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get(
        "PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()  # its children exit with it (their orphan watch)
        out, err = process.communicate()
        raise AssertionError(f"the script did not exit within {timeout}s; it printed {out!r}"
                             f" and {err[-2000:]!r}") from None
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


SCRIPT_WITHOUT_SHUTDOWN = """
    import json
    from runtime import ActorSystem, SystemConfig
    from branches_for_tests import Answer

    system = ActorSystem(store="sqlite:///state.db",
                         config=SystemConfig(workers=1, trace_path="trace.jsonl"))
    print(json.dumps(system.map(Answer, [1, 2]).result(timeout=60).values()))
    print(json.dumps(system.processes()), flush=True)
"""


def test_a_script_without_shutdown_exits_when_its_main_thread_ends(tmp_path: Path) -> None:
    done = run_script(tmp_path, SCRIPT_WITHOUT_SHUTDOWN)
    assert done.returncode == 0, done.stderr
    result, processes = done.stdout.splitlines()
    assert json.loads(result) == [["answer", 1], ["answer", 2]]
    assert set(json.loads(processes)) == {"checkpoint", "scheduler", "digest", "worker-0"}
    wait_until(lambda: all(pid_gone(pid) for pid in json.loads(processes).values()), timeout=10)


def test_a_script_without_shutdown_shuts_its_system_down_cleanly(tmp_path: Path) -> None:
    done = run_script(tmp_path, SCRIPT_WITHOUT_SHUTDOWN)
    assert done.returncode == 0, done.stderr
    trace = TraceEvents(tmp_path / "trace.jsonl")
    assert len(trace.named("system.stopped")) == 1
    assert trace.named("actor.killed") == []  # every actor stopped when asked
    assert trace.named("process.orphaned") == []  # none was left to find its service gone


def test_a_script_that_fails_shuts_its_system_down(tmp_path: Path) -> None:
    done = run_script(tmp_path, """
        import json
        from runtime import ActorSystem, SystemConfig
        from actors_for_tests import Counter

        system = ActorSystem(config=SystemConfig(workers=1, trace_path="trace.jsonl"))
        system.spawn(Counter, name="counter")
        print(json.dumps(system.processes()), flush=True)
        raise RuntimeError("the service gave up")
    """)
    assert done.returncode == 1 and "the service gave up" in done.stderr
    pids = json.loads(done.stdout)
    wait_until(lambda: all(pid_gone(pid) for pid in pids.values()), timeout=10)
    assert len(TraceEvents(tmp_path / "trace.jsonl").named("system.stopped")) == 1


def system_on(tmp_path: Path, workers: int = 1) -> ActorSystem:
    config = SystemConfig(workers=workers, trace_path=str(tmp_path / "trace.jsonl"))
    return ActorSystem(store=f"sqlite:///{tmp_path / 'state.db'}", config=config)


def test_shutdown_ends_processes_stopped_by_sigstop(tmp_path: Path) -> None:
    path = str(tmp_path / "effects")
    system = system_on(tmp_path)
    system.spawn(Counter, name="counter")
    system.map(Squares, [(i, path, 0.05) for i in range(8)], max_concurrency=2)
    wait_until(lambda: len(effects(path)) >= 2, timeout=60)
    pids = system.processes()
    for name in ("counter", "checkpoint", "worker-0"):
        os.kill(pids[name], signal.SIGSTOP)
    system.shutdown(timeout=1)
    wait_until(lambda: all(pid_gone(pid) for pid in pids.values()), timeout=15)
    assert system.processes() == {}


def test_shutdown_ends_a_process_restarted_while_the_system_stops(tmp_path: Path) -> None:
    system = system_on(tmp_path)
    slow = system.spawn(Counter, name="slow")
    system.spawn(Counter, name="flaky", restart=RestartPolicy(backoff=0.2))
    pids = system.processes()
    os.kill(pids["slow"], signal.SIGSTOP)  # the orderly stop waits for it: the whole budget
    os.kill(pids["flaky"], signal.SIGKILL)
    wait_until(lambda: "flaky" not in system.processes(), timeout=10)  # restart pending
    system.shutdown(timeout=3)
    wait_until(lambda: all(pid_gone(pid) for pid in pids.values()), timeout=15)
    wait_until(lambda: titled(["durable-actors: slow", "durable-actors: flaky"]) == [],
               timeout=15)  # the restarted one too, whatever its pid
    assert system.processes() == {}
    assert not slow.is_alive()


def titled(titles: list[str]) -> list[int]:
    """Our descendants whose process title is one of ``titles``."""
    found = []
    for process in children_of(os.getpid()):
        with contextlib.suppress(psutil.Error):
            if " ".join(process.cmdline()).strip() in titles:
                found.append(process.pid)
    return found


def test_shutdown_ends_everything_when_the_coordinator_does_not_stop_in_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    stuck_on_stop = ExecutionActor.on_stop

    def on_stop(self: ExecutionActor) -> None:
        release.wait(60)  # a coordinator drowning in messages, or stuck in a store call
        stuck_on_stop(self)

    monkeypatch.setattr(ExecutionActor, "on_stop", on_stop)
    system = system_on(tmp_path)
    try:
        system.map(Squares, [(i, str(tmp_path / "effects"), 0.0) for i in range(3)]).result(60)
        pids = system.processes()
        started = time.monotonic()
        system.shutdown(timeout=2)  # must not raise
        assert time.monotonic() - started < 30
        wait_until(lambda: all(pid_gone(pid) for pid in pids.values()), timeout=15)
        assert system.processes() == {}
        assert system.closed
        failed = TraceEvents(tmp_path / "trace.jsonl").named("system.shutdown_step_failed")
        assert [e["step"] for e in failed] == ["close the durable services"]
        assert current_backend() is None  # the service's Ref reader was uninstalled all the same
    finally:
        release.set()
