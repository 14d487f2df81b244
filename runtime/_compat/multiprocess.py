"""multiprocess's private internals this project relies on, in one place.

Checked against multiprocess 0.70.19 (``pyproject.toml`` bounds it below 0.71);
``tests/test_compat_multiprocess.py`` fails when one of them changes shape.

* ``multiprocess.spawn.get_preparation_data(name)``: wrapped so that our own
  children (processes named ``da-*``) never re-run the service's ``__main__``
  (its ``init_main_from_path`` / ``init_main_from_name`` entries are dropped):
  actor classes travel by value, and a service script works without the
  ``if __name__ == "__main__"`` idiom.
* ``multiprocess.forkserver._forkserver`` (``_lock``, ``_forkserver_pid``,
  ``_forkserver_alive_fd``, ``_forkserver_address``): read and reset to stop
  the forkserver when the last system of the process closes, so no helper
  outlives the systems that started it; the next start launches a new one.
* ``multiprocess.resource_tracker._resource_tracker`` (``_lock``, ``_fd``,
  ``_pid``, ``_send(cmd, name, rtype)``): ``_send`` is wrapped to know whether the
  service registered resources of its own (then the tracker is left running),
  and the tracker is stopped like the forkserver otherwise.
* ``multiprocess.util.is_abstract_socket_namespace(address)``: whether the
  forkserver's socket has a file to remove.
* ``multiprocess.forkserver.read_signed(fd)``: the frame a start waits in for the
  forkserver's answer (``waits_on_the_forkserver``, for tests that stop it there).
* ``_forkserver._stop()`` and ``_resource_tracker._stop()``: multiprocess's own stop of
  its helpers, for tests that start them without a system (``stop_helpers_now``).
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
from typing import Any

import multiprocess
from multiprocess import forkserver, resource_tracker, spawn, util

from actors import tracelog
from actors._compat.linux import has_live_children

log = tracelog.get_logger("runtime.processes")

_HELPER_EXIT_WAIT = 2.0  # seconds a stopped forkserver or tracker gets to exit before we go on
_users: set[object] = set()  # the open process hosts of this process
_users_lock = threading.Lock()


def _without_main(original: Any) -> Any:
    """Wrap multiprocess's preparation data so our children never re-run ``__main__``."""

    def preparation_data(name: str) -> Any:
        data = original(name)
        if name.startswith("da-"):
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
        return data

    preparation_data.__wrapped__ = original  # type: ignore[attr-defined]
    return preparation_data


def context(method: str, preload: list[str]) -> Any:
    """multiprocess's context for ``method``, our children never re-running ``__main__``.

        ctx = context("forkserver", ["runtime.processes"])
    """
    if not hasattr(spawn.get_preparation_data, "__wrapped__"):
        spawn.get_preparation_data = _without_main(spawn.get_preparation_data)
    ctx = multiprocess.get_context(method)
    if method == "forkserver":
        # Children fork from a server that has already imported the runtime, so a
        # spawn costs a fork, not an interpreter start (see docs/design.md).
        ctx.set_forkserver_preload(preload)
    return ctx


class _TrackerWatch:
    """Whether the service relies on multiprocess's resource tracker for resources of its own.

    Stopping the tracker makes it unlink everything still registered with it: a
    semaphore of the service's own ``multiprocess`` lock or pool, which a process
    started later can then no longer open. Every registration of this process
    passes through the tracker's ``_send``, so a thin wrapper there keeps the
    names registered and not yet unregistered; a tracker that was running before
    the first system started is the service's too.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._registered: set[tuple[str, str]] = set()
        self.found_running = False  # a tracker ran before the first live system started

    def install(self) -> None:
        """Wrap the tracker's ``_send`` once per process; note whether it already runs."""
        tracker = resource_tracker._resource_tracker
        if tracker._pid is not None:
            self.found_running = True
        send = tracker._send
        if getattr(send, "__wrapped__", None) is not None:
            return

        def counting_send(cmd: str, name: str, rtype: str) -> None:
            send(cmd, name, rtype)
            with self._lock:
                if cmd == "REGISTER":
                    self._registered.add((name, rtype))
                elif cmd == "UNREGISTER":
                    self._registered.discard((name, rtype))

        counting_send.__wrapped__ = send  # type: ignore[attr-defined]
        tracker._send = counting_send

    def service_uses_it(self) -> str | None:
        """Why the tracker must keep running, or None when only our systems used it."""
        with self._lock:
            held = len(self._registered)
        if held:
            return f"the service holds {held} multiprocess resource(s) registered with it"
        if self.found_running:
            return "it was running before the system started"
        return None


