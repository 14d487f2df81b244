"""A digest that becomes known later, and the placeholder tokens that stand for it meanwhile.

The digest client (``actors.refs``) hands one out for each save; the blob is
durable once it resolves. Until then a Ref pickled into a durable payload is
written with its 32-byte token, which the gate patches by the digest.

    pending = PendingDigest(new_token())
    pending.add_done_callback(lambda p: print(p.digest))
    pending.resolve(digest)          # the callback runs here
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from actors import tracelog
from actors.errors import DigestError

DIGEST_BYTES = 32  # SHA-256; a placeholder token has the same length, so patching keeps offsets


TOKEN_PREFIX = os.urandom(8)  # shared by the tokens of this interpreter: one scan finds them all


_log = tracelog.get_logger("actors.ref")


_cells_lock = threading.Lock()


# Every digest of this process still pending, by token: a forked snapshot's child reports
# the tokens it met and the parent maps them back through a copy taken at the fork.
_unresolved: dict[bytes, PendingDigest] = {}


class PendingDigest:
    """A digest that becomes known later: the blob is durable once it resolves.

    Continuations (``add_done_callback``) run on the thread that resolves it, or at
    once if it already has; nobody has to block on it (``wait`` is for callers who
    ask for the digest itself).
    """

    __slots__ = ("_callbacks", "_event", "_sized", "digest", "error", "size", "token")

    def __init__(self, token: bytes, *, size_pending: bool = False) -> None:
        self.token = token
        self.digest: bytes | None = None
        self.error: BaseException | None = None
        # A forked snapshot's length, once its child has serialized it (``set_size``).
        self.size: int | None = None
        self._sized = threading.Event() if size_pending else None
        self._callbacks: list[Callable[[PendingDigest], None]] | None = []
        self._event: threading.Event | None = None  # built only when someone blocks
        with _cells_lock:
            _unresolved[token] = self

    @property
    def done(self) -> bool:
        return self._callbacks is None

    def add_done_callback(self, callback: Callable[[PendingDigest], None]) -> None:
        with _cells_lock:
            if self._callbacks is not None:
                self._callbacks.append(callback)
                return
        callback(self)

    def resolve(self, digest: bytes) -> None:
        self._finish(digest, None)

    def set_size(self, size: int) -> None:
        """The snapshot is taken: its length is known (the digest comes later)."""
        self.size = size
        if self._sized is not None:
            self._sized.set()

    def wait_size(self, timeout: float | None = None) -> int:
        """A forked snapshot's length; blocks until its child has serialized it."""
        if self._sized is None:
            raise ValueError("this digest's size was known when it was made; ask its Ref")
        if self.size is None:
            if _producing.active:
                raise RuntimeError("a thread that makes digests durable must not wait for a "
                                   "snapshot; this is a bug")
            if not self._sized.wait(timeout):
                raise TimeoutError(f"the snapshot was not taken within {timeout} s")
            if self.size is None:
                raise self._failure("the snapshot was never taken")
        return self.size

    def _failure(self, what: str) -> DigestError:
        # The same type as the cause when it is one (``SnapshotError``), so callers can tell.
        kind = type(self.error) if isinstance(self.error, DigestError) else DigestError
        error = kind(f"{what}: {self.error!r}")
        error.__cause__ = self.error
        return error

    def fail(self, error: BaseException) -> None:
        self._finish(None, error)

    def _finish(self, digest: bytes | None, error: BaseException | None) -> None:
        with _cells_lock:
            callbacks = self._callbacks
            if callbacks is None:
                return  # a late duplicate answer
            self.digest, self.error, self._callbacks = digest, error, None
            event = self._event
            _unresolved.pop(self.token, None)
        if self._sized is not None:
            self._sized.set()  # a failed snapshot wakes who waits for its size
        if event is not None:
            event.set()
        for callback in callbacks:
            try:
                callback(self)
            except Exception:  # one broken continuation must not starve the others
                _log.exception("ref.continuation_failed")

    def wait(self, timeout: float | None = None) -> bytes:
        """The digest; blocks this caller until it is known. Raises ``DigestError``."""
        if not self.done:
            if _producing.active:
                raise RuntimeError(
                    "a thread that makes digests durable must not wait for one; this is a bug"
                )
            with _cells_lock:
                if self._event is None:
                    self._event = threading.Event()
                event = self._event
            if not self.done and not event.wait(timeout):
                raise TimeoutError(f"the digest was not known within {timeout} s")
        if self.digest is None:
            raise self._failure("the save never became durable")
        return self.digest


class _Producing(threading.local):
    active = False


_producing = _Producing()  # set on threads that resolve digests: they must never wait on one


@contextmanager
def producing_digests() -> Iterator[None]:
    """Mark this thread as one that resolves digests (a digest client's, an actor's)."""
    _producing.active = True
    try:
        yield
    finally:
        _producing.active = False


def unresolved_digests() -> dict[bytes, PendingDigest]:
    """A copy of this process's pending digests, by token (a forked snapshot's map)."""
    with _cells_lock:
        return dict(_unresolved)


def new_token() -> bytes:
    """A placeholder for a digest still pending: 32 bytes, ``TOKEN_PREFIX`` first."""
    return TOKEN_PREFIX + os.urandom(DIGEST_BYTES - len(TOKEN_PREFIX))
