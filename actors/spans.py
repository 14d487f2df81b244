"""Spans of durable executions, recorded where their work happens, emitted by the service.

A branch runs in a worker process, its checkpoints are written by the
checkpoint process, its suspensions are kept by the scheduler's; only the
service process has the application's tracer provider. So every process
*records* the spans of its own work as plain data (``SpanRecord``: name, ids,
parent id, start and end times, attributes, status, the exception), with ids
it makes itself, and the runtime ships the records to the service process,
which emits them through the application's provider with the same ids
(``runtime.otel``). Parent and child may be made in different processes: the
parent's ``TraceContext`` (trace id, span id) travels inside the messages that
carry the work (``RunBranch.trace``, ``Checkpoint.trace``, ``Suspend.trace``).

Nothing is recorded without a parent context, and contexts exist only for
executions that the service traces: without a tracer provider the cost of all
this is a ``None`` check. With no sink installed (``install``), records are
dropped.

    span = start("step fetch", current(), {"durable.step.name": "fetch"})
    previous = activate(span)              # its context is current: children hang off it
    try:
        ...
    finally:
        restore(previous)
    finish(span, error)                    # recorded; None-safe for untraced work
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

import structlog

from actors.tracebacks import bounded, traceback_text

Attributes = dict[str, Any]  # values: str, bool, int, float (what OpenTelemetry accepts)


class TraceContext(NamedTuple):
    """Where a span sits: its trace id (128 bits) and its own span id (64 bits)."""

    trace_id: int
    span_id: int

    @property
    def traceparent(self) -> str:
        """The W3C ``traceparent`` header of this context (sampled): for outgoing calls.

            headers["traceparent"] = ctx.trace_context.traceparent
        """
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-01"


class SpanStatus(StrEnum):
    UNSET = "UNSET"
    OK = "OK"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class SpanError:
    """The exception a span ended with, as text (it crossed a process)."""

    type_name: str
    message: str
    stacktrace: str
    escaped: bool = True  # it left the span's work (False: handled, e.g. a retried attempt)


@dataclass(frozen=True, slots=True)
class SpanEvent:
    """Something that happened at one moment of a span (an execution resumed elsewhere)."""

    name: str
    time_ns: int
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """A finished span as data: what the service emits through the application's provider."""

    name: str
    context: TraceContext
    parent_id: int | None  # None: a root (the execution of a caller without a span)
    start_ns: int  # wall clock, nanoseconds since the epoch
    end_ns: int
    attributes: Mapping[str, Any]
    status: SpanStatus = SpanStatus.UNSET
    description: str | None = None
    error: SpanError | None = None
    links: tuple[TraceContext, ...] = ()
    events: tuple[SpanEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class ExecutionTrace:
    """An execution's own span, stored with the execution (in its ``ExecutionSpec``).

    The system that finishes the execution emits it, whichever started it: after
    a restart or a takeover the span keeps its id and start, so the branches run
    before and after hang off the same span of the same trace. ``parent_id`` is
    the caller's span at ``system.map``/``parallel`` (None for a root).
    """

    context: TraceContext
    parent_id: int | None
    start_ns: int
    name: str
    attributes: Mapping[str, Any] = field(default_factory=dict)
    links: tuple[TraceContext, ...] = ()

    def record(self, end_ns: int, status: SpanStatus, description: str | None,
               attributes: Mapping[str, Any], events: tuple[SpanEvent, ...] = ()) -> SpanRecord:
        return SpanRecord(self.name, self.context, self.parent_id, self.start_ns, end_ns,
                          {**self.attributes, **attributes}, status, description,
                          links=self.links, events=events)


# -- this process's sink --------------------------------------------------------------------

Sink = Callable[[SpanRecord], None]
_sink: Sink | None = None
_enabled: Callable[[], bool] = lambda: False  # noqa: E731 - replaced with the sink


def install(sink: Sink | None, enabled: Callable[[], bool] | None = None) -> Sink | None:
    """Send this process's finished spans to ``sink`` (None: drop them); the sink it replaces.

    ``enabled`` says whether spans are wanted now (``recording()``); default: while
    a sink is installed.
    """
    global _sink, _enabled
    previous, _sink = _sink, sink
    _enabled = enabled or (lambda: sink is not None)
    return previous


def recording() -> bool:
    """Whether this process's spans go anywhere now (an execution resumed from the store
    is traced only if so)."""
    return _sink is not None and _enabled()


def emit(record: SpanRecord) -> None:
    """Hand a finished span to this process's sink (dropped without one)."""
    sink = _sink
    if sink is not None:
        sink(record)


# -- ids and the current span -----------------------------------------------------------------

# Ids of our own: an application that seeds ``random`` (in a step) must not repeat them.
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)  # forked processes must not share a sequence


def new_span_id() -> int:
    span_id = 0
    while not span_id:
        span_id = _ids.getrandbits(64)
    return span_id


def new_trace_id() -> int:
    trace_id = 0
    while not trace_id:
        trace_id = _ids.getrandbits(128)
    return trace_id


