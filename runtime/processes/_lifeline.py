"""Knowing that a process has ended by watching the process itself, not the pipes around it.

With the ``forkserver`` start method every actor process is a child of
multiprocess's forkserver helper, and the only news the service has of it are
two pipes through that helper: the exit code and a "parent alive" sentinel. A
``kill -9`` of the forkserver closes them while every actor still runs, so the
service would take its actors for crashed, and actors dropped by the service
would take the service for dead. Both sides therefore watch processes by pid:

* ``ChildProcess`` (service side): an actor process's handle; its ``sentinel``
  is a pidfd (Linux >= 5.3, ``os.pidfd_open``), readable exactly when that
  process has exited, whoever its parent is;
* ``await_exit`` / ``watch_service`` (child side): block until the service
  process itself has exited.

Where pidfds are not available, both fall back to multiprocess's own
sentinels, polled together with ``os.kill(pid, 0)`` on the child side.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import weakref
from collections.abc import Callable
from typing import Any

import multiprocess
from multiprocess.connection import wait

from actors import tracelog
from runtime.processes._exits import ProcessExit

log = tracelog.get_logger("runtime.lifeline")

_POLL_INTERVAL = 0.5  # seconds between checks of the fallback watch (no pidfd)
UNKNOWN_EXIT = 255  # what multiprocess reports when the forkserver that knew the code is gone


def open_pidfd(pid: int) -> int | None:
    """A pidfd for ``pid``; None where the OS has none (the fallbacks are used then).

    Raises ``ProcessLookupError`` when ``pid`` has already exited and been reaped.
    """
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
    except ProcessLookupError:
        raise
    except OSError:  # ENOSYS (old kernel), EPERM (seccomp): watch without it
        return None
    return fd


def _readable(fd: int, timeout: float | None) -> bool:
    ready, _, _ = select.select([fd], [], [], timeout)
    return bool(ready)


def await_exit(pid: int, fallback_sentinel: int | None = None) -> None:
    """Block until process ``pid`` has exited (it need not be our child).

    ``fallback_sentinel`` is a handle that becomes ready when ``pid`` exits,
    used between ``os.kill(pid, 0)`` polls where there is no pidfd.
    """
    try:
        pidfd = open_pidfd(pid)
    except ProcessLookupError:
        return
    if pidfd is not None:
        try:
            _readable(pidfd, None)
        finally:
            os.close(pidfd)
        return
    while True:
        if fallback_sentinel is not None and wait([fallback_sentinel], _POLL_INTERVAL):
            return
        if fallback_sentinel is None:
            threading.Event().wait(_POLL_INTERVAL)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            pass  # it exists, under another user: a reused pid is the price of no pidfd


def watch_service(service_pid: int, on_gone: Callable[[], None]) -> threading.Thread:
    """Call ``on_gone`` on a daemon thread once the service process ``service_pid`` exits.

        watch_service(spec.service_pid, lambda: os._exit(EXIT_ORPHANED))
    """
    parent = multiprocess.parent_process()
    fallback = parent.sentinel if parent is not None and parent.pid == service_pid else None

    def watch() -> None:
        await_exit(service_pid, fallback)
        on_gone()

    thread = threading.Thread(target=watch, name="da-service-watch", daemon=True)
    thread.start()
    return thread


class ChildProcess:
    """An actor process as the service sees it: watched by pid, whoever forked it.

    Wraps the ``multiprocess.Process`` that started it with the same small
    surface (``pid``, ``sentinel``, ``exitcode``, ``is_alive``, ``join``,
    ``kill``). Alive means the process runs, read from its pidfd: a dead
    forkserver makes multiprocess report its children as exited with 255 while
    they run on. Once it has exited, the exit code comes from multiprocess
    (the forkserver writes it); with the forkserver gone it is ``UNKNOWN_EXIT``.

        started = ctx.Process(target=child_main, args=(spec,)); started.start()
        process = ChildProcess(started)
        wait([process.sentinel]); process.join(); print(process.exitcode)
    """

    def __init__(self, process: Any) -> None:
        self._process = process
        self.pid: int = process.pid
        self.name: str = process.name
        try:
            self._pidfd = open_pidfd(self.pid)
        except ProcessLookupError:
            self._pidfd = None  # exited and reaped already: multiprocess knows its code
        if self._pidfd is not None:
            self._finalizer = weakref.finalize(self, _close_quietly, self._pidfd)
            self._finalizer.atexit = False  # a system's own atexit shutdown still needs it

    @property
    def sentinel(self) -> int:
        """A handle that becomes ready when the process has exited (for ``wait``)."""
        return self._pidfd if self._pidfd is not None else int(self._process.sentinel)

    def _exited(self, timeout: float | None) -> bool:
        if self._pidfd is None:
            self._process.join(timeout)
            return self._process.exitcode is not None
        return _readable(self._pidfd, timeout)

    def is_alive(self) -> bool:
        return not self._exited(0)

    def join(self, timeout: float | None = None) -> None:
        """Wait up to ``timeout`` seconds for the process to exit, then collect its code."""
        if self._exited(timeout):
            # The code travels from whoever reaped it (us, or the forkserver): a moment at most.
            self._process.join(1.0)

    @property
    def exitcode(self) -> int | None:
        """None while it runs; its exit code (negative: the signal) once it has exited."""
        if not self._exited(0):
            return None
        if self._process.exitcode is None:
            self._process.join(1.0)  # reaped this moment: its code is on the way
        code: int | None = self._process.exitcode
        return UNKNOWN_EXIT if code is None else code

    @property
    def alive(self) -> bool:
        """Whether the process runs (``ProcessHandle``)."""
        return self.is_alive()

    @property
    def exit(self) -> ProcessExit | None:
        """None while it runs; how it ended once it has (``ProcessHandle``)."""
        code = self.exitcode
        return None if code is None else ProcessExit(code)

    def kill(self) -> None:
        """SIGKILL the process if it still runs (never a process that reused its pid)."""
        if self._pidfd is None:
            self._process.kill()
            return
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
