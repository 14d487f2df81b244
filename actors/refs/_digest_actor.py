"""The digest actor: hashes and stores each distinct blob once, off the branches' threads."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pykka

from actors import tracelog
from actors.errors import BlobStoreError
from actors.refs._blob_store import BlobStore, digest_of
from actors.refs._pending import producing_digests
from actors.replies import ReplyTo

log = tracelog.get_logger("actors.digest")

COUNTERS = ("digest.blobs_written", "digest.dedup_hits", "digest.bytes_written",
            "digest.failed_writes")


class DigestActor(pykka.ThreadingActor):
    """Hashes and stores blobs once; answers digests; verifies every read.

        ref = DigestActor.start(MemoryBlobStore())
        ref.tell(StoreBlob(b"...", reply_to=future))   # future.get() -> hex digest, once durable
        ref.ask(LoadBlob(digest))                       # the verified bytes
        ref.proxy().metrics().get()["digest.dedup_hits"]
    """

    def __init__(self, blobs: BlobStore) -> None:
        super().__init__()
        self._blobs = blobs
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._log = tracelog.get_logger("actors.digest").bind(actor="digest")

    def metrics(self) -> dict[str, int]:
        """``digest.blobs_written`` (distinct blobs stored), ``digest.dedup_hits``, and more."""
        return dict(self._counters)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, StoreBlob):
            self._store(message)
            return None
        if isinstance(message, LoadBlob):
            return self._blobs.get(message.digest)
        return super().on_receive(message)

    def _store(self, message: StoreBlob) -> None:
        data = message.data
        started = time.perf_counter()
        digest = digest_of(data)
        try:
            with producing_digests():
                written = self._blobs.put(digest, data)
        except Exception as exc:  # disk full, permissions: this save fails, the actor goes on
            self._counters["digest.failed_writes"] += 1
            self._log.error("digest.store_failed", digest=digest, size=len(data), error=repr(exc))
            error = BlobStoreError(
                f"blob {digest} ({len(data)} bytes) could not be stored: {exc!r}; free space "
                "or fix the blobs directory's permissions, then replay the branch"
            )
            _answer(message.reply_to, None, error)
            return
        counters = self._counters
        if written:
            counters["digest.blobs_written"] += 1
            counters["digest.bytes_written"] += len(data)
        else:
            counters["digest.dedup_hits"] += 1
        self._log.info("digest.stored", digest=digest, size=len(data), written=written,
                       duration_ms=round((time.perf_counter() - started) * 1e3, 3))
        _answer(message.reply_to, digest, None)


def _answer(reply_to: ReplyTo, value: Any, error: BaseException | None) -> None:
    try:
        if error is None:
            reply_to.set(value)
        else:
            reply_to.set_exception((type(error), error, None))
    except Exception as exc:  # the asker is gone: the blob is stored all the same
        log.warning("digest.reply_failed", error=repr(exc))


@dataclass(frozen=True, slots=True)
class StoreBlob:
    """Hash ``data`` and store it once; answer ``reply_to`` with its hex digest once durable.

    A store failure answers ``BlobStoreError``. ``data`` holds its children's
    digests already (a parent is sent only after them).
    """

    data: bytes
    reply_to: ReplyTo


@dataclass(frozen=True, slots=True)
class LoadBlob:
    """Ask for a blob's bytes, verified against ``digest`` (``BlobCorruptedError`` if not)."""

    digest: str
