"""Spans recorded by the actors themselves (``actors.spans``), without processes.

A branch run under a host that was given a trace context records its run and
its step attempts as ``SpanRecord``s; without one it records nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from actors import BranchActor, BranchContext, Retry, spans
from actors.spans import SpanRecord, SpanStatus, TraceContext
from actors.testing import InlineHost

CALLER = TraceContext(trace_id=0xABC, span_id=0x123)


@pytest.fixture
def recorded() -> Iterator[list[SpanRecord]]:
    records: list[SpanRecord] = []
    previous = spans.install(records.append)
    try:
        yield records
    finally:
        spans.install(previous)


def fetch(item: int) -> int:
    return item + 1


class Fetch(BranchActor):
    def run(self, ctx: BranchContext, item: int) -> int:
        return ctx.step("fetch", fetch, item)


class Flaky:
    """Fails its first call, then succeeds."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("reset by peer")
        return "ok"


def traced_host(**options: Any) -> InlineHost:
    host = InlineHost(**options)
    host.trace = CALLER  # type: ignore[attr-defined]  # what a worker gets in RunBranch.trace
    return host


def test_a_run_without_a_trace_context_records_nothing(recorded: list[SpanRecord]) -> None:
    host = InlineHost()
    host.start(Fetch, 1)
    host.run_until_idle()
    assert host.outcomes["branch"].result == 2
    assert recorded == []


def test_a_step_attempt_is_a_child_of_its_run_and_the_run_of_the_given_context(
        recorded: list[SpanRecord]) -> None:
    host = traced_host()
    host.start(Fetch, 1, execution_id="e-1", branch_id="e-1/0")
    host.run_until_idle()
    step, run = recorded
    assert (run.name, step.name) == ("branch Fetch", "step fetch")
    assert run.parent_id == CALLER.span_id and run.context.trace_id == CALLER.trace_id
    assert step.parent_id == run.context.span_id and step.context.trace_id == CALLER.trace_id
    assert step.attributes == {"durable.execution.id": "e-1", "durable.branch.id": "e-1/0",
                               "durable.operation.id": "1", "durable.step.name": "fetch",
                               "durable.step.attempt": 1}
    assert run.start_ns <= step.start_ns <= step.end_ns <= run.end_ns
    assert run.attributes["durable.branch.outcome"] == "succeeded"


def test_a_retried_attempt_records_its_error_as_handled(recorded: list[SpanRecord]) -> None:
    flaky = Flaky()

    class Retrying(BranchActor):
        def run(self, ctx: BranchContext, item: Any) -> str:
            return ctx.step("call", flaky, retry=Retry(attempts=2, backoff=0.0))

    host = traced_host(in_place=True)
    host.start(Retrying)
    host.run_until_idle()
    first, second = [r for r in recorded if r.name == "step call"]
    assert first.status is SpanStatus.ERROR and first.error is not None
    assert (first.error.type_name, first.error.escaped) == ("ConnectionError", False)
    assert first.attributes["durable.step.attempt"] == 1
    assert second.status is SpanStatus.UNSET and second.attributes["durable.step.attempt"] == 2


def test_log_lines_inside_a_traced_step_carry_its_ids(recorded: list[SpanRecord]) -> None:
    seen: list[dict[str, Any]] = []

    def look() -> None:
        seen.append(structlog.contextvars.get_contextvars())

    class Looks(BranchActor):
        def run(self, ctx: BranchContext, item: Any) -> None:
            ctx.step("look", look)

    host = traced_host()
    host.start(Looks)
    host.run_until_idle()
    step = next(r for r in recorded if r.name == "step look")
    assert seen[0]["trace_id"] == f"{CALLER.trace_id:032x}"
    assert seen[0]["span_id"] == f"{step.context.span_id:016x}"
    assert "trace_id" not in structlog.contextvars.get_contextvars()  # unbound after the run


def test_a_shared_piece_of_work_gets_a_span_under_each_span_it_served(
        recorded: list[SpanRecord]) -> None:
    a, b = TraceContext(1, 10), TraceContext(2, 20)
    spans.record_shared("checkpoint batch", [a, b, a], 5, 9, {"durable.checkpoint.batch": 7},
                        per_span=lambda context, count: {"served": count})
    under_a, under_b = recorded
    assert (under_a.parent_id, under_a.context.trace_id, under_a.attributes) == (
        10, 1, {"durable.checkpoint.batch": 7, "served": 2})
    assert (under_b.parent_id, under_b.context.trace_id) == (20, 2)
    assert (under_a.start_ns, under_a.end_ns) == (5, 9)


def test_a_span_is_dropped_without_a_sink() -> None:
    previous = spans.install(None)
    try:
        spans.finish(spans.start("step x", CALLER))  # nowhere to go, and no error
        assert not spans.recording()
    finally:
        spans.install(previous)


def test_traceparent_is_the_w3c_header_of_a_context() -> None:
    assert TraceContext(0xABC, 0x123).traceparent == (
        "00-00000000000000000000000000000abc-0000000000000123-01")
