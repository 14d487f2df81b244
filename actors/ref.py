"""``Ref``: a small, picklable handle to a value stored once, by the hash of its bytes.

``ctx.save(obj)`` takes a snapshot of ``obj`` (its serialized bytes) and returns a
``Ref`` at once; the digest actor hashes and stores the bytes off the branch's
thread, and the Ref's digest resolves later. ``ref.get()`` loads an equal value
in any process of the system; ``ref.digest`` blocks only the caller who asks.

While its digest is pending, a Ref pickled *inside a durable payload* (a
checkpoint being made, a parent blob) is written with a 32-byte placeholder
token instead of the digest, and the pickler records it: that is the
*pending-digest walk* (``pending_refs``), done by the serialization pass itself.
Placeholders never reach the store: the payload is held (``actors.gate``) until
every digest it names is durable, then the tokens are patched in place by the
digests, which have the same length. A pending Ref pickled anywhere else (a
message to an actor) waits for its digest first.

The hash is SHA-256 (see docs/refs.md for why and what was measured).

    ref = ctx.save({"rows": rows})       # returns at once; rows may change afterwards
    ref.size, ref.codec                  # 1054512, "pickle" (large: once the fork's child has it)
    ref.get() == {"rows": original_rows} # in any process, verified against the digest
    ref.digest                           # "3a7bd3e2..." (waits for the digest actor)
"""

from __future__ import annotations

import os
import pickle
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from actors import tracelog
from actors.blobs import RefBackend, RefUnavailableError, current_backend, require_backend
from actors.errors import CheckpointError

DIGEST_BYTES = 32  # SHA-256; a placeholder token has the same length, so patching keeps offsets
TOKEN_PREFIX = os.urandom(8)  # shared by the tokens of this interpreter: one scan finds them all
CODECS = ("pickle", "bytes", "bytearray")

_log = tracelog.get_logger("actors.ref")


class DigestError(CheckpointError):
    """A save never became durable: its Ref has no digest and cannot be loaded.

    A ``CheckpointError``: a branch that meets one is not failed but replayed, and
    the replay saves again.
    """


# -- pending digests -------------------------------------------------------------------------

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


# -- the Ref itself ------------------------------------------------------------------------------


class Ref:
    """A value stored once, by the hash of its bytes: ``(digest, size, codec)``.

    ``size`` is the blob's length in bytes and ``codec`` how its bytes decode
    ("pickle", or "bytes"/"bytearray" for raw buffers). Build one with
    ``ctx.save(obj)``; a step result over ``ref_threshold_bytes`` becomes one too.

        ref = ctx.save(make_big_image(raw))
        ref.get()        # an equal object, in any process of the system
        ref.digest       # the hex SHA-256, once the digest actor has stored the blob
    """

    __slots__ = ("_cell", "_key", "_size", "_where", "codec")

    def __init__(self, key: bytes | PendingDigest, size: int | None, codec: str,
                 where: RefBackend | None = None) -> None:
        if codec not in CODECS:
            raise ValueError(f"unknown codec {codec!r}; expected one of {CODECS}")
        self._cell = key if isinstance(key, PendingDigest) else None
        self._key = None if isinstance(key, PendingDigest) else key
        if size is None and self._cell is None:
            raise ValueError("a Ref to a stored blob needs its size")
        self._where = where  # how the process that sent it reads blobs, if this one cannot
        self._size = size  # None: a forked snapshot not serialized yet (see ``size``)
        self.codec = codec

    @classmethod
    def from_digest(cls, digest: str, size: int, codec: str = "pickle") -> Ref:
        """A Ref to a blob stored already, by its hex digest."""
        key = bytes.fromhex(digest)
        if len(key) != DIGEST_BYTES:
            raise ValueError(f"{digest!r} is not a hex SHA-256 digest")
        return cls(key, size, codec)

    @property
    def size(self) -> int:
        """The blob's length in bytes.

        Known at once, except for a large value snapshotted by a forked child
        (docs/refs.md): then asking waits until the child has serialized it
        (milliseconds; not until the blob is durable).
        """
        if self._size is None:
            assert self._cell is not None
            self._size = self._cell.wait_size()
        return self._size

    @property
    def done(self) -> bool:
        """Whether the digest is known (the blob is durable), or the save failed."""
        return self._cell is None or self._cell.done

    @property
    def digest(self) -> str:
        """The blob's hex SHA-256; blocks until the digest actor has stored it."""
        return self.wait().hex()

    def wait(self, timeout: float | None = None) -> bytes:
        """The raw digest, blocking this caller (only) up to ``timeout`` seconds."""
        if self._key is None:
            assert self._cell is not None
            self._key = self._cell.wait(timeout)
        return self._key

    def get(self, timeout: float | None = None) -> Any:
        """The stored value: a new object equal to what was saved, verified by its digest.

        Verified bytes are cached per process; each call decodes its own copy, so
        changing what one ``get`` returned never changes another's.
        """
        digest = self.wait(timeout).hex()
        backend = current_backend() or self._where
        if backend is None:
            raise RefUnavailableError(
                f"this process cannot load Ref {digest[:12]}: it has no blob store. Refs load "
                "in the processes of the system that saved them; elsewhere, install a reader: "
                "actors.blobs.install_backend(runtime.blobs.BlobReader('<store dir>/blobs'))"
            )
        data = backend.load(digest)
        previous, _loading.where = _loading.where, backend
        try:
            return decode(data, self.codec)
        finally:
            _loading.where = previous

    def _known(self) -> bytes | None:
        if self._key is None and self._cell is not None and self._cell.digest is not None:
            self._key = self._cell.digest
        return self._key

    def __eq__(self, other: object) -> bool:
        """Same content: same digest and codec (waits for pending digests, as ``digest`` does)."""
        if not isinstance(other, Ref):
            return NotImplemented
        if self._cell is not None and self._cell is other._cell:
            return True
        return (self.size, self.codec) == (other.size, other.codec) and self.wait() == other.wait()

    def __hash__(self) -> int:
        return hash((self.size, self.codec))  # equal for equal Refs; waits only for a snapshot

    def __repr__(self) -> str:
        key = self._known()
        name = f"sha256:{key.hex()[:12]}" if key is not None else "pending"
        size = self._size if self._size is not None else self._cell and self._cell.size
        shown = "? bytes" if size is None else f"{size} bytes"  # repr never waits
        return f"Ref({name}, {shown}, {self.codec})"

    def __reduce__(self) -> tuple[Any, ...]:
        key = self._known()
        cell = self._cell
        if key is None and cell is not None and cell.digest is None:
            collectors = _collectors.stack
            if collectors and cell.error is None:
                # Inside a durable payload: a placeholder, patched before it is stored.
                for found in collectors:
                    found.setdefault(cell.token, self)
                return (_restore, (cell.token, self.size, self.codec))
            key = self.wait()  # sent elsewhere (a message): the receiver needs the digest
        backend = current_backend()
        locator = None if _collectors.stack else (
            backend.locator() if backend is not None else self._where)
        if locator is not None:
            return (_restore, (key, self.size, self.codec, locator))
        return (_restore, (key, self.size, self.codec))


