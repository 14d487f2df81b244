"""The Ref backend of a process: how its Refs are saved and loaded.

The runtime installs one in each process (``install_backend``), the way pykka
keeps one actor registry per process.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from actors.errors import RefUnavailableError
from actors.refs._pending import PendingDigest


class RefBackend(Protocol):
    """How Refs in this process are saved and loaded; the runtime installs one per process.

    ``actors.refs.DigestClient`` (a worker: saves off the calling thread),
    ``actors.refs.InlineRefs`` (tests: saves at once), and the runtime's
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
    """This process's Ref backend, or None when none is installed."""
    return _backend


def require_backend(what: str) -> RefBackend:
    backend = _backend
    if backend is None:
        raise RefUnavailableError(
            f"cannot {what} a Ref in this process: no digest actor is wired here. ctx.save "
            "works in branches run by an ActorSystem, or under actors.refs.InlineRefs in tests"
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