_current: ContextVar[TraceContext | None] = ContextVar("durable_actors_span", default=None)


def current() -> TraceContext | None:
    """The context of the span this code runs in (a step, a branch run), or None.

    In a step function of a traced execution, pass it on to the services it calls:

        context = current()
        if context is not None:
            headers["traceparent"] = context.traceparent
    """
    return _current.get()


class Span:
    """A span of this process, open: attributes may still be set; ``finish`` records it."""

    __slots__ = ("attributes", "context", "events", "links", "name", "parent_id", "start_ns")

    def __init__(self, name: str, parent: TraceContext, attributes: Attributes,
                 links: tuple[TraceContext, ...] = (), start_ns: int | None = None) -> None:
        self.name = name
        self.context = TraceContext(parent.trace_id, new_span_id())
        self.parent_id: int | None = parent.span_id
        self.attributes = attributes
        self.links = links
        self.events: list[SpanEvent] = []
        self.start_ns = time.time_ns() if start_ns is None else start_ns


def start(name: str, parent: TraceContext | None, attributes: Attributes | None = None,
          links: tuple[TraceContext, ...] = (), start_ns: int | None = None) -> Span | None:
    """A new span under ``parent``; None (nothing recorded) when ``parent`` is None."""
    if parent is None:
        return None
    return Span(name, parent, attributes if attributes is not None else {}, links, start_ns)


def finish(span: Span | None, error: BaseException | None = None, *,
           status: SpanStatus | None = None, description: str | None = None,
           escaped: bool = True, end_ns: int | None = None) -> None:
    """Record ``span`` as ended now: ERROR with ``error`` if given, else ``status`` (UNSET)."""
    if span is None:
        return
    failure = None
    if error is not None:
        failure = error_of(error, escaped)
        status = SpanStatus.ERROR
        description = description or f"{failure.type_name}: {failure.message}"
    emit(SpanRecord(span.name, span.context, span.parent_id, span.start_ns,
                    time.time_ns() if end_ns is None else end_ns, span.attributes,
                    status or SpanStatus.UNSET, description, failure, span.links,
                    tuple(span.events)))


def record_shared(name: str, contexts: Iterable[TraceContext], start_ns: int, end_ns: int,
                  attributes: Attributes, error: BaseException | None = None,
                  per_span: Callable[[TraceContext, int], Attributes] | None = None) -> None:
    """Record one piece of work done for many spans at once (a checkpoint batch).

    Each span it served gets a child span for it, all with the same ``attributes``
    (the batch's number among them, to tell them apart from other batches): the
    trace shows, under each step, the batch that made it durable.
    ``per_span(context, count)`` adds the attributes of one span's part (``count``:
    how many of ``contexts`` were that one).
    """
    counts: dict[TraceContext, int] = {}
    for context in contexts:
        counts[context] = counts.get(context, 0) + 1
    failure = None if error is None else error_of(error)
    status = SpanStatus.ERROR if failure else SpanStatus.UNSET
    description = None if failure is None else f"{failure.type_name}: {failure.message}"
    for context, count in counts.items():
        extra = {} if per_span is None else per_span(context, count)
        emit(SpanRecord(name, TraceContext(context.trace_id, new_span_id()), context.span_id,
                        start_ns, end_ns, {**attributes, **extra}, status, description, failure))


def error_of(error: BaseException, escaped: bool = True) -> SpanError:
    cls = type(error)
    name = cls.__qualname__ if cls.__module__ == "builtins" else (
        f"{cls.__module__}.{cls.__qualname__}")
    return SpanError(name, bounded(str(error), 4_000), traceback_text(error), escaped)


def activate(span: Span | None) -> Any:
    """Make ``span`` current (its children and the log lines inside hang off it); the
    previous state for ``restore``. A no-op for None.

    While it is current, structlog's context carries its ``trace_id`` and ``span_id``
    (hex, as OpenTelemetry writes them): log lines correlate with the trace, and the
    ids travel with every message sent meanwhile, as the rest of that context does.
    """
    if span is None:
        return None
    context = span.context
    previous = _current.get()
    _current.set(context)
    tokens = structlog.contextvars.bind_contextvars(
        trace_id=f"{context.trace_id:032x}", span_id=f"{context.span_id:016x}")
    return previous, tokens


def restore(previous: Any) -> None:
    """Undo ``activate`` (setting, not resetting: safe from any context of the same thread)."""
    if previous is None:
        return
    context, tokens = previous
    _current.set(context)
    try:
        structlog.contextvars.reset_contextvars(**tokens)
    except ValueError:  # a generator finished in another context than it started: unbind
        structlog.contextvars.unbind_contextvars("trace_id", "span_id")


__all__ = [
    "Attributes",
    "ExecutionTrace",
    "Span",
    "SpanError",
    "SpanEvent",
    "SpanRecord",
    "SpanStatus",
    "TraceContext",
    "activate",
    "current",
    "emit",
    "error_of",
    "finish",
    "install",
    "new_span_id",
    "new_trace_id",
    "record_shared",
    "recording",
    "restore",
    "start",
]
