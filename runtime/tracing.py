"""The trace of every process of a system, written beside the application's logging, not over it.

Each process installs the framework's chain (``actors.tracelog``) once: the
context bound with ``structlog.contextvars`` (which travels with every message
and is bound again in the receiver while it handles it), then ``system``,
``pid``, ``role``, ``actor``, ``thread``, a wall-clock ``ts`` and ``level``.
With ``SystemConfig(trace_path=...)`` every event of every process is one JSON
line appended to that file with a single ``write`` on an ``O_APPEND``
descriptor, so lines from different processes never interleave. Warnings and
errors also go to stderr (or to the application's ``logging`` handlers for
``durable_actors``), with or without a trace file.

structlog's own configuration stays the application's: it is never replaced.
The system's other processes get a copy of it (``app_config_for_children``),
so ``ctx.logger`` and ``runtime.get_logger`` log the application's way there
too, and their events reach the trace file as well.

    with ActorSystem(config=SystemConfig(trace_path="trace.jsonl")) as system:
        ...
    events = read_trace("trace.jsonl")
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

from actors import applog, tracelog
from actors.logcontext import bound_context
from runtime import serialization

_state: dict[str, Any] = {}
_log = tracelog.get_logger("runtime.tracing")


def _add_process_fields(_: WrappedLogger, method: str, event: EventDict) -> EventDict:
    event.setdefault("actor", _state.get("actor"))
    event["system"] = _state.get("system")
    event["role"] = _state.get("role")
    event["pid"] = os.getpid()
    event["thread"] = threading.current_thread().name
    event["ts"] = time.time()
    event["level"] = method
    return event


def _quiet_while_stopping(_: WrappedLogger, method: str, event: EventDict) -> EventDict:
    """Once the system stops on purpose, peers go away: what is said about that is debug.

    That is every warning, and an error that is only a peer being gone (an actor
    whose handler met a stopped peer); other errors stay errors.
    """
    if not _state.get("stopping"):
        return event
    level = event.get("level")
    if level == "warning" or (level == "error"
                              and str(event.get("error", "")).startswith("ActorDeadError(")):
        event["level"] = "debug"
        event["while_stopping"] = True
    return event


_RENDER = structlog.processors.JSONRenderer(default=repr)


class _TraceFile:
    """Renders each event as one JSON line with one ``os.write``; reports warnings too."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd

    def __call__(self, event: EventDict) -> None:
        if self.fd is not None:
            line = _RENDER(None, "", dict(event))
            os.write(self.fd, (str(line) + "\n").encode("utf-8", "replace"))
        tracelog.report(event)


def configure(
    *, system_id: str, role: str, trace_path: str | None, actor: str | None = None
) -> None:
    """Install the framework's trace chain in this process (idempotent per process).

    Only the framework's own loggers change; structlog's configuration is not touched.
    """
    _state.update(system=system_id, role=role, actor=actor, stopping=False)
    old_fd = _state.pop("fd", None)
    fd = None
    if trace_path is not None:
        fd = os.open(trace_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        _state["fd"] = fd
    tracelog.install(tracelog.TraceChain(
        min_level=tracelog.DEBUG if fd is not None else tracelog.WARNING,
        processors=(structlog.contextvars.merge_contextvars, _add_process_fields,
                    _quiet_while_stopping, structlog.processors.format_exc_info),
        sink=_TraceFile(fd),
    ))
    if old_fd is not None:
        os.close(old_fd)


def stopping() -> None:
    """The system is stopping on purpose: warnings of this process become debug events."""
    _state["stopping"] = True


def app_config_for_children() -> bytes | None:
    """The application's structlog configuration, for the system's other processes.

    ``None`` when the application did not configure structlog (the children's
    defaults are the same) or when its configuration cannot be pickled (it holds
    an open file, say): then ``ctx.logger`` there logs with structlog's defaults,
    and a warning says so once.
    """
    if not structlog.is_configured():
        return None
    config = structlog.get_config()
    try:
        return serialization.dumps(config)
    except Exception as exc:
        if not _state.get("warned_unpicklable"):
            _state["warned_unpicklable"] = True
            _log.warning("logging.config_not_sent", error=repr(exc),
                         hint="ctx.logger in the system's other processes uses structlog's "
                              "defaults; give structlog processors and a logger factory that "
                              "pickle (not one holding an open file)")
        return None


def use_app_config(data: bytes | None) -> None:
    """In a child: log the application's events with the configuration the service sent."""
    if data is None:
        return
    try:
        applog.use_app_config(serialization.loads(data))
    except Exception as exc:  # a processor whose module is missing here: say so, go on
        _log.warning("logging.config_not_loaded", error=repr(exc),
                     hint="ctx.logger in this process uses structlog's defaults")


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
