"""Whether a process of this host is gone, for taking over a dead owner's leases at once.

An execution's lease normally frees itself when its owner stops renewing it,
``lease_seconds`` later. When the owner ran on this very host and its process
is gone (``kill -9``, a crash), waiting that long helps nobody: its executions
are claimed at once. A process of another host is never judged from here, and a
pid that was reused looks alive: both only mean waiting for the lease to expire.

``os.pidfd_open`` (Linux 5.3+) refers to the process itself, so a process that
exited and waits to be reaped (a zombie) counts as gone; elsewhere a signal 0
probe stands in.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket

from actors.ownership import ExecutorInfo

HOST = socket.gethostname()


def process_gone(pid: int) -> bool:
    """Whether process ``pid`` of this host has exited (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (OSError, AttributeError):
        return _probe_gone(pid)
    try:
        readable, _, _ = select.select([fd], [], [], 0)  # readable once it has exited
        return bool(readable)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def _probe_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def executor_is_dead(info: ExecutorInfo) -> bool:
    """Whether an executor's service process, known to run on this host, is gone."""
    return info.host == HOST and info.pid != os.getpid() and process_gone(info.pid)


def this_executor(executor_id: str) -> ExecutorInfo:
    return ExecutorInfo(executor_id, HOST, os.getpid())


__all__ = ["HOST", "executor_is_dead", "process_gone", "this_executor"]
