"""The pytest plugin: its fixtures, as a user's test suite sees them."""

from __future__ import annotations

import os
import re
import signal
from importlib.metadata import entry_points
from pathlib import Path

import pykka
import pytest

from actors.checkpoint import CheckpointActor
from actors.clock import FakeClock
from actors.messages import BranchStatus, Checkpoint
from actors.store import MemoryStore
from actors.testing import InlineHost
from runtime import ActorSystem, SystemConfig
from runtime.testing import TraceEvents

from actors_for_tests import Counter, Logger
from branch_kinds import Kind
from branches_for_tests import Waits

pytest_plugins = ["pytester"]


def test_the_plugin_is_registered_through_the_pytest11_entry_point() -> None:
    plugins = {e.name: e.value for e in entry_points(group="pytest11")}
    assert plugins.get("durable_actors") == "runtime.pytest_plugin"


@pytest.mark.timeout(60)
def test_actor_system_is_started_on_a_store_and_trace_in_tmp_path(
    actor_system: ActorSystem, tmp_path: Path
) -> None:
    ref = actor_system.spawn(Counter, 1)
    assert ref.ask(2, timeout=10) == 3
    assert actor_system.store_url == f"sqlite:///{tmp_path / 'state.db'}"
    assert actor_system.config.trace_path == str(tmp_path / "trace.jsonl")


@pytest.mark.timeout(60)
def test_trace_events_waits_for_an_event_written_by_another_process(
    actor_system: ActorSystem, trace_events: TraceEvents
) -> None:
    ref = actor_system.spawn(Logger, name="logger")
    ref.proxy().log("hello")  # not waited for: the trace is
    event = trace_events.wait_for("test.logged", what="hello", timeout=10)
    assert event["role"] == "actor:logger"
    assert event["pid"] != os.getpid()


@pytest.mark.timeout(60)
def test_trace_events_fails_at_its_deadline_naming_what_it_waited_for(
    trace_events: TraceEvents,
) -> None:
    with pytest.raises(AssertionError, match=re.escape("'never.logged' what='x'")):
        trace_events.wait_for("never.logged", what="x", timeout=0.2)


@pytest.mark.timeout(60)
def test_trace_events_counts_matching_events_across_processes(
    actor_system: ActorSystem, trace_events: TraceEvents
) -> None:
    loggers = [actor_system.spawn(Logger, name=f"logger-{i}") for i in range(2)]
    for ref in loggers:
        ref.proxy().log("fan")
    found = trace_events.wait_for_count(2, "test.logged", what="fan", timeout=10)
    assert {e["actor"] for e in found} == {"logger-0", "logger-1"}


def test_fake_clock_moves_only_when_advanced(fake_clock: FakeClock) -> None:
    start = fake_clock.time()
    assert fake_clock.time() == start
    fake_clock.advance(30)
    assert fake_clock.time() == start + 30


def test_inline_host_runs_a_branch_on_the_fake_clock(
    inline_host: InlineHost, fake_clock: FakeClock
) -> None:
    assert inline_host.clock is fake_clock
    inline_host.start(Kind.SYNC(Waits), ("done", 30.0), branch_id="b")
    inline_host.run_until_idle()
    assert inline_host.outcomes["b"].status is BranchStatus.SUSPENDED
    inline_host.advance(30)
    assert inline_host.outcomes["b"].status is BranchStatus.SUCCEEDED
    assert inline_host.outcomes["b"].result == "done"


def test_fake_clock_drives_a_pure_checkpoint_actor(fake_clock: FakeClock) -> None:
    store = MemoryStore()
    ref = CheckpointActor.start(store=store, clock=fake_clock)
    try:
        reply = pykka.ThreadingFuture[object]()
        ref.tell(Checkpoint("b-1", None, True, reply))
        assert reply.get(timeout=10) is not None  # the branch's (empty) log
        assert store.calls == 1
    finally:
        ref.stop(timeout=10)


# -- the plugin seen from a user's project (a separate pytest run) ------------------------

USER_TESTS = '''
import pytest
from runtime import SystemConfig

@pytest.fixture
def actor_system_config(tmp_path):
    return SystemConfig(workers=1, trace_path=str(tmp_path / "mine.jsonl"))

@pytest.fixture
def actor_system_exit_timeout():
    return 0.5

def test_uses_my_config(actor_system, trace_events):
    assert trace_events.path.name == "mine.jsonl"
    trace_events.wait_for("system.started", timeout=10)

def test_leaves_a_process_behind(actor_system, tmp_path):
    import subprocess
    sleeper = subprocess.Popen(["sleep", "30"])
    (tmp_path.parent / "sleeper.pid").write_text(str(sleeper.pid))
'''


@pytest.mark.timeout(120)
def test_a_user_suite_gets_the_fixtures_and_a_leftover_process_fails_its_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    try:
        result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    finally:
        for pid_file in Path(pytester.path).rglob("sleeper.pid"):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*processes started during the test outlived actor_system*"])


def test_the_config_fixture_can_be_overridden(actor_system_config: SystemConfig) -> None:
    # tests/conftest.py overrides it (send_timeout), as a user's conftest would
    assert actor_system_config.send_timeout == 5.0
