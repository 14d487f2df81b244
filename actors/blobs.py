"""What Refs need from outside the domain: a blob store, and a backend per process.

``BlobStore`` is the content-addressed store the digest actor writes
(``runtime.blobs.FileBlobStore``; ``MemoryBlobStore`` here, for tests).
``RefBackend`` is how the Refs of one process are saved and loaded; the runtime
installs one in each process (``install_backend``), the way pykka keeps one
actor registry per process. ``BlobCache`` keeps verified bytes.

    with using_backend(InlineRefs(MemoryBlobStore())):
        ref = actors.ref.save({"rows": rows})
"""

from __future__ import annotations

import hashlib
import mmap
import os
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from actors.errors import DurableActorsError

if TYPE_CHECKING:
    from actors.ref import PendingDigest


def digest_of(data: bytes | bytearray | memoryview) -> str:
    """The hex SHA-256 of ``data``: the name of its blob."""
    return hashlib.sha256(data).hexdigest()


# -- errors ------------------------------------------------------------------------------


class BlobCorruptedError(DurableActorsError):
    """A stored blob's bytes do not hash to its digest; it is never returned.

    ``digest`` names the blob, ``found`` what its bytes hash to now.
    """

    def __init__(self, digest: str, found: str, where: str = "") -> None:
        at = f" at {where}" if where else ""
        super().__init__(
            f"blob {digest} is corrupted{at}: its bytes hash to {found}; restore it from a "
            "backup, or delete it and re-run the step that saved it"
        )
        self.digest = digest
        self.found = found
        self.where = where

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.digest, self.found, self.where))


class BlobNotFoundError(DurableActorsError, LookupError):
    """No blob with this digest is in the blob store."""

    def __init__(self, digest: str, where: str = "") -> None:
        at = f" in {where}" if where else ""
        super().__init__(
            f"no blob {digest}{at}; was the store's blobs directory moved or cleaned? "
            "point the system at the directory that holds it"
        )
        self.digest = digest
        self.where = where

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.digest, self.where))


class BlobStoreError(DurableActorsError):
    """The blob store could not write a blob (disk full, permissions); the save failed."""


class RefUnavailableError(DurableActorsError):
    """This process has no way to save or load Refs (no digest actor or blob store wired)."""


# -- blob stores -----------------------------------------------------------------------


class BlobStore(Protocol):
    """A content-addressed store: ``runtime.blobs.FileBlobStore``, or ``MemoryBlobStore``."""

    def put(self, digest: str, data: bytes) -> bool:
        """Store ``data`` under ``digest`` durably unless it is there; True if it was written."""
        ...

    def get(self, digest: str) -> bytes:
        """The bytes under ``digest``, verified (``BlobCorruptedError``, ``BlobNotFoundError``)."""
        ...

    def has(self, digest: str) -> bool: ...


class MemoryBlobStore:
    """A ``BlobStore`` in memory, for tests: ``hold()`` pauses writes, ``corrupt`` damages one.

    ``written`` lists the digests in the order they were stored; ``reads`` counts ``get``.
    """

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.written: list[str] = []
        self.reads = 0
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()

    def hold(self) -> None:
        """Block every write until ``release()``: a store that has stopped answering."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def put(self, digest: str, data: bytes) -> bool:
        self._open.wait()
        with self._lock:
            if digest in self.blobs:
                return False
            self.blobs[digest] = bytes(data)
            self.written.append(digest)
            return True

    def get(self, digest: str) -> bytes:
        with self._lock:
            self.reads += 1
            data = self.blobs.get(digest)
        if data is None:
            raise BlobNotFoundError(digest, "memory")
        found = digest_of(data)
        if found != digest:
            raise BlobCorruptedError(digest, found, "memory")
        return data

    def has(self, digest: str) -> bool:
        return digest in self.blobs

    def corrupt(self, digest: str) -> None:
        """Flip a byte of a stored blob, as a bad disk would."""
        data = bytearray(self.blobs[digest])
        data[len(data) // 2] ^= 0xFF
        self.blobs[digest] = bytes(data)


# -- the backend of a process ----------------------------------------------------------


class RefBackend(Protocol):
    """How Refs in this process are saved and loaded; the runtime installs one per process.

    ``actors.digest.DigestClient`` (a worker: saves off the calling thread),
    ``actors.digest.InlineRefs`` (tests: saves at once), and the runtime's
    read-only blob reader (the service process) implement it.
    """

    ref_threshold_bytes: int | None  # step results larger than this are spilled; None: never

    def save(self, data: bytes, codec: str,
             children: Collection[PendingDigest]) -> PendingDigest: ...

    def load(self, digest: str) -> bytes:
        """The blob's bytes, verified against ``digest`` (``BlobCorruptedError`` if not)."""
        ...

    def locator(self) -> Any:
        """Something picklable that another process can install to read these blobs, or None."""
        ...


