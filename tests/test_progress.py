"""``runtime.progress.track``: a rich progress bar over ``run.progress()``."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from actors.policies import BatchResult, BatchStatus
from actors.records import BranchStatus
from runtime import Timeout
from runtime.progress import track

RESULT = BatchResult((1, 2), (None, None), (BranchStatus.SUCCEEDED,) * 2, BatchStatus.ALL_COMPLETED)


class ScriptedRun:
    """An execution handle whose progress follows a script, one step per poll."""

    id = "exec-1"

    def __init__(self, *counts: dict[str, Any]) -> None:
        self._script = list(counts)
        self.polls = 0

    def progress(self) -> dict[str, Any]:
        self.polls += 1
        return self._script[min(self.polls, len(self._script)) - 1]

    def result(self, timeout: float | None = None) -> BatchResult:
        return RESULT


def counts(status: str, done: int, running: int, failed: int = 0) -> dict[str, Any]:
    return {"status": status, "total": 3, "done": done, "running": running, "suspended": 0,
            "failed": failed, "pending": 3 - done - running - failed}


def test_track_polls_until_the_execution_ends_and_returns_its_result() -> None:
    run = ScriptedRun(counts("RUNNING", 0, 3), counts("RUNNING", 2, 1),
                      counts("SUCCEEDED", 3, 0))
    out = io.StringIO()
    assert track(run, interval=0.001, console=Console(file=out, width=100)) is RESULT
    assert run.polls == 3
    assert "3/3" in out.getvalue() and "0 failed" in out.getvalue()


def test_track_raises_timeout_when_the_execution_does_not_end_in_time() -> None:
    run = ScriptedRun(counts("RUNNING", 0, 3))
    with pytest.raises(Timeout, match=r"'exec-1' did not finish within 0\.05s"):
        track(run, interval=0.001, timeout=0.05, console=Console(file=io.StringIO()))
