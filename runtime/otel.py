"""OpenTelemetry: executions' spans through the application's tracer provider.

The only module that imports ``opentelemetry`` (the ``[otel]`` extra), and only
in the service process. The framework never installs a provider: it takes the
one the application set (``opentelemetry.trace.get_tracer_provider()``) each
time it needs it, and with none (the API's proxy, or a no-op provider) an
execution is not traced at all.

* ``begin_execution`` (at ``system.map``/``parallel``, in the caller's thread)
  starts the execution's span as a child of the caller's current span, through
  the application's tracer, so its sampler decides. A sampled span's context
  travels with the execution (and is stored with it); an unsampled one is
  dropped, and nothing of that execution is recorded anywhere.
* Spans of the other processes reach the service as data (``actors.spans``,
  ``runtime.span_shipping``) and are emitted here with the ids, parents, times,
  attributes, status and exception they were recorded with. The OpenTelemetry
  API lets no caller choose a span's id, so the application's tracer is given
  the recorded id for the one span being emitted (``KeptIds`` wraps the SDK
  tracer's ``id_generator``; every other span gets the application's ids). A
  provider without that attribute (not the SDK's) still gets every span, with
  ids of its own: a warning says the parent links between processes are lost.

    trace = begin_execution("map", "nightly-1", "Resize", 100)   # None: not traced
    emit_record(record)                                            # a SpanRecord, via the app
"""

from __future__ import annotations

import threading
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from actors import spans, tracelog
from actors.spans import ExecutionTrace, SpanRecord, SpanStatus, TraceContext

SCOPE = "durable_actors"  # the instrumentation scope of every span the framework emits

log = tracelog.get_logger("runtime.otel")

_available: bool | None = None
_live: dict[int, Any] = {}  # span id -> the execution span started here at map(), still open
_live_lock = threading.Lock()
_tracers: dict[int, Any] = {}  # id(provider) -> (provider, our tracer of it)
_warned: set[str] = set()


def available() -> bool:
    """Whether the OpenTelemetry API is installed (``pip install 'durable-actors[otel]'``)."""
    global _available
    if _available is None:
        try:
            import opentelemetry.trace  # noqa: F401, PLC0415 - optional extra [otel]: is it installed?
        except ImportError:
            _available = False
        else:
            _available = True
    return _available


def app_provider() -> Any | None:
    """The tracer provider the application set, or None (none set, or a no-op one)."""
    if not available():
        return None
    from opentelemetry import trace  # noqa: PLC0415 - optional extra [otel]

    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return provider


def tracing() -> bool:
    """Whether executions are traced now (for ``actors.spans.recording``)."""
    return app_provider() is not None


def install_service_sink() -> None:
    """In the service process: emit every recorded span through the application's provider."""
    if available():
        spans.install(emit_record, enabled=tracing)


def _tracer(provider: Any) -> Any:
    found = _tracers.get(id(provider))
    if found is not None and found[0] is provider:
        return found[1]
    tracer = provider.get_tracer(SCOPE, _version())
    generator = getattr(tracer, "id_generator", None)
    if generator is not None and not isinstance(generator, KeptIds):
        tracer.id_generator = KeptIds(generator)
    _tracers[id(provider)] = (provider, tracer)
    return tracer


def _version() -> str | None:

    try:
        return version("durable-actors")
    except PackageNotFoundError:
        return None


