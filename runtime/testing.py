"""Helpers for testing code that runs on an ``ActorSystem``: deadlines, traces, processes.

The pytest plugin (``runtime.pytest_plugin``, loaded automatically once
durable-actors is installed) wraps these in fixtures; they work without pytest too.

    trace = TraceEvents("trace.jsonl")
    event = trace.wait_for("step.succeeded", step="download", timeout=10)
    assert event["role"] == "actor:worker-0"
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import psutil

T = TypeVar("T")

Predicate = Callable[[Mapping[str, Any]], bool]


def wait_until(condition: Callable[[], T], timeout: float = 10.0, interval: float = 0.01) -> T:
    """Poll ``condition`` until it returns something truthy, and return that.

    Raises ``AssertionError`` after ``timeout`` seconds: a deadline, not a sleep.

        pid = wait_until(lambda: ref.proxy().pid().get(), timeout=5)
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {condition}")
        time.sleep(interval)


class TraceEvents:
    """The events that every process of a system wrote to its trace, for assertions.

    Every process appends to the same JSON-lines file
    (``SystemConfig(trace_path=...)``), so this sees the events of all of them.
    Reading is incremental: each call parses only the lines written since the last.

        trace = TraceEvents(tmp_path / "trace.jsonl")
        trace.wait_for("branch.succeeded", branch_id="nightly-1/0", timeout=10)
        assert trace.named("step.succeeded", step="resize") == []
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._events: list[dict[str, Any]] = []
        self._offset = 0
        self._partial = b""

    def all(self) -> list[dict[str, Any]]:
        """Every event written so far, in file order."""
        try:
            with self.path.open("rb") as trace:
                trace.seek(self._offset)
                chunk = trace.read()
        except FileNotFoundError:
            return list(self._events)
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()  # a line still being written stays for the next call
        for line in lines:
            if line.strip():
                self._events.append(json.loads(line))
        return list(self._events)

    def named(self, event: str | None = None, *, where: Predicate | None = None,
              **fields: Any) -> list[dict[str, Any]]:
        """The events so far named ``event`` (any name if ``None``) whose fields equal ``fields``.

        ``where`` is an extra test on the whole event.

            trace.named("step.succeeded", execution_id="e-1", where=lambda e: e["attempt"] > 1)
        """
        return [e for e in self.all() if _matches(e, event, where, fields)]

    def wait_for(self, event: str | None = None, *, timeout: float = 10.0,
                 where: Predicate | None = None, **fields: Any) -> dict[str, Any]:
        """The first event that matches (as in ``named``), waiting up to ``timeout`` seconds.

        Raises ``AssertionError`` with what the trace holds if none arrives in time.

            suspended = trace.wait_for("branch.suspended", branch_id="e-1/0", timeout=5)
        """
        return self.wait_for_count(1, event, timeout=timeout, where=where, **fields)[0]

    def wait_for_count(self, count: int, event: str | None = None, *, timeout: float = 10.0,
                       where: Predicate | None = None, **fields: Any) -> list[dict[str, Any]]:
        """Wait until at least ``count`` events match; all the matching events.

            done = trace.wait_for_count(3, "branch.succeeded", execution_id="e-1")
        """
        deadline = time.monotonic() + timeout
        while True:
            found = self.named(event, where=where, **fields)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(self._missing(count, len(found), event, fields, timeout))
            time.sleep(0.01)

    def _missing(self, count: int, found: int, event: str | None, fields: Mapping[str, Any],
                 timeout: float) -> str:
        events = self.all()
        wanted = " ".join([repr(event or "any event"), *(f"{k}={v!r}" for k, v in fields.items())])
        same_name = [e for e in events if event is None or e.get("event") == event]
        lines = [f"expected {count} {wanted} in {self.path} within {timeout}s, found {found}; "
                 f"the trace has {len(events)} events"]
        if same_name:
            lines.append(f"events named {event!r} (first 5): {same_name[:5]}")
        lines.append(f"last events: {[e.get('event') for e in events[-10:]]}")
        return "\n".join(lines)


def _matches(event: Mapping[str, Any], name: str | None, where: Predicate | None,
             fields: Mapping[str, Any]) -> bool:
    if name is not None and event.get("event") != name:
        return False
    if any(event.get(key, _ABSENT) != value for key, value in fields.items()):
        return False
    return where is None or where(event)


_ABSENT = object()


def descendant_pids(pid: int | None = None) -> set[int]:
    """Every live process descended from ``pid`` (this process by default); needs psutil."""
    try:
        children = psutil.Process(pid if pid is not None else os.getpid()).children(recursive=True)
    except psutil.NoSuchProcess:
        return set()
    alive = set()
    for child in children:
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return alive


def wait_for_exit(pids: Iterable[int], timeout: float = 10.0) -> list[str]:
    """Wait until none of ``pids`` runs; a description of those still running at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        alive: list[str] = []
        for pid in pids:
            try:
                process = psutil.Process(pid)
                if process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{pid} {' '.join(process.cmdline()[:3])}")
            except psutil.NoSuchProcess:
                continue
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.02)


__all__ = ["TraceEvents", "descendant_pids", "wait_for_exit", "wait_until"]
