"""How a hosted process ended, as an error object; and the handle a process host gives out.

A backend (local processes today, Ray actors next) hands the host a
``ProcessHandle`` per started process: whether it runs, a way to kill it, and
once it has ended a ``ProcessExit`` that says how, for people and for code.
Nothing about sentinels, exit codes or socket paths is needed to use one.
"""

from __future__ import annotations

import signal
from typing import Any, Protocol


class ProcessExit(Exception):
    """How a process ended: killed by a signal, its start failed, or it exited with a code.

        exit = ProcessExit(code=-9)
        str(exit)      # "SIGKILL"
        exit.signal    # signal.SIGKILL
    """

    def __init__(self, code: int | None, boot_error: BaseException | None = None,
                 before_ready: bool = False) -> None:
        self.code = code
        self.boot_error = boot_error
        self.before_ready = before_ready  # it ended while still starting
        super().__init__(self.describe())

    def __reduce__(self) -> tuple[Any, ...]:
        return (ProcessExit, (self.code, self.boot_error, self.before_ready))

    @classmethod
    def of(cls, code: int | None, ready: Any) -> ProcessExit:
        """The exit of a process with exit ``code`` whose boot answered (or not) on ``ready``."""
        return cls(code, boot_error_of(ready), before_ready=ready is not None and not ready.done())

    @property
    def signal(self) -> signal.Signals | None:
        """The signal that ended it, if one did (and is known to this OS)."""
        if self.code is None or self.code >= 0:
            return None
        try:
            return signal.Signals(-self.code)
        except ValueError:
            return None

    def describe(self) -> str:
        """For people: a signal's name, a boot error, an exit code."""
        code = self.code
        if code is not None and code < 0:
            found = self.signal
            name = found.name if found is not None else f"signal {-code}"
            where = " before it was ready (while starting, e.g. opening its store)" if (
                self.before_ready) else ""
            return f"{name}{where}"
        if self.boot_error is not None:
            error = self.boot_error
            return f"its start failed with {type(error).__name__}: {error}"
        return f"exit code {code}"


def boot_error_of(ready: Any) -> BaseException | None:
    """The error a child's boot reported (its constructor raised), if it did."""
    if ready is not None and ready.done():
        try:
            ready.get(timeout=0)
        except BaseException as exc:
            return exc
    return None


class ProcessHandle(Protocol):
    """One started process, whatever started it (``ChildProcess`` is the local one)."""

    @property
    def alive(self) -> bool:
        """Whether the process runs."""

    @property
    def exit(self) -> ProcessExit | None:
        """None while it runs; how it ended once it has."""

    def kill(self) -> None:
        """End it now, if it still runs."""


__all__ = ["ProcessExit", "ProcessHandle", "boot_error_of"]