class KeptIds:
    """The SDK tracer's id generator, except for the span being emitted from a record:
    that one gets the ids it was recorded with (set per thread by ``keeping``)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._next = threading.local()

    def keeping(self, context: TraceContext | None) -> None:
        self._next.context = context

    def generate_span_id(self) -> int:
        context: TraceContext | None = getattr(self._next, "context", None)
        if context is None:
            return int(self.inner.generate_span_id())
        return context.span_id

    def generate_trace_id(self) -> int:
        context: TraceContext | None = getattr(self._next, "context", None)
        if context is None:
            return int(self.inner.generate_trace_id())
        return context.trace_id

    def is_trace_id_random(self) -> bool:
        return bool(getattr(self.inner, "is_trace_id_random", lambda: False)())


def begin_execution(kind: str, execution_id: str, branch_class: str | None,
                    branches: int) -> ExecutionTrace | None:
    """Start an execution's span under the caller's current span; None if not traced."""
    provider = app_provider()
    if provider is None:
        return None
    from opentelemetry import trace  # noqa: PLC0415 - optional extra [otel]

    name = f"{kind} {branch_class}" if branch_class else kind
    attributes: dict[str, Any] = {"durable.execution.id": execution_id,
                                  "durable.execution.kind": kind,
                                  "durable.execution.branches": branches}
    if branch_class:
        attributes["durable.branch.class"] = branch_class
    start_ns = time.time_ns()
    span = _tracer(provider).start_span(name, attributes=attributes, start_time=start_ns)
    context = span.get_span_context()
    if not (span.is_recording() and context.trace_flags.sampled):
        return None  # the application's sampler said no: nothing of it is recorded
    caller = trace.get_current_span().get_span_context()
    own = TraceContext(context.trace_id, context.span_id)
    with _live_lock:
        _live[own.span_id] = span
    return ExecutionTrace(own, caller.span_id if caller.is_valid else None, start_ns, name,
                          {**attributes, "durable.process.role": "service"})


def discard(trace: ExecutionTrace | None) -> None:
    """Forget a span begun for an execution that already existed (it is never emitted)."""
    if trace is not None:
        with _live_lock:
            _live.pop(trace.context.span_id, None)


def emit_record(record: SpanRecord) -> None:
    """Emit ``record`` through the application's provider, with its recorded ids."""
    with _live_lock:
        live = _live.pop(record.context.span_id, None)
    if live is not None:  # the execution span begun here: end that very span
        _finish(live, record)
        return
    provider = app_provider()
    if provider is None:
        return
    emit_with(provider, record)


def emit_with(provider: Any, record: SpanRecord) -> None:
    """Emit ``record`` through ``provider`` (an SDK provider keeps its ids)."""
    from opentelemetry import context as otel_context  # noqa: PLC0415 - optional extra [otel]
    from opentelemetry import trace  # noqa: PLC0415 - optional extra [otel]

    tracer = _tracer(provider)
    parent = otel_context.Context()  # a root unless the record names a parent
    if record.parent_id is not None:
        parent = trace.set_span_in_context(trace.NonRecordingSpan(
            _span_context(TraceContext(record.context.trace_id, record.parent_id))), parent)
    links = [trace.Link(_span_context(link)) for link in record.links]
    generator = getattr(tracer, "id_generator", None)
    keeper = generator if isinstance(generator, KeptIds) else None
    if keeper is not None:
        keeper.keeping(record.context)
    try:
        span = tracer.start_span(record.name, context=parent, attributes=dict(record.attributes),
                                 links=links, start_time=record.start_ns)
    finally:
        if keeper is not None:
            keeper.keeping(None)
    got = span.get_span_context()
    if span.is_recording() and got.span_id != record.context.span_id:
        _warn_once("ids", "spans.ids_not_kept",
                   hint="the tracer provider is not OpenTelemetry's SDK (or a subclass of it): "
                        "spans of worker processes get new ids, and their parent links are lost")
    _finish(span, record, attributes=False)


def _finish(span: Any, record: SpanRecord, attributes: bool = True) -> None:
    from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415 - optional extra [otel]

    if attributes:
        span.set_attributes(dict(record.attributes))
    for event in record.events:
        span.add_event(event.name, dict(event.attributes), timestamp=event.time_ns)
    error = record.error
    if error is not None:
        span.add_event("exception", {"exception.type": error.type_name,
                                     "exception.message": error.message,
                                     "exception.stacktrace": error.stacktrace,
                                     "exception.escaped": error.escaped},
                       timestamp=record.end_ns)
    if record.status is SpanStatus.ERROR:
        span.set_status(Status(StatusCode.ERROR, record.description))
    elif record.status is SpanStatus.OK:
        span.set_status(Status(StatusCode.OK))
    span.end(end_time=record.end_ns)


def _span_context(context: TraceContext) -> Any:
    from opentelemetry import trace  # noqa: PLC0415 - optional extra [otel]

    return trace.SpanContext(context.trace_id, context.span_id, is_remote=True,
                             trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))


def _warn_once(key: str, event: str, **fields: Any) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(event, **fields)


__all__ = ["SCOPE", "KeptIds", "app_provider", "available", "begin_execution", "discard",
           "emit_record", "emit_with", "install_service_sink", "tracing"]
