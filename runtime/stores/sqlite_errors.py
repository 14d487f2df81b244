"""How SQLite's failures become typed ``StoreError``s that say what to do, and the one
refusal that is waited out rather than reported (``into_wal``).

The driver raises ``sqlite3.Error`` with a result code; a user needs to know
whether another writer holds the file, the disk is full, the file or its
filesystem is read-only, or the path is wrong. ``typed_error`` maps one to the
other; ``unwritable`` says, before SQLite tries, why a writer could not write.

    problem = unwritable("state.db", read_only=False)  # None, or a sentence
    typed = typed_error(err, "state.db", lock_timeout=5.0, read_only=False, opening=True)
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from actors.errors import (
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreReadOnlyError,
    StoreUnavailableError,
)

# Primary result codes (the low byte of an extended code).
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26


def read_only_hint(read_only: bool) -> str:
    """What to do about a store that cannot be written, depending on how it was opened."""
    if read_only:
        return "it was opened with read_only=True (mode=ro); open it read-write to write"
    return "make it writable, or open it with read_only=True (sqlite:///...?mode=ro) to read"


def unwritable(path: str, read_only: bool) -> str | None:
    """Why a writer cannot write to the store at ``path``, or None.

    The ``-wal`` and ``-shm`` files count as much as the file: SQLite maps the
    ``-shm`` file into memory, and a process that writes to an unwritable mapping
    is killed by SIGBUS instead of getting an error.
    """
    file = Path(path)
    directory = file.resolve().parent
    hint = read_only_hint(read_only)
    with contextlib.suppress(OSError):
        if directory.is_dir() and os.statvfs(directory).f_flag & os.ST_RDONLY:
            return f"the filesystem holding the store at {file} is mounted read-only; {hint}"
    for part in (file, Path(f"{file}-wal"), Path(f"{file}-shm")):
        if part.exists() and not os.access(part, os.W_OK):
            return f"the store file {part} is read-only; {hint}"
    if directory.is_dir() and not os.access(directory, os.W_OK):
        return (
            f"the directory {directory} of the store is read-only, and WAL mode writes "
            f"{file.name}-wal and {file.name}-shm beside the file; {hint}"
        )
    return None


def typed_error(
    err: sqlite3.Error, path: str, *, lock_timeout: float, read_only: bool, opening: bool
) -> StoreError | None:
    """The ``StoreError`` that says what ``err`` means for the store at ``path``; None if none
    fits (the caller re-raises the driver's error as it is)."""
    code = (getattr(err, "sqlite_errorcode", None) or 0) & 0xFF
    where = f"the SQLite store at {path}"
    if code in (_BUSY, _LOCKED):
        return StoreLockedError(
            f"{where} stayed locked by another writer for more than {lock_timeout}s; "
            "stop the other process using it (one system per store) or raise lock_timeout"
        )
    if code == _READONLY:
        return StoreReadOnlyError(f"{where} is read-only ({err}); {read_only_hint(read_only)}")
    directory = Path(path).resolve().parent
    if code == _CANTOPEN or (opening and code in (_NOTADB, _CORRUPT)):
        if not directory.is_dir():
            reason = f"the directory {directory} does not exist; create it or pick another path"
        elif Path(path).is_dir():
            reason = "that path is a directory; give the path of a file"
        elif code == _CANTOPEN:
            reason = f"{err}; check the path and its permissions"
        else:
            reason = f"{err}; it is not a durable-actors SQLite store, choose another path"
        return StoreUnavailableError(f"cannot open {where}: {reason}")
    if code == _FULL:
        return StoreFullError(
            f"{where} could not write: the disk is full; free space and it is retried")
    if code == _IOERR and not read_only:
        problem = unwritable(path, read_only)  # a file or its filesystem turned read-only under us
        if problem is not None:
            return StoreReadOnlyError(f"{where} could not write ({err}): {problem}")
    if code in (_IOERR, _CORRUPT, _NOTADB):
        return StoreError(f"{where} failed ({err}); check the disk and the file, then retry")
    return None


_WAL_RETRY = 0.005  # seconds between tries to switch a new store to WAL while it is busy


def into_wal(conn: sqlite3.Connection, lock_timeout: float) -> Any:
    """``PRAGMA journal_mode = WAL``, retried for ``lock_timeout`` seconds while refused.

    On a new store still in rollback mode, a second process switching it to WAL
    while the first writes gets "database is locked" at once: SQLite skips the
    busy handler there to avoid a deadlock. Once the first commits, it succeeds.

        journal = into_wal(conn, 5.0)   # "wal"
    """
    deadline = time.monotonic() + lock_timeout
    while True:
        try:
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(_WAL_RETRY)


__all__ = ["into_wal", "read_only_hint", "typed_error", "unwritable"]