class _Loading(threading.local):
    where: RefBackend | None = None  # how the value being decoded here was read


_loading = _Loading()


def _restore(key: bytes, size: int, codec: str, locator: RefBackend | None = None) -> Ref:
    return Ref(key, size, codec, locator or _loading.where)  # children load like their parent


class Spilled:
    """A step result stored as a Ref because it was large; replay hands back its value."""

    __slots__ = ("ref",)

    def __init__(self, ref: Ref) -> None:
        self.ref = ref

    def __reduce__(self) -> tuple[Any, ...]:
        return (Spilled, (self.ref,))


def unspill(value: Any) -> Any:
    """The value a logged payload stands for: a spilled result is loaded from its Ref."""
    return value.ref.get() if type(value) is Spilled else value


# -- the pending-digest walk ----------------------------------------------------------------------


class _Collectors(threading.local):
    def __init__(self) -> None:
        self.stack: list[dict[bytes, Ref]] = []


_collectors = _Collectors()


class collecting:  # noqa: N801 - a context manager used like a function
    """Record every pending Ref pickled on this thread inside the block, by token.

    Pending Refs pickled inside are written as placeholder tokens; the caller
    owns making sure the bytes are patched before they are stored. A class, not a
    generator: every step result is serialized inside one (twice, through the gate).

        with collecting() as found:
            data = pickle.dumps(value)
    """

    __slots__ = ("_found",)

    def __init__(self, into: dict[bytes, Ref] | None = None) -> None:
        self._found: dict[bytes, Ref] = {} if into is None else into

    def __enter__(self) -> dict[bytes, Ref]:
        _collectors.stack.append(self._found)
        return self._found

    def __exit__(self, *exc: object) -> None:
        _collectors.stack.pop()


def pending_refs(value: Any, serialize: Callable[[Any], bytes] = pickle.dumps) -> list[Ref]:
    """The Refs in ``value`` whose digest is still pending: one per digest, in one walk.

    The walk is the pickler's: its memo makes it safe on cycles and visits each
    object once; a Ref is a leaf (its own value is not walked); resolved Refs
    are skipped. ``ctx.save`` does the same walk as part of the snapshot it takes
    anyway, so a parent's pending children cost nothing extra to find.

        child = ctx.save(rows)
        pending_refs({"a": child, "b": [child]})   # [child], until child's digest is known
    """
    with collecting() as found:
        serialize(value)
    unique: dict[int, Ref] = {}
    for ref in found.values():
        assert ref._cell is not None
        unique.setdefault(id(ref._cell), ref)
    return list(unique.values())


