"""What Refs need from outside the domain: a blob store, and a backend per process.

``BlobStore`` is the content-addressed store the digest actor writes
(``runtime.durable.FileBlobStore``; ``MemoryBlobStore`` here, for tests).
``RefBackend`` is how the Refs of one process are saved and loaded; the runtime
installs one in each process (``install_backend``), the way pykka keeps one
actor registry per process. ``BlobCache`` keeps verified bytes.

    with using_backend(InlineRefs(MemoryBlobStore())):
        ref = actors.refs.save({"rows": rows})
"""


from __future__ import annotations

import hashlib
import os
import threading
from typing import TYPE_CHECKING, Protocol

from actors.errors import (
    BlobCorruptedError,
    BlobNotFoundError,
)
from actors.refs._cache import _forget_all_after_fork

if TYPE_CHECKING:
    pass


def digest_of(data: bytes | bytearray | memoryview) -> str:
    """The hex SHA-256 of ``data``: the name of its blob."""
    return hashlib.sha256(data).hexdigest()


class BlobStore(Protocol):
    """A content-addressed store: ``runtime.durable.FileBlobStore``, or ``MemoryBlobStore``."""

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


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_all_after_fork)
