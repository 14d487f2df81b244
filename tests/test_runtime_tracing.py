"""structlog traces from every process, with context that travels with messages."""

from __future__ import annotations

import json
from pathlib import Path

from runtime import ActorSystem, SystemConfig, bound, get_all, read_trace

from actors_for_tests import Logger
from conftest import wait_until


def events_named(path: Path, name: str) -> list[dict[str, object]]:
    return [e for e in read_trace(path) if e.get("event") == name]


def test_every_event_carries_system_pid_role_and_actor(system: ActorSystem, tmp_path: Path) -> None:
    ref = system.spawn(Logger, name="logger")
    ref.proxy().log("hello").get(timeout=10)
    pid = system._supervisor.children[ref.actor_id].process.pid
    trace = tmp_path / "trace.jsonl"
    (event,) = wait_until(lambda: events_named(trace, "test.logged"))
    assert event["system"] == system.id
    assert event["role"] == "actor:logger"
    assert event["actor"] == "logger"
    assert event["pid"] == pid


def test_context_bound_in_the_sender_is_bound_in_the_receiver(
    system: ActorSystem, tmp_path: Path
) -> None:
    ref = system.spawn(Logger, name="logger")
    with bound(execution="nightly-1", branch="b-7"):
        ref.proxy().log("inside").get(timeout=10)
    ref.proxy().log("outside").get(timeout=10)
    events = {e["what"]: e for e in events_named(tmp_path / "trace.jsonl", "test.logged")}
    assert events["inside"]["execution"] == "nightly-1"
    assert events["inside"]["branch"] == "b-7"
    assert "execution" not in events["outside"]


def test_context_travels_across_two_hops(system: ActorSystem, tmp_path: Path) -> None:
    first = system.spawn(Logger, name="first")
    second = system.spawn(Logger, name="second")
    with bound(execution="relay-1"):
        first.proxy().forward(second, "two hops").get(timeout=10)
    (event,) = events_named(tmp_path / "trace.jsonl", "test.logged")
    assert event["actor"] == "second"
    assert event["execution"] == "relay-1"


def test_lines_from_many_processes_never_interleave(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    with ActorSystem(config=SystemConfig(workers=1, trace_path=str(trace))) as system:
        loggers = [system.spawn(Logger, name=f"logger-{i}") for i in range(4)]
        get_all([ref.proxy().log_many(500, 6000) for ref in loggers], timeout=60)
    lines = trace.read_text().splitlines()
    parsed = [json.loads(line) for line in lines]  # a torn line would not parse
    written = [e for e in parsed if e["event"] == "test.line"]
    assert len(written) == 4 * 500
    assert {e["actor"] for e in written} == {f"logger-{i}" for i in range(4)}