_tracker_watch = _TrackerWatch()


def helpers_acquired(user: object) -> None:
    """``user`` (a process host) starts children: its helpers are ours until it releases them."""
    with _users_lock:
        if not _users:
            _tracker_watch.install()
        _users.add(user)


def helpers_released(user: object, forkserver_used: bool) -> None:
    """``user`` is closed; with no other user left, stop the helpers it may have started."""
    with _users_lock:
        _users.discard(user)
        if forkserver_used and not _users:
            _stop_helpers()


def _stop_helpers() -> None:
    """Stop the forkserver and its resource tracker once nothing in this process needs them.

    Both are children of the service process; left running they would outlive
    the system that started them. But the service may fork processes of its own
    from the same forkserver (a ``multiprocess`` forkserver pool): each of them
    holds both helpers' pipes, and the tracker, once stopped, would unlink the
    semaphores those processes still use. So while the forkserver has live
    children (ours are gone by now) both are left running; they go with the
    service process. The tracker is left running, too, while the service holds
    resources of its own registered with it (``_TrackerWatch``). A stopped helper
    gets ``_HELPER_EXIT_WAIT`` to exit, and the next user starts a fresh one.
    """
    server = forkserver._forkserver
    with server._lock:
        pid, alive, address = (server._forkserver_pid, server._forkserver_alive_fd,
                               server._forkserver_address)
        if pid is not None and has_live_children(pid):
            log.debug("process.forkserver_kept", pid=pid,
                      reason="processes of the service's own were forked from it")
            return
        if pid is not None and alive is not None:
            server._forkserver_pid = server._forkserver_alive_fd = None
            server._forkserver_address = None
            os.close(alive)  # EOF on its "alive" pipe asks it to exit
            _reap(pid, "forkserver")
            if address and not util.is_abstract_socket_namespace(address):
                with contextlib.suppress(OSError):
                    os.unlink(address)
    kept_because = _tracker_watch.service_uses_it()
    if kept_because is not None:
        log.debug("process.resource_tracker_kept", reason=kept_because)
        return
    tracker = resource_tracker._resource_tracker
    with tracker._lock:
        if tracker._fd is not None and tracker._pid is not None:
            pid = tracker._pid
            os.close(tracker._fd)
            tracker._fd = tracker._pid = None
            _reap(pid, "resource tracker")


def _reap(pid: int, what: str) -> None:
    """Collect the exit of child ``pid``, or hand that to a daemon thread after a short wait."""
    with contextlib.suppress(OSError):
        pidfd = os.pidfd_open(pid)
        try:
            select.select([pidfd], [], [], _HELPER_EXIT_WAIT)  # readable once it has exited
        finally:
            os.close(pidfd)
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return  # reaped already
    if not done:
        log.debug("process.helper_still_used", helper=what, pid=pid,
                  reason="processes forked from it still run; it exits with them")
        threading.Thread(target=_wait_for, args=(pid,), name="da-reap", daemon=True).start()


def _wait_for(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def forkserver_pid() -> int | None:
    """The pid of this process's forkserver helper, while one runs.

        os.kill(forkserver_pid(), signal.SIGKILL)  # a test of a lost helper
    """
    pid: int | None = forkserver._forkserver._forkserver_pid
    return pid


def stop_helpers_now() -> None:
    """Stop the forkserver and the resource tracker as multiprocess itself does, whoever uses
    them (for tests that start them without a system)."""
    with contextlib.suppress(OSError):  # a killed forkserver left its socket file behind
        forkserver._forkserver._stop()
    resource_tracker._resource_tracker._stop()


def waits_on_the_forkserver(thread: threading.Thread) -> bool:
    """Whether ``thread`` is inside a start, waiting for the forkserver to answer with a pid.

        wait_until(lambda: waits_on_the_forkserver(spawning_thread), timeout=20)
    """
    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        if frame.f_code is forkserver.read_signed.__code__:
            return True
        frame = frame.f_back
    return False


__all__ = [
    "context",
    "forkserver_pid",
    "helpers_acquired",
    "helpers_released",
    "stop_helpers_now",
    "waits_on_the_forkserver",
]
