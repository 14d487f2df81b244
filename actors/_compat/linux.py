"""Linux tricks this project relies on, in one place.

Checked on Linux 5.15 to 6.8; ``tests/test_compat_linux.py`` fails when the
format read here changes.

## /proc child scan (the process host)

* ``/proc/<pid>/stat``: state (3rd field) and parent pid (4th field) of every
  process, read to know whether multiprocess's forkserver still has live
  children (processes of the service's own forked from it) before it is
  stopped at shutdown. Without ``/proc`` (another OS) the answer is "no", and
  the forkserver is stopped as multiprocess itself would at exit.
"""

from __future__ import annotations

import contextlib
import os

# -- /proc child scan (the process host) ------------------------------------------------------


def has_live_children(pid: int) -> bool:
    """Whether a process other than a zombie has ``pid`` as its parent (False without /proc).

        has_live_children(os.getpid())  # True while a child of ours runs
    """
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    found = state_and_parent(f.read())
            except OSError:
                continue  # gone meanwhile
            if found is not None and found[0] != "Z" and found[1] == pid:
                return True
    return False


def state_and_parent(stat: str) -> tuple[str, int] | None:
    """A ``/proc/<pid>/stat`` line's state and parent pid; None for a process gone meanwhile.

    A process that exits while it is read can leave the read empty (seen in CI).
    The name, in parentheses, may hold spaces and parentheses itself: read after the last.

        state_and_parent("12 (a (b) c) S 1 12 12") == ("S", 1)
    """
    end = stat.rfind(")")
    fields = stat[end + 2:].split(maxsplit=2) if end >= 0 else []
    if len(fields) < 2 or not fields[1].isdigit():
        return None
    return fields[0], int(fields[1])


__all__ = ["has_live_children", "state_and_parent"]
