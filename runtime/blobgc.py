"""Collecting the blobs of a deleted execution that nothing else refers to.

Blobs are content-addressed and shared: a value saved by two executions is one
file. Deleting an execution may delete a blob only if no other execution refers
to it, directly in its rows or through another blob (a Ref nested in a saved
value). Refs travel in stored bytes as pickles of ``actors.ref._restore`` with
the 32-byte digest as an argument, so references are found by walking the
pickle opcodes of payloads that name ``_restore``, without loading user
classes; anything found that merely looks like a digest only keeps a blob.

A blob written or reused within ``GRACE`` seconds is kept whatever the scan
says: a checkpoint that names it may be on its way to the store (a save that
found the blob stored already, whose checkpoint is not committed yet).

Cost: every stored payload of the other executions is read once, and every
blob they reach; this is an administrative operation, not a hot path.
"""

from __future__ import annotations

import contextlib
import os
import pickletools
import time
from collections.abc import Iterable
from pathlib import Path

from actors import tracelog
from actors.store import Store

log = tracelog.get_logger("runtime.blobgc")

GRACE = 600.0  # seconds a recently written or reused blob is kept
_MARK = b"_restore"
_DIGEST_BYTES = 32


def digests_in(data: bytes) -> set[str]:
    """The hex digests of the Refs pickled in ``data`` (a superset: never misses one)."""
    if _MARK not in data:
        return set()
    found: set[str] = set()
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name in ("SHORT_BINBYTES", "BINBYTES", "BINBYTES8") and isinstance(
                    arg, bytes) and len(arg) == _DIGEST_BYTES:
                found.add(arg.hex())
    except Exception:  # not a pickle, or a truncated one: nothing more to find in it
        pass
    return found


def _reachable(roots: Iterable[bytes], directory: Path) -> set[str]:
    """Digests referred to by ``roots``, and by the blobs they reach, transitively."""
    todo = set().union(*(digests_in(r) for r in roots)) if roots else set()
    seen: set[str] = set()
    while todo:
        digest = todo.pop()
        if digest in seen:
            continue
        seen.add(digest)
        path = directory / digest[:2] / digest[2:]
        try:
            data = path.read_bytes()
        except OSError:
            continue
        todo |= digests_in(data) - seen
    return seen


def collect_blobs(store: Store, directory: Path, payloads: list[bytes],
                  deleted_execution: str) -> int:
    """Delete the blobs of ``payloads`` (a deleted execution's) that nothing else reaches.

    Returns how many were deleted.
    """
    candidates = _reachable(payloads, directory)
    if not candidates:
        return 0
    kept = _reachable(list(store.read_payloads(exclude=deleted_execution)), directory)
    now = time.time()
    deleted = 0
    for digest in sorted(candidates - kept):
        path = directory / digest[:2] / digest[2:]
        try:
            if now - path.stat().st_mtime < GRACE:
                continue
        except FileNotFoundError:
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            deleted += 1
    log.info("blobs.collected", execution_id=deleted_execution, deleted=deleted,
             candidates=len(candidates))
    return deleted


__all__ = ["GRACE", "collect_blobs", "digests_in"]
