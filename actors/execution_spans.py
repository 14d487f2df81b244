"""The coordinator's part in tracing: an execution's span, from its start to its end.

An execution's span is made at the caller (``system.map``) and stored with the
execution (``ExecutionSpec.trace``); the coordinator hands its context to every
top-level run as their parent and, when the execution ends, records the span
(``spans.emit``). Whoever finishes the execution records it: after a restart or
a takeover it is the same span (same id, same start) with an
``execution.resumed`` event per claim, so one trace holds the whole execution.
A retried execution (``system.retry``) ran to an end before and its span was
recorded: the retry gets a new span of the same trace, linked to the first.

    trace = trace_to_run(stored_spec, given, retried=False, now_ns=time.time_ns())
    ...
    record_end(trace, ExecutionStatus.SUCCEEDED, result, events, time.time_ns())
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from actors import spans
from actors.messages import ExecutionStatus, StartExecution
from actors.spans import ExecutionTrace, SpanEvent, SpanStatus, TraceContext


def trace_to_run(stored: Any, given: StartExecution | None, *, retried: bool,
                 now_ns: int) -> ExecutionTrace | None:
    """The span a claimed or reopened execution runs under (None: not traced here).

    The stored one (``stored``: its ``ExecutionSpec``) wins over the caller's: it is
    the execution's own span, from its first start.
    """
    if not spans.recording():
        return None
    trace = getattr(stored, "trace", None) if stored is not None else None
    if trace is None and given is not None:
        trace = given.trace
    if not isinstance(trace, ExecutionTrace):
        return None
    if retried:
        return ExecutionTrace(TraceContext(trace.context.trace_id, spans.new_span_id()),
                              trace.parent_id, now_ns, trace.name,
                              {**trace.attributes, "durable.execution.retry": True},
                              links=(trace.context,))
    return trace


def resumed_event(executor: str, epoch: int | None, now_ns: int) -> SpanEvent:
    """What the execution's span says of a claim: this executor took it over (or back)."""
    attributes: dict[str, Any] = {"durable.executor.id": executor}
    if epoch is not None:
        attributes["durable.lease.epoch"] = epoch
    return SpanEvent("execution.resumed", now_ns, attributes)


def record_end(trace: ExecutionTrace | None, status: ExecutionStatus, result: Any,
               events: list[SpanEvent], now_ns: int) -> None:
    """Record the execution's span: how it ended, with its branches' counts."""
    if trace is None:
        return
    attributes: dict[str, Any] = {"durable.execution.status": status.value}
    succeeded, failed = getattr(result, "succeeded", None), getattr(result, "failed", None)
    if succeeded is not None:
        attributes["durable.execution.succeeded"] = succeeded
    if failed is not None:
        attributes["durable.execution.failed"] = failed
    error = _first_error(result) if status is ExecutionStatus.FAILED else None
    span_status = SpanStatus.ERROR if status is ExecutionStatus.FAILED else SpanStatus.UNSET
    description = None
    if status is ExecutionStatus.FAILED:
        total = len(getattr(result, "statuses", ()))
        description = f"{failed} of {total} branches failed"
    record = trace.record(now_ns, span_status, description, attributes, tuple(events))
    if error is not None:
        record = replace(record, error=spans.error_of(error, escaped=False))
    spans.emit(record)


def _first_error(result: Any) -> BaseException | None:
    for error in getattr(result, "errors", ()):
        if error is not None:
            return error  # type: ignore[no-any-return]
    return None


__all__ = ["record_end", "resumed_event", "trace_to_run"]
