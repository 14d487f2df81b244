"""``durable-actors trace``: read the JSON-lines trace of every process of a system.

    durable-actors trace trace.jsonl                        # the whole timeline
    durable-actors trace trace.jsonl --execution nightly-1  # one execution's events
    durable-actors trace trace.jsonl --branch nightly-1/7   # one branch and its children
    durable-actors trace trace.jsonl --actor checkpoint --since 2.5
    durable-actors trace trace.jsonl --perfetto trace.json  # open in ui.perfetto.dev

The timeline has one line per event, in time order, aligned in columns: seconds
since the trace's first event, the process (role and pid), the thread, the
level, the event, the branch (or execution) it is about, and its other fields.
It is coloured when printed to a terminal.

``--since`` takes seconds since the trace's first event (the timeline's first
column) or an ISO date-time (``2025-01-31T14:05:00``, local time unless it says
otherwise). Filters combine: an event is shown when it matches all of them.
"""

from __future__ import annotations

import json
import os
import sys
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from rich.color import ColorSystem
from rich.style import Style

from runtime.tools.chrome_trace import branch_of, chrome_trace, execution_of, role_label

Event = Mapping[str, Any]

# Shown in their own columns, not among the fields.
_COLUMNS = frozenset({"system", "pid", "role", "actor", "thread", "ts", "level", "event",
                      "execution_id", "execution", "branch_id", "branch"})
_PALETTE = ("cyan", "green", "magenta", "blue", "yellow", "bright_cyan", "bright_green",
            "bright_magenta", "bright_blue")
_LEVEL_STYLE = {"debug": "dim", "info": "", "warning": "yellow", "error": "bold red",
                "critical": "bold red", "exception": "bold red"}


class TraceError(ValueError):
    """The trace file or a filter cannot be used; the message says what to give instead."""


@dataclass(frozen=True, slots=True)
class TraceFilter:
    """Which events to keep; ``None`` keeps everything for that criterion.

    ``branch`` keeps the branch and its children (their ids start with ``branch + "/"``);
    ``actor`` matches an actor's name (``checkpoint``, ``worker-0``) or a role
    (``service``); ``since`` is a wall-clock time in seconds since the epoch.

        kept = TraceFilter(execution="nightly-1").select(events)
    """

    execution: str | None = None
    branch: str | None = None
    actor: str | None = None
    since: float | None = None

    def matches(self, event: Event) -> bool:
        if self.execution is not None and execution_of(event) != self.execution:
            return False
        if self.branch is not None:
            branch = branch_of(event)
            if branch is None or not (branch == self.branch
                                      or branch.startswith(self.branch + "/")):
                return False
        if self.actor is not None:
            role = str(event.get("role") or "")
            if self.actor not in (event.get("actor"), role, role_label(role)):
                return False
        return self.since is None or float(event.get("ts", 0.0)) >= self.since

    def select(self, events: Iterable[Event]) -> list[Event]:
        return [e for e in events if self.matches(e)]


def load_events(path: str | Path) -> tuple[list[dict[str, Any]], int]:
    """The trace's events sorted by time, and how many lines could not be read.

    A line that is not a JSON object with an ``event``, a ``pid`` and a ``ts``
    (say, cut short by a full disk) is counted and skipped.
    """
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise TraceError(f"cannot read the trace {str(path)!r}: {exc.strerror or exc}; give the "
                         "file named by SystemConfig(trace_path=...)") from None
    events: list[dict[str, Any]] = []
    skipped = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if (isinstance(event, dict) and "event" in event and isinstance(event.get("pid"), int)
                and isinstance(event.get("ts"), int | float)):
            events.append(event)
        else:
            skipped += 1
    events.sort(key=lambda e: float(e["ts"]))  # processes append in nearly, not exactly, time order
    return events, skipped


def parse_since(text: str, first_ts: float) -> float:
    """``--since``: seconds after ``first_ts`` or an ISO date-time, as epoch seconds."""
    try:
        return first_ts + float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise TraceError(
            f"--since {text!r} is neither seconds since the trace's start (e.g. 2.5) nor an "
            "ISO date-time (e.g. 2025-01-31T14:05:00)"
        ) from None
    return moment.timestamp()  # a naive time is local time, as the timeline's clock reads


