"""The digest actor, and the client that feeds it from a worker process.

``DigestActor`` hashes each blob it is sent (SHA-256), stores it once in a
content-addressed ``BlobStore`` and answers with the digest once the blob is
durable. A blob already stored is a *dedup hit*: nothing is written. Every read
is verified against the digest: a corrupted blob raises ``BlobCorruptedError``
naming it, never wrong bytes.

``DigestClient`` is a worker process's side of it, installed as the process's
``RefBackend``: ``save`` only queues the snapshot and returns a pending digest;
one client thread sends blobs to the digest actor (a parent only once its
children's digests are known, patched into it), resolves digests as the answers
arrive, and redoes a save whose answer was lost because the digest actor died.
Continuations registered on a digest (a parent waiting for children, a gated
checkpoint) run on that thread; no thread ever blocks waiting for a digest.

    digest = DigestActor.start(MemoryBlobStore())          # actors.refs
    with using_backend(DigestClient(digest)):               # actors.refs
        ref = actors.refs.save({"rows": rows})   # at once
        ref.digest                               # once the actor has stored it
"""


from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import partial
from typing import Any

import structlog

from actors import tracelog
from actors._compat.linux import can_fork
from actors.errors import BlobCorruptedError, BlobStoreError, DigestError
from actors.logcontext import bound_context
from actors.refs._blob_store import BlobStore, MemoryBlobStore, digest_of
from actors.refs._cache import BlobCache
from actors.refs._digest_actor import LoadBlob, StoreBlob
from actors.refs._fork_snapshot import ForkSnapshots
from actors.refs._pending import PendingDigest, new_token, producing_digests
from actors.refs._ref import patch
from actors.replies import ActorLike, ReplyTo, exception_of

log = tracelog.get_logger("actors.digest")


class CallbackReply:
    """A reply handle that calls back instead of waking a waiter (one process only).

    The runtime hands the client a picklable kind of it (a future with callbacks).
    """

    __slots__ = ("_on_error", "_on_value")

    def __init__(self, on_value: Callable[[Any], None],
                 on_error: Callable[[BaseException], None]) -> None:
        self._on_value = on_value
        self._on_error = on_error

    def set(self, value: Any = None) -> None:
        self._on_value(value)

    def set_exception(self, exc_info: Any = None) -> None:
        self._on_error(exception_of(exc_info))


ReplyFactory = Callable[[Callable[[Any], None], Callable[[BaseException], None]], ReplyTo]


# Errors the digest actor answers on purpose: redoing the save would fail the same way.
_FINAL_ERRORS = (BlobStoreError, BlobCorruptedError, DigestError)


_STOP = object()


@dataclass(eq=False)
class _Save:
    cell: PendingDigest
    data: bytes
    children: list[PendingDigest]
    context: dict[str, Any]
    queued_at: float
    waiting: int = 0
    attempts: int = 0
    first_sent: float | None = None


