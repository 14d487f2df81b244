"""Lifecycle: pykka's stop-all on a BaseException, and pykka's own log records."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pykka

from runtime import ActorSystem, RestartPolicy
from runtime.testing import TraceEvents, wait_until

from .semantics_actors import Counter, Exits, FailsWhenTold, LogsItsOwnWay, Peer


def test_a_base_exception_in_one_actor_stops_every_spawned_actor(
    system: ActorSystem, tmp_path: Path,
) -> None:
    others = [system.spawn(Counter, name="counter"), system.spawn(Peer, name="peer")]
    exits = system.spawn(Exits, str(tmp_path), name="exits")
    exits.proxy().exit.defer()
    wait_until(lambda: not any(ref.is_alive() for ref in [*others, exits]), timeout=20)
    assert pykka.ActorRegistry.get_all() == []


def test_an_actor_stopped_by_a_base_exception_runs_on_stop(
    system: ActorSystem, tmp_path: Path,
) -> None:
    exits = system.spawn(Exits, str(tmp_path), name="exits")
    exits.proxy().exit.defer()
    wait_until((tmp_path / "exits-on_stop").exists, timeout=20)


def test_an_actor_stopped_by_a_base_exception_is_not_restarted(
    system: ActorSystem, tmp_path: Path, trace_events: TraceEvents,
) -> None:
    exits = system.spawn(Exits, str(tmp_path), name="exits",
                         restart=RestartPolicy(max_restarts=3, backoff=0.01))
    exits.proxy().exit.defer()
    assert exits.actor_stopped.wait(timeout=20)
    trace_events.wait_for("actor.exited", name="exits", timeout=20)
    assert trace_events.named("actor.restarted", name="exits") == []
    assert not exits.is_alive()


def test_the_traceback_of_an_unhandled_exception_reaches_the_trace(
    system: ActorSystem, trace_events: TraceEvents,
) -> None:
    ref = system.spawn(FailsWhenTold, name="fails")
    ref.tell("fail")
    event = trace_events.wait_for("pykka.log", level="error", timeout=20)
    assert event["role"] == "actor:fails"
    assert "Unhandled exception" in event["message"]
    assert "explode" in event["exception"] and "told to fail" in event["exception"]


def test_a_pykka_warning_in_an_actor_process_reaches_the_trace(
    system: ActorSystem, trace_events: TraceEvents,
) -> None:
    ref = system.spawn(Peer, name="peer")
    ref.tell("a message Peer has no handler for")  # pykka warns of an unexpected message
    event = trace_events.wait_for("pykka.log", level="warning", timeout=20)
    assert "Unexpected message" in event["message"] and event["role"] == "actor:peer"


def test_pykka_records_reach_stderr_without_a_trace_file(tmp_path: Path) -> None:
    script = tmp_path / "service.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parents[1])!r})\n"
        "from runtime import ActorSystem, SystemConfig\n"
        "from runtime.testing import wait_until\n"
        "from pykka_semantics.semantics_actors import FailsWhenTold\n"
        "with ActorSystem(config=SystemConfig(workers=1)) as system:\n"
        "    ref = system.spawn(FailsWhenTold, name='fails')\n"
        "    ref.tell('fail')\n"
        "    wait_until(lambda: not ref.is_alive(), timeout=20)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, done.stderr
    assert "pykka.log" in done.stderr and "told to fail" in done.stderr
    assert "explode" in done.stderr  # the traceback, not just the message


def test_the_application_logging_in_an_actor_process_is_left_as_it_set_it(
    system: ActorSystem, tmp_path: Path, trace_events: TraceEvents,
) -> None:
    log_path = tmp_path / "app.log"
    ref = system.spawn(LogsItsOwnWay, str(log_path), name="app")
    setup = ref.proxy().logging_setup().get(timeout=10)
    assert setup["pykka_level"] == logging.NOTSET  # no level set behind its back
    assert setup["root_handlers"] == ["FileHandler"]  # only the application's own
    ref.tell("fail")
    trace_events.wait_for("pykka.log", level="error", timeout=20)
    wait_until(lambda: "failed under the application's logging" in log_path.read_text(),
               timeout=10)