def _value(value: object) -> str:
    if isinstance(value, str):
        return value if value and " " not in value and "=" not in value else repr(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return json.dumps(value, default=repr) if isinstance(value, list | dict) else str(value)


def _fields(event: Event) -> str:
    return " ".join(f"{k}={_value(v)}" for k, v in event.items()
                    if k not in _COLUMNS and v is not None)


def _where(event: Event) -> str:
    return branch_of(event) or execution_of(event) or ""


def _process(event: Event) -> str:
    return f"{role_label(event.get('role'))}[{event.get('pid')}]"


def _colour(role: str) -> str:
    return _PALETTE[zlib.crc32(role.encode()) % len(_PALETTE)]


def timeline_rows(events: Sequence[Event], first_ts: float) -> list[tuple[str, ...]]:
    """The timeline's columns for each event: time, process, thread, level, event, where, fields."""
    return [(f"{float(e['ts']) - first_ts:10.3f}s", _process(e), str(e.get("thread") or ""),
             str(e.get("level") or ""), str(e.get("event")), _where(e), _fields(e))
            for e in events]


def print_timeline(events: Sequence[Event], first_ts: float, out: TextIO,
                   colour: bool) -> None:
    """Write the aligned timeline of ``events`` to ``out``, coloured if ``colour``."""
    rows = timeline_rows(events, first_ts)
    if not rows:
        return
    widths = [min(max(len(row[i]) for row in rows), cap)
              for i, cap in enumerate((12, 26, 24, 7, 30, 28))]
    paint = _Painter() if colour else None
    for event, row in zip(events, rows, strict=True):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        if paint is not None:
            level_style = _LEVEL_STYLE.get(row[3], "")
            styles = ("dim", _colour(str(event.get("role"))), "dim", level_style or "dim",
                      level_style or "bold", "cyan")
            cells = [paint(cell, style) for cell, style in zip(cells, styles, strict=True)]
            cells.append(paint(row[6], "dim" if row[3] == "debug" else ""))
            out.write("  ".join(cells).rstrip() + "\n")  # padding sits outside the codes
        else:
            out.write("  ".join([*cells, row[-1]]).rstrip() + "\n")


class _Painter:
    """Wraps text in a rich style's ANSI codes, computed once per style (rich's own
    per-line rendering costs ~0.2 ms a line: long traces are tens of thousands)."""

    def __init__(self) -> None:
        self._codes: dict[str, tuple[str, str]] = {}

    def __call__(self, text: str, style: str) -> str:
        body = text.rstrip()
        if not style or not body:
            return text
        codes = self._codes.get(style)
        if codes is None:
            prefix, _, suffix = Style.parse(style).render("\0", color_system=ColorSystem.STANDARD
                                                          ).partition("\0")
            codes = self._codes[style] = (prefix, suffix)
        return codes[0] + body + codes[1] + text[len(body):]


def write_perfetto(events: Sequence[Event], path: str | Path) -> dict[str, Any]:
    """Write ``events`` as Chrome trace-event JSON to ``path``; the written object."""
    data = chrome_trace(events)
    Path(path).write_text(json.dumps(data, separators=(",", ":"), default=repr),
                          encoding="utf-8")
    return data


def main(path: str, *, execution: str | None = None, branch: str | None = None,
         actor: str | None = None, since: str | None = None, perfetto: str | None = None,
         colour: str = "auto", out: TextIO | None = None) -> int:
    """Run ``durable-actors trace``; the exit code (0 on success, 2 on a bad file or filter)."""
    stream = out if out is not None else sys.stdout
    try:
        events, skipped = load_events(path)
        first_ts = float(events[0]["ts"]) if events else 0.0
        wanted = TraceFilter(
            execution=execution, branch=branch, actor=actor,
            since=None if since is None else parse_since(since, first_ts),
        )
    except TraceError as exc:
        print(f"durable-actors trace: {exc}", file=sys.stderr)
        return 2
    kept = wanted.select(events)
    if skipped:
        print(f"durable-actors trace: skipped {skipped} unreadable line(s) of {path}",
              file=sys.stderr)
    try:
        if perfetto is not None:
            data = write_perfetto(kept, perfetto)
            processes = sum(1 for e in data["traceEvents"] if e["name"] == "process_name")
            print(f"wrote {perfetto}: {len(kept)} events of {processes} processes as Chrome "
                  "trace-event JSON; open it in https://ui.perfetto.dev or chrome://tracing",
                  file=stream)
            return 0
        use_colour = colour == "always" or (colour == "auto" and stream.isatty())
        print_timeline(kept, first_ts, stream, use_colour)
        if not kept:
            print(f"no events in {path} match these filters ({len(events)} events in all)",
                  file=sys.stderr)
    except BrokenPipeError:  # `durable-actors trace t.jsonl | head` is fine
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())  # and so is the flush at exit
        return 0
    return 0


__all__ = ["TraceError", "TraceFilter", "load_events", "main", "parse_since", "print_timeline",
           "timeline_rows", "write_perfetto"]
