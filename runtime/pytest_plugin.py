"""The durable-actors pytest plugin: fixtures for testing actors and branches.

Installed with durable-actors and loaded by pytest through the ``pytest11``
entry point; nothing to import or configure.

* ``actor_system`` — a started ``ActorSystem`` on a SQLite store in the test's
  ``tmp_path``, tracing to ``tmp_path / "trace.jsonl"``; on teardown it is shut
  down and the test fails if any process it started is still running.
* ``actor_system_store`` — the store URL of ``actor_system`` (a SQLite file in
  ``tmp_path``); override it in your ``conftest.py`` to run on another store,
  e.g. a PostgreSQL database.
* ``actor_system_config`` — the ``SystemConfig`` that ``actor_system`` uses
  (one worker, a trace file, blobs in ``tmp_path / "blobs"``); override it in
  your ``conftest.py`` to change it; ``actor_system_exit_timeout`` (10 s) is how
  long its processes may take to exit.
* ``trace_events`` — a ``runtime.testing.TraceEvents`` over ``actor_system``'s
  trace: assert on the events of every process, waiting with a deadline.
* ``fake_clock`` — an ``actors.clock.FakeClock`` for the actors that take a
  clock (``CheckpointActor.start(store=MemoryStore(), clock=fake_clock)``) and
  for ``inline_host``; timers move only when the test calls ``advance``.
* ``inline_host`` — an ``actors.branches.InlineHost`` on ``fake_clock``: runs a
  branch's ``run`` in the test's own process over an in-memory store.

    def test_resize_waits_then_succeeds(inline_host):
        inline_host.start(Resize, "a.png", branch_id="b")
        inline_host.run_until_idle()                      # runs until ctx.wait suspends it
        inline_host.advance(30)                           # moves fake_clock: the timer fires
        assert inline_host.outcomes["b"].status is BranchStatus.SUCCEEDED

    def test_the_step_runs_on_a_worker(actor_system, trace_events):
        actor_system.map(Resize, ["a.png"]).result(timeout=30)
        assert trace_events.wait_for("step.succeeded", step="resize")["role"].startswith(
            "actor:worker")
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.branches._inline_host import InlineHost
from actors.clock import FakeClock
from runtime.config import SystemConfig
from runtime.system import ActorSystem
from runtime.testing import TraceEvents, descendant_pids, wait_for_exit

TRACE_FILE = "trace.jsonl"
STORE_FILE = "state.db"
BLOB_DIR = "blobs"


@pytest.fixture
def actor_system_config(tmp_path: Path) -> SystemConfig:
    """The configuration of ``actor_system``: one worker, tracing to ``tmp_path``, its
    blobs in ``tmp_path / "blobs"`` whatever the store."""
    return SystemConfig(workers=1, trace_path=str(tmp_path / TRACE_FILE),
                        blob_dir=str(tmp_path / BLOB_DIR))


@pytest.fixture
def actor_system_store(tmp_path: Path) -> str:
    """The store URL of ``actor_system``: ``sqlite:///`` + ``tmp_path / "state.db"``."""
    return f"sqlite:///{tmp_path / STORE_FILE}"


@pytest.fixture
def actor_system_exit_timeout() -> float:
    """Seconds ``actor_system``'s processes get to exit after its shutdown before the test fails."""
    return 10.0


@pytest.fixture
def actor_system(actor_system_store: str, actor_system_config: SystemConfig,
                 actor_system_exit_timeout: float) -> Iterator[ActorSystem]:
    """A started system on ``actor_system_store``; no process of it outlives the test."""
    try:
        before = descendant_pids()
    except ImportError:  # without psutil, check only the processes the system spawned itself
        before = None
    system = ActorSystem(store=actor_system_store, config=actor_system_config)
    try:
        yield system
    finally:
        started = (descendant_pids() - before if before is not None
                   else system.host.pids())
        system.shutdown()
    leftover = wait_for_exit(started, actor_system_exit_timeout) if before is not None else [
        str(pid) for pid in system.host.pids(running_only=True)
    ]
    if leftover:
        pytest.fail(f"processes started during the test outlived actor_system: {leftover}",
                    pytrace=False)


@pytest.fixture
def trace_events(actor_system: ActorSystem) -> TraceEvents:
    """The trace of ``actor_system`` (every process), e.g. ``trace_events.wait_for("x")``."""
    path = actor_system.config.trace_path
    if path is None:
        raise pytest.UsageError(
            "trace_events needs a trace: return a SystemConfig with trace_path=... from "
            "your actor_system_config fixture"
        )
    return TraceEvents(path)


@pytest.fixture
def fake_clock() -> FakeClock:
    """A clock that moves only on ``fake_clock.advance(seconds)``."""
    return FakeClock()


@pytest.fixture
def inline_host(fake_clock: FakeClock) -> InlineHost:
    """Runs branches in this process over a ``MemoryStore``, on ``fake_clock``."""
    return InlineHost(clock=fake_clock)