_backend: RefBackend | None = None


def install_backend(backend: RefBackend | None) -> RefBackend | None:
    """Make ``backend`` this process's (``None`` removes it); returns the one it replaced."""
    global _backend
    previous, _backend = _backend, backend
    return previous


def current_backend() -> RefBackend | None:
    return _backend


def require_backend(what: str) -> RefBackend:
    backend = _backend
    if backend is None:
        raise RefUnavailableError(
            f"cannot {what} a Ref in this process: no digest actor is wired here. ctx.save "
            "works in branches run by an ActorSystem, or under actors.digest.InlineRefs in tests"
        )
    return backend


@contextmanager
def using_backend(backend: RefBackend) -> Iterator[RefBackend]:
    """Install ``backend`` for the block, then put the previous one back (tests)."""
    previous = install_backend(backend)
    try:
        yield backend
    finally:
        install_backend(previous)


class BlobCache:
    """Verified blob bytes by digest, least recently used first out, bounded in bytes.

    A worker that saves large values forks to snapshot them (actors/fork_snapshot.py),
    and a fork's cost grows with the pages it copies the mappings of. So on Linux an
    entry of ``OUTSIDE_FORK_BYTES`` or more is kept in an anonymous mapping marked
    ``MADV_WIPEONFORK``: the kernel gives a child fresh zero pages there instead of
    copying the mapping, so a full cache (64 MB) adds nothing to a fork. A child
    starts with an empty cache (``os.register_at_fork``), never reading the zeros.
    """

    OUTSIDE_FORK_BYTES = 64 * 1024

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes | mmap.mmap] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        _caches.add(self)

    def get(self, digest: str) -> bytes | None:
        with self._lock:
            entry = self._items.get(digest)
            if entry is None:
                return None
            self._items.move_to_end(digest)
            self.hits += 1
            return entry if type(entry) is bytes else entry[:]  # a copy: eviction may close it

    def put(self, digest: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            if digest in self._items:
                return
        entry = _outside_fork(data) if len(data) >= self.OUTSIDE_FORK_BYTES else data
        with self._lock:
            if digest in self._items:
                return
            self._items[digest] = entry
            self._size += len(entry)
            while self._size > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._size -= len(old)
                if isinstance(old, mmap.mmap):
                    old.close()

    def _forget_after_fork(self) -> None:
        """In a forked child: the large entries read as zeros here; drop them all."""
        self._lock = threading.Lock()  # another thread may have held it at the fork
        self._items = OrderedDict()
        self._size = 0


_caches: weakref.WeakSet[BlobCache] = weakref.WeakSet()
# Linux >= 4.14; Python 3.11's mmap module does not name it. Elsewhere entries stay bytes.
_WIPEONFORK: int | None = getattr(mmap, "MADV_WIPEONFORK",
                                  18 if sys.platform.startswith("linux") else None)


def _outside_fork(data: bytes) -> bytes | mmap.mmap:
    """``data`` copied into a mapping a fork does not copy, where the platform allows it."""
    if _WIPEONFORK is None:
        return data
    try:
        region = mmap.mmap(-1, len(data), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        region.madvise(_WIPEONFORK)
    except (OSError, ValueError):  # no memory for a mapping, or an older kernel: keep the bytes
        return data
    region[:] = data
    return region


def _forget_all_after_fork() -> None:
    for cache in list(_caches):
        cache._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_all_after_fork)


__all__ = [
    "BlobCache",
    "BlobCorruptedError",
    "BlobNotFoundError",
    "BlobStore",
    "BlobStoreError",
    "MemoryBlobStore",
    "RefBackend",
    "RefUnavailableError",
    "current_backend",
    "digest_of",
    "install_backend",
    "require_backend",
    "using_backend",
]
