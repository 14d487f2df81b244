"""structlog traces from every process, with context that travels with messages."""

from __future__ import annotations

import json
from pathlib import Path

from runtime import ActorSystem, SystemConfig, bound, get_all
from runtime.testing import TraceEvents

from actors_for_tests import Logger


def test_every_event_carries_system_pid_role_and_actor(
    system: ActorSystem, trace_events: TraceEvents
) -> None:
    ref = system.spawn(Logger, name="logger")
    ref.proxy().log("hello").get(timeout=10)
    pid = system.host.pid_of(ref.actor_id)
    event = trace_events.wait_for("test.logged")
    assert len(trace_events.named("test.logged")) == 1
    assert event["system"] == system.id
    assert event["role"] == "actor:logger"
    assert event["actor"] == "logger"
    assert event["pid"] == pid


def test_context_bound_in_the_sender_is_bound_in_the_receiver(
    system: ActorSystem, trace_events: TraceEvents
) -> None:
    ref = system.spawn(Logger, name="logger")
    with bound(execution="nightly-1", branch="b-7"):
        ref.proxy().log("inside").get(timeout=10)
    ref.proxy().log("outside").get(timeout=10)
    events = {e["what"]: e for e in trace_events.wait_for_count(2, "test.logged")}
    assert events["inside"]["execution"] == "nightly-1"
    assert events["inside"]["branch"] == "b-7"
    assert "execution" not in events["outside"]


def test_what_a_handler_binds_ends_with_its_message(
    system: ActorSystem, trace_events: TraceEvents
) -> None:
    ref = system.spawn(Logger, name="logger")
    proxy = ref.proxy()
    with bound(execution="nightly-2"):  # the same sender context for both messages
        proxy.bind_and_log("first", operation="reindex").get(timeout=10)
        proxy.log("second").get(timeout=10)
    events = {e["what"]: e for e in trace_events.wait_for_count(2, "test.logged")}
    assert events["first"]["operation"] == "reindex"
    assert "operation" not in events["second"]
    assert events["second"]["execution"] == "nightly-2"
    assert events["second"]["actor"] == "logger"


def test_context_travels_across_two_hops(
    system: ActorSystem, trace_events: TraceEvents
) -> None:
    first = system.spawn(Logger, name="first")
    second = system.spawn(Logger, name="second")
    with bound(execution="relay-1"):
        first.proxy().forward(second, "two hops").get(timeout=10)
    (event,) = trace_events.wait_for_count(1, "test.logged")
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
