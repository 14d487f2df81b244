"""structlog in every process of a system, and reading the trace back.

Each process configures structlog once with the same processors: the context
bound with ``structlog.contextvars`` (which travels with every message and is
bound again in the receiver while it handles it), then ``system``, ``pid``,
``role``, ``actor``, ``thread`` and a wall-clock ``ts``. With
``SystemConfig(trace_path=...)`` every event of every process is one JSON line
appended to that file with a single ``write`` on an ``O_APPEND`` descriptor, so
lines from different processes never interleave. Without it, warnings and
errors go to stderr.

    with ActorSystem(config=SystemConfig(trace_path="trace.jsonl")) as system:
        ...
    events = read_trace("trace.jsonl")
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, WrappedLogger

from actors.logcontext import bound_context

_state: dict[str, Any] = {}


class _AppendLogger:
    """Writes each rendered event as one line with one ``os.write``."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def msg(self, message: str) -> None:
        os.write(self._fd, (message + "\n").encode("utf-8", "replace"))

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


class _TeeLogger:
    def __init__(self, fd: int, stream: TextIO) -> None:
        self._file = _AppendLogger(fd)
        self._stream = stream

    def msg(self, message: str) -> None:
        self._file.msg(message)

    debug = info = msg

    def warning(self, message: str) -> None:
        self._file.msg(message)
        record = json.loads(message)
        print(f"[{record.get('role')}:{record.get('pid')}] {record.get('level')}: "
              f"{record.get('event')} {_short(record)}", file=self._stream)

    warn = error = critical = exception = fatal = warning


def _short(record: dict[str, Any]) -> str:
    skip = {"event", "level", "ts", "pid", "role", "system", "thread"}
    return " ".join(f"{k}={v}" for k, v in record.items() if k not in skip and v is not None)


def _add_process_fields(_: WrappedLogger, method: str, event: EventDict) -> EventDict:
    event.setdefault("actor", _state.get("actor"))
    event["system"] = _state.get("system")
    event["role"] = _state.get("role")
    event["pid"] = os.getpid()
    event["thread"] = threading.current_thread().name
    event["ts"] = time.time()
    event["level"] = method
    return event


def configure(
    *, system_id: str, role: str, trace_path: str | None, actor: str | None = None
) -> None:
    """Configure structlog for this process of a system (idempotent per process)."""
    _state.update(system=system_id, role=role, actor=actor)
    old_fd = _state.pop("fd", None)
    if old_fd is not None:
        os.close(old_fd)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_process_fields,
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(default=repr),
    ]
    if trace_path is not None:
        fd = os.open(trace_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        _state["fd"] = fd
        logger: Any = _TeeLogger(fd, sys.stderr)
        level = logging.DEBUG
    else:
        logger = _TeeLogger(os.open(os.devnull, os.O_WRONLY), sys.stderr)
        level = logging.WARNING
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *args: logger,
        cache_logger_on_first_use=False,
    )


def read_trace(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every event of a trace file, in file order, as dicts."""
    events = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            events.append(json.loads(line))
    return events


@contextmanager
def bound(**context: Any) -> Iterator[None]:
    """Bind ``context`` to every event (and every message sent) inside the block.

        with bound(execution="nightly-1"):
            ref.tell("go")   # the actor's events carry execution="nightly-1"
    """
    with bound_context(**context):
        yield