class DigestClient:
    """A process's ``RefBackend`` that saves through a digest actor, off the calling thread.

    ``save`` queues and returns; the client thread sends, resolves, and redoes
    saves whose answer was lost (the digest actor died: ``kill -9`` included) for
    up to ``retry_for`` seconds. Loads read ``load_blob`` (a verifying store) and
    cache the verified bytes; a blob just saved is cached already.
    ``max_pending_bytes`` bounds the snapshots waiting to be stored: past it,
    ``save`` waits for room (the digest actor never waits on a branch).
    With ``fork_snapshot_bytes``, values estimated larger than that are
    snapshotted by a forked child (``actors.refs``), not on the caller's thread.
    """

    def __init__(
        self,
        digest: ActorLike,
        *,
        load_blob: Callable[[str], bytes] | None = None,
        reply_factory: ReplyFactory = CallbackReply,
        ref_threshold_bytes: int | None = None,
        locator: Any = None,
        retry_for: float = 60.0,
        max_pending_bytes: int = 256 * 1024 * 1024,
        cache: BlobCache | None = None,
        fork_snapshot_bytes: int | None = None,
        name: str = "digest-client",
    ) -> None:
        self.ref_threshold_bytes = ref_threshold_bytes
        self._snapshots = None if fork_snapshot_bytes is None or not can_fork() else (
            ForkSnapshots(min_bytes=fork_snapshot_bytes, name=f"{name}-snapshots"))
        self._digest = digest
        self._load_blob = load_blob or self._ask_actor
        self._reply_factory = reply_factory
        self._locator = locator
        self._retry_for = retry_for
        self._max_pending = max_pending_bytes
        self._pending_bytes = 0
        self._room = threading.Condition()
        self.cache = cache or BlobCache()
        self._events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._retries: list[tuple[float, int, _Save]] = []
        self._unanswered: set[_Save] = set()  # sent, no answer yet (client thread only)
        self._order = itertools.count()
        self._closed = False
        self._closing = threading.Lock()  # no save is queued behind the stop
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    @property
    def snapshots(self) -> ForkSnapshots | None:
        """The forked-snapshot taker (its counters, ``min_bytes``), or None if it never forks."""
        return self._snapshots

    # -- RefBackend --------------------------------------------------------------------

    def save(self, data: bytes, codec: str,
             children: Collection[PendingDigest]) -> PendingDigest:
        cell = PendingDigest(new_token())
        self._queue(cell, data, list(children), structlog.contextvars.get_contextvars())
        return cell

    def take_snapshot(self, obj: Any, serialize: Callable[[Any], bytes]) -> PendingDigest | None:
        """A large value's snapshot, taken by a forked child; None: take it inline."""
        if self._snapshots is None:
            return None
        deliver = partial(self._queue, context=structlog.contextvars.get_contextvars())
        return self._snapshots.take(obj, serialize, deliver)

    def observe_snapshot(self, nbytes: int, seconds: float) -> None:
        """An inline snapshot's size and time: what forking is weighed against."""
        if self._snapshots is not None:
            self._snapshots.observe_inline(nbytes, seconds)

    def _queue(self, cell: PendingDigest, data: bytes, children: list[PendingDigest],
               context: dict[str, Any]) -> None:
        self._reserve(len(data))
        save = _Save(cell, data, children, context, time.perf_counter())
        with self._closing:
            if not self._closed:
                self._events.put(("save", save))
                return
        self._free(len(data))
        error = DigestError("the digest client is closed; this worker is stopping")
        cell.fail(error)
        raise error

    def load(self, digest: str) -> bytes:
        data = self.cache.get(digest)
        if data is None:
            data = self._load_blob(digest)
            self.cache.put(digest, data)
        return data

    def locator(self) -> Any:
        return self._locator

    def close(self, timeout: float = 5.0) -> None:
        """Stop the client thread; saves not yet durable fail with ``DigestError``."""
        if self._snapshots is not None:
            self._snapshots.close(timeout)
        with self._closing:
            if self._closed:
                return
            self._closed = True
            self._events.put((_STOP, None))
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _ask_actor(self, digest: str) -> bytes:
        ask = getattr(self._digest, "ask", None)
        if ask is None:
            raise DigestError("this digest client has no way to load blobs")
        data: bytes = ask(LoadBlob(digest))
        return data

    def _reserve(self, size: int) -> None:
        waits = threading.current_thread() is not self._thread  # the one that frees room never
        with self._room:
            # A single blob bigger than the budget still goes, alone.
            while waits and self._pending_bytes and self._pending_bytes + size > self._max_pending:
                self._room.wait()
            self._pending_bytes += size

    def _free(self, size: int) -> None:
        with self._room:
            self._pending_bytes -= size
            self._room.notify_all()

    # -- the client thread ---------------------------------------------------------------

    def _loop(self) -> None:
        with producing_digests():
            while True:
                timeout = None
                if self._retries:
                    timeout = max(0.0, self._retries[0][0] - time.monotonic())
                try:
                    kind, save, *rest = self._events.get(timeout=timeout)
                except queue.Empty:
                    kind = None
                if kind is _STOP:
                    self._fail_all()
                    return
                try:
                    if kind == "save":
                        self._on_save(save)
                    elif kind == "child":
                        self._on_child(save)
                    elif kind == "answer":
                        self._on_answer(save, *rest)
                    self._resend_due()
                except Exception as exc:  # a bug must fail one save, not stop every later one
                    log.exception("digest_client.failed")
                    if kind is not None and not save.cell.done:
                        self._finish(save, None, exc)

    def _on_save(self, save: _Save) -> None:
        waiting = [c for c in save.children if not c.done]
        if not waiting:
            self._ready(save)
            return
        save.waiting = len(waiting)
        for child in waiting:  # a continuation per pending child: nothing blocks on them
            child.add_done_callback(partial(self._child_done, save))

    def _child_done(self, save: _Save, _child: PendingDigest) -> None:
        self._events.put(("child", save))

    def _on_child(self, save: _Save) -> None:
        save.waiting -= 1
        if save.waiting == 0:
            self._ready(save)

    def _ready(self, save: _Save) -> None:
        failed = [c for c in save.children if c.digest is None]
        if failed:
            self._finish(save, None, DigestError(
                f"a Ref inside this value was never stored ({failed[0].error!r}), so the value "
                "cannot be either"))
            return
        save.data = patch(save.data, {c.token: c.digest for c in save.children if c.digest})
        self._send(save)

    def _send(self, save: _Save) -> None:
        save.attempts += 1
        attempt = save.attempts
        reply = self._reply_factory(partial(self._answered, save, attempt),
                                    partial(self._refused, save, attempt))
        if save.first_sent is None:
            save.first_sent = time.monotonic()
        self._unanswered.add(save)
        try:
            with bound_context(**save.context):
                self._digest.tell(StoreBlob(save.data, reply))
        except Exception as exc:  # the digest actor is down or restarting: try again
            self._on_answer(save, attempt, None, exc)

    def _answered(self, save: _Save, attempt: int, value: Any) -> None:
        self._events.put(("answer", save, attempt, value, None))

    def _refused(self, save: _Save, attempt: int, error: BaseException) -> None:
        self._events.put(("answer", save, attempt, None, error))

    def _on_answer(self, save: _Save, attempt: int, digest: str | None,
                   error: BaseException | None) -> None:
        if save.cell.done or attempt != save.attempts:
            return  # the answer to an attempt that was redone already
        self._unanswered.discard(save)
        if error is None and isinstance(digest, str):
            self.cache.put(digest, save.data)
            self._finish(save, bytes.fromhex(digest), None)
            return
        error = error or DigestError(f"the digest actor answered {digest!r}, not a digest")
        assert save.first_sent is not None
        if isinstance(error, _FINAL_ERRORS) or time.monotonic() - save.first_sent > self._retry_for:
            self._finish(save, None, error)
            return
        delay = min(2.0, 0.05 * 2 ** min(save.attempts - 1, 6))
        with bound_context(**save.context):
            log.warning("digest.resend", size=len(save.data), attempt=save.attempts,
                        delay=delay, error=repr(error))
        heapq.heappush(self._retries, (time.monotonic() + delay, next(self._order), save))

    def _resend_due(self) -> None:
        now = time.monotonic()
        while self._retries and self._retries[0][0] <= now:
            _, _, save = heapq.heappop(self._retries)
            self._send(save)

    def _finish(self, save: _Save, digest: bytes | None, error: BaseException | None) -> None:
        self._free(len(save.data))
        with bound_context(**save.context):
            if digest is not None:
                log.debug("ref.durable", digest=digest.hex(), size=len(save.data),
                          ms=round((time.perf_counter() - save.queued_at) * 1e3, 3))
                save.cell.resolve(digest)
            else:
                assert error is not None
                log.error("ref.save_failed", size=len(save.data), error=repr(error))
                failure = error if isinstance(error, DigestError) else DigestError(
                    f"the blob ({len(save.data)} bytes) was not stored: {error!r}")
                save.cell.fail(failure)

    def _fail_all(self) -> None:
        gone = DigestError("the worker stopped before this value was stored; replay the branch")
        while True:
            try:
                kind, save, *_ = self._events.get_nowait()
            except queue.Empty:
                break
            if kind in ("save", "child", "answer") and not save.cell.done:
                self._finish(save, None, gone)
        for save in [*(r[2] for r in self._retries), *self._unanswered]:
            if not save.cell.done:
                self._finish(save, None, gone)
        self._retries.clear()
        self._unanswered.clear()


class InlineRefs:
    """A ``RefBackend`` that stores at once on the calling thread: for tests with ``InlineHost``.

        with using_backend(InlineRefs(MemoryBlobStore(), ref_threshold_bytes=1024)):
            host.run_until_idle()
    """

    def __init__(self, blobs: BlobStore | None = None, *,
                 ref_threshold_bytes: int | None = None) -> None:
        self.blobs: BlobStore = blobs if blobs is not None else MemoryBlobStore()
        self.ref_threshold_bytes = ref_threshold_bytes

    def save(self, data: bytes, codec: str,
             children: Collection[PendingDigest]) -> PendingDigest:
        data = patch(data, {c.token: c.wait() for c in children})
        digest = digest_of(data)
        self.blobs.put(digest, data)
        cell = PendingDigest(new_token())
        cell.resolve(bytes.fromhex(digest))
        return cell

    def load(self, digest: str) -> bytes:
        return self.blobs.get(digest)

    def locator(self) -> Any:
        return None
