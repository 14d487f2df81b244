"""``Ref``: a small, picklable handle to a value stored once, by the hash of its bytes.

``ctx.save(obj)`` takes a snapshot of ``obj`` (its serialized bytes) and returns a
``Ref`` at once; the digest actor hashes and stores the bytes off the branch's
thread, and the Ref's digest resolves later. ``ref.get()`` loads an equal value
in any process of the system; ``ref.digest`` blocks only the caller who asks.

While its digest is pending, a Ref pickled *inside a durable payload* (a
checkpoint being made, a parent blob) is written with a 32-byte placeholder
token instead of the digest, and the pickler records it: that is the
*pending-digest walk* (``pending_refs``), done by the serialization pass itself.
Placeholders never reach the store: the payload is held (``actors.checkpointing``) until
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

import pickle
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from actors.errors import RefUnavailableError
from actors.refs._backend import RefBackend, current_backend, require_backend
from actors.refs._pending import (
    DIGEST_BYTES,
    TOKEN_PREFIX,
    PendingDigest,
)

CODECS = ("pickle", "bytes", "bytearray")


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
                "actors.refs.install_backend(runtime.durable.BlobReader('<store dir>/blobs'))"
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


def snapshot(obj: Any, serialize: Callable[[Any], bytes]) -> tuple[bytes, str]:
    """The bytes ``obj`` is stored as, taken now, and their codec.

    ``bytes`` are immutable: they are the snapshot, no copy. ``bytearray`` and
    ``memoryview`` are copied once. Anything else is serialized, here, on the
    caller's thread: for mutable containers the serialization *is* the snapshot.
    (A large value may instead be snapshotted by a forked child, copy-on-write:
    ``actors.refs``; docs/refs.md has the figures.)
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
        # A large value: the backend may snapshot it copy-on-write (actors/refs/_fork_snapshot.py).
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
