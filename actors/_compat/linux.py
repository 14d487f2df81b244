"""Linux tricks this project relies on, in one place, each with why and what it was checked on.

Checked on Linux 5.15 to 6.8 (x86-64), CPython 3.11 and 3.12. The shape tests are
``tests/test_compat_linux.py`` (the ``/proc`` child scan) and
``tests/test_compat_linux_snapshots.py`` (the fork and ``MADV`` half, and the
bench's readings); each fails when what is read here changes.

**The /proc child scan** (the process host):

* ``/proc/<pid>/stat``: state (3rd field) and parent pid (4th field) of every
  process, read to know whether multiprocess's forkserver still has live
  children (processes of the service's own forked from it) before it is
  stopped at shutdown. Without ``/proc`` (another OS) the answer is "no", and
  the forkserver is stopped as multiprocess itself would at exit.

**Fork snapshots** (``actors.refs``: ``ctx.save`` of a large value):

* ``fork_threaded()``: ``os.fork()`` of a multi-threaded worker. POSIX allows
  only async-signal-safe calls in such a child; the snapshot child runs the
  pickler alone and leaves by ``os._exit`` (``actors/refs/_fork_snapshot.py``
  says which locks it may meet). Why: the child pickles the value as of the fork
  (copy-on-write), so the branch's thread stalls ~2 ms instead of the whole
  pickling; ``docs/design.md`` has the figures. CPython 3.12+ warns on any fork
  of a threaded process: the warning is silenced for this module's fork only.
* ``outside_fork(data)``: bytes copied into an anonymous mapping marked
  ``MADV_WIPEONFORK`` (Linux >= 4.14; value 18, which Python 3.11's ``mmap``
  does not name): a child gets zero pages there instead of a copy, so a full
  blob cache adds nothing to a fork's cost. Elsewhere the bytes stay as they are.
* ``widen_pipe(fd)``: ``F_SETPIPE_SZ`` to 1 MB, so a child's snapshot crosses
  the pipe in fewer wake-ups of the reader.

**The bench's readings** (``runtime/tools/bench``): ``resident_mb()`` reads
``/proc/self/statm``, ``threads_and_rss_kb(pid)`` reads ``/proc/<pid>/status``,
``thread_page_faults()`` is ``getrusage(RUSAGE_THREAD)``. Each says "unknown"
(0 or an empty dict) where the file or the constant is missing.

    pid = fork_threaded()                   # 0 in the child, as os.fork
    entry = outside_fork(blob)              # an mmap on Linux, the bytes elsewhere
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import resource
import sys
import warnings

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


# -- fork snapshots (actors.refs) --------------------------------------------------------

# Linux >= 4.14; Python 3.11's mmap module does not name it. None: not on this platform.
WIPEONFORK: int | None = getattr(mmap, "MADV_WIPEONFORK",
                                 18 if sys.platform.startswith("linux") else None)
PIPE_BYTES = 1 << 20  # a snapshot child's pipe: 1 MB, 16x the default

# CPython 3.12+ warns on a fork of a threaded process, from the frame that forks: only
# this module's fork is silenced, a user's own fork still warns.
warnings.filterwarnings("ignore", message=r".*is multi-threaded, use of fork\(\)",
                        category=DeprecationWarning, module=__name__)


def can_fork() -> bool:
    """Whether this platform has ``os.fork`` (a snapshot is taken inline where it has not)."""
    return hasattr(os, "fork")


def fork_threaded() -> int:
    """``os.fork()`` in a process that runs other threads: 0 in the child, its pid in the parent.

    The child must run only code that takes no lock another thread may have held.
    """
    return os.fork()


def outside_fork(data: bytes) -> bytes | mmap.mmap:
    """``data`` copied into a mapping a fork does not copy, where the platform allows it."""
    if WIPEONFORK is None:
        return data
    try:
        region = mmap.mmap(-1, len(data), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        region.madvise(WIPEONFORK)
    except (OSError, ValueError):  # no memory for a mapping, or an older kernel: keep the bytes
        return data
    region[:] = data
    return region


def widen_pipe(fd: int) -> None:
    """Let the pipe ``fd`` hold ``PIPE_BYTES`` (Linux); elsewhere, or if refused, leave it."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


# -- the bench's readings (runtime/tools/bench) -----------------------------------------------

RUSAGE_THREAD: int = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)


def resident_mb() -> float:
    """This process's resident set in MB (from ``/proc/self/statm``; 0 where it is missing)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return 0.0


def threads_and_rss_kb(pid: int) -> dict[str, int]:
    """``{"Threads": n, "VmRSS": kB}`` of ``pid`` from ``/proc/<pid>/status`` ({} if missing)."""
    found: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError, IndexError), open(
            f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("Threads", "VmRSS"):
                found[key] = int(value.split()[0])
    return found


def thread_page_faults() -> int:
    """Minor page faults of the calling thread so far (the process's where not on Linux)."""
    return resource.getrusage(RUSAGE_THREAD).ru_minflt


__all__ = ["PIPE_BYTES", "RUSAGE_THREAD", "WIPEONFORK", "can_fork", "fork_threaded",
           "has_live_children", "outside_fork", "resident_mb", "state_and_parent",
           "thread_page_faults", "threads_and_rss_kb", "widen_pipe"]
