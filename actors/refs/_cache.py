"""``BlobCache``: verified blob bytes by digest, kept outside what a fork copies."""

from __future__ import annotations

import mmap
import threading
import weakref
from collections import OrderedDict

from actors._compat.linux import outside_fork


class BlobCache:
    """Verified blob bytes by digest, least recently used first out, bounded in bytes.

    A worker that saves large values forks to snapshot them (actors/refs/_fork_snapshot.py),
    and a fork's cost grows with the pages it copies the mappings of. So on Linux an
    entry of ``OUTSIDE_FORK_BYTES`` or more is kept in an anonymous mapping marked
    ``MADV_WIPEONFORK`` (``actors._compat.linux.outside_fork``): the kernel gives a
    child fresh zero pages there instead of copying the mapping, so a full cache
    (64 MB) adds nothing to a fork. A child starts with an empty cache
    (``os.register_at_fork``), never reading the zeros.
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
        entry = outside_fork(data) if len(data) >= self.OUTSIDE_FORK_BYTES else data
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


def _forget_all_after_fork() -> None:
    for cache in list(_caches):
        cache._forget_after_fork()
