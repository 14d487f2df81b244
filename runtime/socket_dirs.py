"""The private directory of a system's sockets, and the ones killed services left behind.

Each system binds its sockets in a directory of its own under the temporary
directory, ``durable-actors-*``, which only its owner can read (``mkdtemp``
makes it 0700). A service killed with ``kill -9`` cannot remove it, so the pid
of the process that made it is written into it (``owner``), and every system
that starts removes the directories of its user whose owner process is gone.
A directory without a readable owner (being made this very moment, or made by
an older version) is left alone, and so is one whose owner pid runs again as
another process: a few bytes kept rather than a live system's sockets removed.

    path = make_socket_dir()          # /tmp/durable-actors-k2j4x9/, owner: this pid
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

from actors import tracelog

log = tracelog.get_logger("runtime.socket_dirs")

PREFIX = "durable-actors-"
OWNER_FILE = "owner"


def make_socket_dir() -> str:
    """A new private directory for this process's system, once stale ones are removed."""
    remove_stale_socket_dirs()
    path = tempfile.mkdtemp(prefix=PREFIX)
    staged = os.path.join(path, OWNER_FILE + ".new")
    with open(staged, "w") as owner:
        owner.write(f"{os.getpid()}\n")
    os.replace(staged, os.path.join(path, OWNER_FILE))  # never seen half-written
    return path


def remove_stale_socket_dirs(parent: str | None = None) -> list[str]:
    """Remove this user's socket directories whose owner process is gone; their paths."""
    parent = tempfile.gettempdir() if parent is None else parent
    removed: list[str] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    uid = os.getuid()
    for entry in entries:
        if not entry.name.startswith(PREFIX):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat().st_uid != uid:
                continue
        except OSError:
            continue  # removed meanwhile
        owner = owner_of(entry.path)
        if owner is None or _running(owner):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.path)
    if removed:
        log.info("system.stale_socket_dirs_removed", count=len(removed),
                 reason="their services were killed before they could remove them")
    return removed


def owner_of(path: str) -> int | None:
    """The pid written in a socket directory, or None when there is none to read."""
    with contextlib.suppress(OSError, ValueError), open(os.path.join(path, OWNER_FILE)) as owner:
        return int(owner.read().strip())
    return None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process holds that pid: not ours to judge
    return True


__all__ = ["OWNER_FILE", "PREFIX", "make_socket_dir", "owner_of", "remove_stale_socket_dirs"]