def tokens_in(data: bytes) -> list[bytes]:
    """The placeholder-shaped 32-byte runs in ``data``, in order (duplicates kept)."""
    found = []
    pos = data.find(TOKEN_PREFIX)
    while pos >= 0:
        found.append(data[pos:pos + DIGEST_BYTES])
        pos = data.find(TOKEN_PREFIX, pos + 1)
    return found


def patch(data: bytes, digests: Mapping[bytes, bytes]) -> bytes:
    """``data`` with every placeholder token in ``digests`` replaced by its digest, in one pass."""
    if not digests:
        return data
    parts: list[bytes] = []
    start = 0
    pos = data.find(TOKEN_PREFIX)
    while pos >= 0:
        digest = digests.get(data[pos:pos + DIGEST_BYTES])
        if digest is None:
            pos = data.find(TOKEN_PREFIX, pos + 1)
            continue
        parts += (data[start:pos], digest)
        start = pos + DIGEST_BYTES
        pos = data.find(TOKEN_PREFIX, start)
    if not parts:
        return data
    parts.append(data[start:])
    return b"".join(parts)


# -- snapshot and decoding -------------------------------------------------------------------


def snapshot(obj: Any, serialize: Callable[[Any], bytes]) -> tuple[bytes, str]:
    """The bytes ``obj`` is stored as, taken now, and their codec.

    ``bytes`` are immutable: they are the snapshot, no copy. ``bytearray`` and
    ``memoryview`` are copied once. Anything else is serialized, here, on the
    caller's thread: for mutable containers the serialization *is* the snapshot.
    (A large value may instead be snapshotted by a forked child, copy-on-write:
    ``actors.fork_snapshot``; docs/refs.md has the figures.)
    """
    kind = type(obj)
    if kind is bytes:
        return obj, "bytes"
    if kind is bytearray:
        return bytes(obj), "bytearray"
    if kind is memoryview:
        return obj.tobytes(), "bytes"
    return serialize(obj), "pickle"


def decode(data: bytes, codec: str) -> Any:
    """The value that ``snapshot`` turned into ``data``."""
    if codec == "pickle":
        return pickle.loads(data)
    if codec == "bytes":
        return data
    if codec == "bytearray":
        return bytearray(data)
    raise ValueError(f"unknown codec {codec!r}; expected one of {CODECS}")


# ``backend.take_snapshot(obj, serialize)``, if it has one: a pending digest whose snapshot is
# being taken elsewhere, or None to take it here.
TakeSnapshot = Callable[[Any, Callable[[Any], bytes]], "PendingDigest | None"]


def save(obj: Any, serialize: Callable[[Any], bytes] = pickle.dumps) -> Ref:
    """Snapshot ``obj`` now and hand it to this process's digest client; its Ref, at once.

    Refs inside ``obj`` whose digests are pending become the blob's children: it is
    sent to the digest actor once their digests are known, with them inside.
    """
    backend = require_backend("save")
    if type(obj) not in (bytes, bytearray, memoryview):
        # A large value: the backend may snapshot it copy-on-write (actors/fork_snapshot.py).
        take: TakeSnapshot | None = getattr(backend, "take_snapshot", None)
        cell = take(obj, serialize) if take is not None else None
        if cell is not None:
            return Ref(cell, None, "pickle")
    started = time.perf_counter()
    with collecting() as children:
        data, codec = snapshot(obj, serialize)
    observe = getattr(backend, "observe_snapshot", None)
    if observe is not None and codec == "pickle":
        observe(len(data), time.perf_counter() - started)
    return Ref(backend.save(data, codec, [r._cell for r in children.values() if r._cell]),
               len(data), codec)


def spill_if_large(value: Any, serialize: Callable[[Any], bytes]) -> bytes:
    """``serialize(value)``, or, past the threshold, the bytes of a ``Spilled`` Ref to it."""
    backend = current_backend()
    threshold = None if backend is None else backend.ref_threshold_bytes
    with collecting() as children:
        data = serialize(value)
    if threshold is None or len(data) <= threshold:
        return data
    assert backend is not None
    cell = backend.save(data, "pickle", [r._cell for r in children.values() if r._cell])
    return serialize(Spilled(Ref(cell, len(data), "pickle")))


__all__ = [
    "CODECS",
    "DIGEST_BYTES",
    "TOKEN_PREFIX",
    "DigestError",
    "PendingDigest",
    "Ref",
    "Spilled",
    "collecting",
    "decode",
    "new_token",
    "patch",
    "pending_refs",
    "producing_digests",
    "save",
    "snapshot",
    "spill_if_large",
    "tokens_in",
    "unresolved_digests",
    "unspill",
]
