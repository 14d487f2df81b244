"""A progress bar for an execution, drawn by rich from ``run.progress()``.

    from runtime.progress import track

    run = system.map(Resize, items, execution_id="nightly-1")
    result = track(run)            # a live bar until the execution ends; its BatchResult

On a terminal the bar redraws in place; elsewhere (a log file, CI) rich prints
it once at the end. Polling asks the coordinator in the service process, so it
costs no store reads.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from actors.policies import BatchResult
from runtime.errors import Timeout

FINISHED = ("SUCCEEDED", "FAILED")


class Trackable(Protocol):
    """What ``track`` needs of an execution handle (``runtime.durable.Execution``)."""

    id: str

    def progress(self) -> dict[str, Any]: ...

    def result(self, timeout: float | None = None) -> BatchResult: ...


def describe(counts: dict[str, Any]) -> str:
    """``3 running · 1 suspended · 0 failed`` from ``run.progress()``'s counts."""
    return (f"{counts.get('running', 0)} running · {counts.get('suspended', 0)} suspended · "
            f"{counts.get('failed', 0)} failed")


def track(run: Trackable, *, description: str | None = None, interval: float = 0.1,
          timeout: float | None = None, console: Console | None = None,
          transient: bool = False) -> BatchResult:
    """Show a bar of ``run``'s finished branches until it ends; return ``run.result()``.

    ``timeout`` bounds the whole wait (``runtime.Timeout`` after it); ``transient``
    removes the bar when done. The bar counts top-level branches: done or failed
    out of the total, with running, suspended and failed counts beside it.

        result = track(system.map(Thumbnail, photos), description="thumbnails")
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TaskProgressColumn(), TextColumn("{task.fields[detail]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=transient) as bar:
        task = bar.add_task(description or run.id, total=None, detail="")
        while True:
            counts = run.progress()
            bar.update(task, total=counts["total"],
                       completed=counts.get("done", 0) + counts.get("failed", 0),
                       detail=describe(counts))
            if counts["status"] in FINISHED:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise Timeout(f"execution {run.id!r} did not finish within {timeout}s")
            time.sleep(interval)
    left = None if deadline is None else max(0.0, deadline - time.monotonic())
    return run.result(timeout=left)


__all__ = ["Trackable", "describe", "track"]
