"""The framework's own loggers: structlog's shape, never the application's configuration.

Every module of ``actors/`` and ``runtime/`` logs through ``get_logger(name)``
from here, not through ``structlog.get_logger``: structlog's configuration is
the application's, and a library that logged through it would land its debug
events in the application's log, or need to replace that configuration to
write a trace file. Here, the events of a process go through one chain of
structlog processors that the runtime installs (``install``): into the
system's trace file, and warnings and errors to stderr (or to the
application's ``logging`` handlers for ``durable_actors``, when it has any).

Until the runtime installs a chain, debug and info events are dropped and
warnings and errors are reported (``report``), so the actors of ``actors/``
running under plain pykka say what went wrong and nothing else.

    log = get_logger("actors.worker")
    log.warning("branch.aborted", branch_id="e-1/0", error="...")

    with capture_events() as events:          # in a test: every event, any level
        ...
    assert events[0]["event"] == "branch.aborted"
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from structlog.contextvars import merge_contextvars
from structlog.exceptions import DropEvent
from structlog.processors import format_exc_info
from structlog.typing import EventDict

DEBUG, INFO, WARNING, ERROR, CRITICAL = (logging.DEBUG, logging.INFO, logging.WARNING,
                                         logging.ERROR, logging.CRITICAL)
LEVELS = {"debug": DEBUG, "info": INFO, "warning": WARNING, "error": ERROR,
          "critical": CRITICAL}

Processor = Callable[[Any, str, EventDict], EventDict]
Sink = Callable[[EventDict], None]

# Where warnings go when the application configured ``logging``: its handlers decide.
STDLIB_LOGGER = "durable_actors"


@dataclass(frozen=True, slots=True)
class TraceChain:
    """Where this process's framework events go: below ``min_level`` they are dropped at once.

    Each processor gets ``(None, method, event_dict)`` as in structlog; the sink
    gets the final dict, whose ``level`` field (set from the method when absent)
    it may trust to have been decided by the processors.
    """

    min_level: int
    processors: Sequence[Processor]
    sink: Sink


def report(event: EventDict) -> None:
    """Warnings and errors for people: one line (plus a traceback) to stderr, or to ``logging``.

    When ``logging.getLogger("durable_actors")`` has handlers (the application
    configured ``logging``), the line goes there at the event's level; otherwise it
    is written to stderr with a single ``write``, so lines of several processes
    never run together.
    """
    level = LEVELS.get(str(event.get("level")), WARNING)
    if level < WARNING:
        return
    text = describe(event)
    logger = logging.getLogger(STDLIB_LOGGER)
    if logger.hasHandlers():
        logger.log(level, text)
        return
    with contextlib.suppress(OSError, ValueError, AttributeError):  # no usable stderr
        os.write(sys.stderr.fileno(), (text + "\n").encode("utf-8", "replace"))


_QUIET = frozenset({"event", "level", "ts", "pid", "role", "system", "thread", "exception",
                    "traceback", "actor", "trace_id", "span_id"})


def describe(event: EventDict) -> str:
    """``[worker-0:1234] warning: branch.failed branch_id=e/0 error=KeyError('x')`` and,
    on the lines below, the traceback the event carries."""
    where = event.get("actor") or event.get("role") or "process"
    fields = " ".join(f"{key}={value}" for key, value in event.items()
                      if key not in _QUIET and value is not None)
    line = (f"[{where}:{event.get('pid', os.getpid())}] {event.get('level', 'warning')}: "
            f"{event.get('event')}" + (f" {fields}" if fields else ""))
    trace = event.get("exception") or event.get("traceback")
    return f"{line}\n{str(trace).rstrip()}" if trace else line


def _add_level(_: Any, method: str, event: EventDict) -> EventDict:
    event.setdefault("level", method)
    return event


_DEFAULT = TraceChain(WARNING, (merge_contextvars, _add_level, format_exc_info), report)
_chain: TraceChain = _DEFAULT


def install(chain: TraceChain | None) -> TraceChain:
    """Make ``chain`` this process's (``None``: the default); the chain it replaces."""
    global _chain
    previous, _chain = _chain, chain or _DEFAULT
    return previous


def current() -> TraceChain:
    """This process's chain."""
    return _chain


@contextmanager
def capture_events() -> Iterator[list[EventDict]]:
    """Collect every framework event of this process, any level, inside the block.

    Each event has its bound and contextvars context, ``event`` and ``level``
    (and ``exception``, the traceback's text, for ``log.exception``).

        with capture_events() as events:
            worker.tell(run)
            wait_until(lambda: any(e["event"] == "branch.report_unsent" for e in events))
    """
    events: list[EventDict] = []
    previous = install(TraceChain(DEBUG, (merge_contextvars, _add_level, format_exc_info),
                                  events.append))
    try:
        yield events
    finally:
        install(previous)


class TraceLogger:
    """A framework logger: ``debug`` … ``critical``, ``exception`` and ``bind``, as in structlog.

        log = get_logger("runtime.system").bind(system="sys-1")
        log.info("system.started", start_method="forkserver")
    """

    __slots__ = ("_context", "name")

    def __init__(self, name: str, context: dict[str, Any] | None = None) -> None:
        self.name = name
        self._context = context or {}

    def bind(self, **values: Any) -> TraceLogger:
        """A logger whose events also carry ``values``."""
        return TraceLogger(self.name, {**self._context, **values})

    def is_enabled_for(self, level: int) -> bool:
        """Whether an event at ``level`` would go anywhere (to skip costly fields)."""
        return level >= _chain.min_level

    def debug(self, event: str, **fields: Any) -> None:
        if _chain.min_level <= DEBUG:
            self._emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        if _chain.min_level <= INFO:
            self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        if _chain.min_level <= WARNING:
            self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        if _chain.min_level <= ERROR:
            self._emit("error", event, fields)

    def critical(self, event: str, **fields: Any) -> None:
        self._emit("critical", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """An error with the exception being handled (its traceback is rendered)."""
        fields.setdefault("exc_info", True)
        self.error(event, **fields)

    def _emit(self, method: str, event: str, fields: dict[str, Any]) -> None:
        chain = _chain
        values: EventDict = {**self._context, **fields, "event": event}
        try:
            for processor in chain.processors:
                values = processor(None, method, values)
        except DropEvent:
            return
        chain.sink(values)


def get_logger(name: str) -> TraceLogger:
    """The framework logger for module ``name`` (its events never use structlog's configuration).

        log = get_logger("actors.checkpoint")
    """
    return TraceLogger(name)


__all__ = ["LEVELS", "STDLIB_LOGGER", "TraceChain", "TraceLogger", "capture_events",
           "current", "describe", "get_logger", "install", "report"]
