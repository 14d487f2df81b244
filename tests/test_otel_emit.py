"""Emitting recorded spans through an OpenTelemetry SDK provider, keeping their ids.

``runtime.otel`` relies on one attribute of the SDK's tracer (``id_generator``)
to give a recorded span its own ids; these tests fail if the SDK changes that.
They use a provider of their own, never the process-wide one.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the [otel] extra (also in [test])")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from actors.spans import SpanError, SpanEvent, SpanRecord, SpanStatus, TraceContext
from runtime import otel

TRACE = 0x0AF7651916CD43DD8448EB211C80319C


def provider_with_exporter() -> tuple[TracerProvider, InMemorySpanExporter]:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def record(**changes: Any) -> SpanRecord:
    fields: dict[str, Any] = {
        "name": "step fetch", "context": TraceContext(TRACE, 0xB7AD6B7169203331),
        "parent_id": 0x00F067AA0BA902B7, "start_ns": 1_000_000_000, "end_ns": 1_250_000_000,
        "attributes": {"durable.step.name": "fetch", "durable.step.attempt": 2},
    }
    fields.update(changes)
    return SpanRecord(**fields)


def test_the_sdk_tracer_still_takes_an_id_generator() -> None:
    provider, _ = provider_with_exporter()
    tracer = provider.get_tracer("durable_actors")
    assert hasattr(tracer, "id_generator"), "the SDK's Tracer changed: see runtime/otel.py"


def test_a_record_is_emitted_with_its_ids_parent_and_times() -> None:
    provider, exporter = provider_with_exporter()
    otel.emit_with(provider, record())
    (span,) = exporter.get_finished_spans()
    assert (span.context.trace_id, span.context.span_id) == (TRACE, 0xB7AD6B7169203331)
    assert span.parent is not None and span.parent.span_id == 0x00F067AA0BA902B7
    assert (span.start_time, span.end_time) == (1_000_000_000, 1_250_000_000)
    assert dict(span.attributes) == {"durable.step.name": "fetch", "durable.step.attempt": 2}
    assert span.instrumentation_scope.name == otel.SCOPE


def test_a_failed_record_is_emitted_with_its_status_and_exception_event() -> None:
    provider, exporter = provider_with_exporter()
    failure = SpanError("KeyError", "'missing'", "Traceback ...\nKeyError: 'missing'\n")
    otel.emit_with(provider, record(status=SpanStatus.ERROR, description="KeyError: 'missing'",
                                    error=failure))
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "KeyError: 'missing'"
    (event,) = span.events
    assert event.name == "exception" and event.timestamp == 1_250_000_000
    assert dict(event.attributes or {}) == {
        "exception.type": "KeyError", "exception.message": "'missing'",
        "exception.stacktrace": "Traceback ...\nKeyError: 'missing'\n",
        "exception.escaped": True}


def test_a_root_record_keeps_its_trace_id_and_its_events() -> None:
    provider, exporter = provider_with_exporter()
    resumed = SpanEvent("execution.resumed", 1_100_000_000, {"durable.executor.id": "b"})
    otel.emit_with(provider, record(parent_id=None, events=(resumed,)))
    (span,) = exporter.get_finished_spans()
    assert span.parent is None and span.context.trace_id == TRACE
    assert [(e.name, e.timestamp) for e in span.events] == [("execution.resumed", 1_100_000_000)]


def test_the_applications_own_spans_keep_the_applications_ids() -> None:
    provider, exporter = provider_with_exporter()
    otel.emit_with(provider, record())
    with provider.get_tracer("durable_actors").start_as_current_span("app's own"):
        pass
    mine = next(s for s in exporter.get_finished_spans() if s.name == "app's own")
    assert mine.context.span_id != 0xB7AD6B7169203331
    assert mine.context.trace_id != TRACE and mine.parent is None


def test_a_sampler_that_drops_the_parent_drops_the_record() -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

    provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF, remote_parent_sampled=ALWAYS_OFF))
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel.emit_with(provider, record())
    assert exporter.get_finished_spans() == ()
