"""The digest actor under plain pykka, and the client that feeds it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from actors.errors import BlobCorruptedError, BlobNotFoundError, BlobStoreError, DigestError
from actors.refs import (
    CallbackReply,
    DigestActor,
    DigestClient,
    LoadBlob,
    MemoryBlobStore,
    StoreBlob,
    digest_of,
    save,
    using_backend,
)


@pytest.fixture
def blobs() -> MemoryBlobStore:
    return MemoryBlobStore()


@pytest.fixture
def actor(blobs: MemoryBlobStore) -> Iterator[pykka.ActorRef[DigestActor]]:
    ref = DigestActor.start(blobs)
    yield ref
    blobs.release()
    ref.stop()


def store(actor: pykka.ActorRef[DigestActor], data: bytes) -> pykka.ThreadingFuture[Any]:
    reply: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
    actor.tell(StoreBlob(data, reply))
    return reply


def test_each_distinct_blob_is_stored_once_and_repeats_are_dedup_hits(
        actor: pykka.ActorRef[DigestActor], blobs: MemoryBlobStore) -> None:
    digests = [store(actor, data).get(timeout=5) for data in (b"a", b"b", b"a", b"a")]
    assert digests == [digest_of(b"a"), digest_of(b"b"), digest_of(b"a"), digest_of(b"a")]
    assert blobs.written == [digest_of(b"a"), digest_of(b"b")]
    metrics = actor.proxy().metrics().get(timeout=5)
    assert (metrics["digest.blobs_written"], metrics["digest.dedup_hits"]) == (2, 2)


def test_the_digest_is_answered_only_once_the_blob_is_durable(
        actor: pykka.ActorRef[DigestActor], blobs: MemoryBlobStore) -> None:
    blobs.hold()
    reply = store(actor, b"slow disk")
    with pytest.raises(pykka.Timeout):
        reply.get(timeout=0.05)
    assert blobs.written == []
    blobs.release()
    assert reply.get(timeout=5) == digest_of(b"slow disk")


def test_reading_a_corrupted_blob_raises_the_typed_error_naming_it(
        actor: pykka.ActorRef[DigestActor], blobs: MemoryBlobStore) -> None:
    digest = store(actor, b"precious").get(timeout=5)
    blobs.corrupt(digest)
    with pytest.raises(BlobCorruptedError) as raised:
        actor.ask(LoadBlob(digest), timeout=5)
    assert raised.value.digest == digest and digest in str(raised.value)


def test_reading_a_missing_blob_raises_blob_not_found(
        actor: pykka.ActorRef[DigestActor]) -> None:
    with pytest.raises(BlobNotFoundError):
        actor.ask(LoadBlob(digest_of(b"never stored")), timeout=5)


class FailingStore(MemoryBlobStore):
    def put(self, digest: str, data: bytes) -> bool:
        if data == b"poison":
            raise OSError(28, "No space left on device")
        return super().put(digest, data)


def test_a_store_failure_answers_blob_store_error_and_the_actor_goes_on() -> None:
    actor = DigestActor.start(FailingStore())
    try:
        with pytest.raises(BlobStoreError, match="could not be stored"):
            store(actor, b"poison").get(timeout=5)
        assert store(actor, b"fine").get(timeout=5) == digest_of(b"fine")
        assert actor.proxy().metrics().get(timeout=5)["digest.failed_writes"] == 1
    finally:
        actor.stop()


class LosesFirstAnswers:
    """A digest actor whose first ``lost`` answers never arrive (it died before replying)."""

    def __init__(self, actor: pykka.ActorRef[DigestActor], lost: int) -> None:
        self.actor = actor
        self.lost = lost
        self.sent = 0

    def tell(self, message: StoreBlob) -> None:
        self.sent += 1
        if self.sent <= self.lost:
            message.reply_to.set_exception(pykka.ActorDeadError("digest process killed"))
            return
        self.actor.tell(message)


def test_a_save_whose_answer_was_lost_is_redone(
        actor: pykka.ActorRef[DigestActor], blobs: MemoryBlobStore) -> None:
    flaky = LosesFirstAnswers(actor, lost=2)
    client = DigestClient(flaky)
    try:
        with using_backend(client):
            ref = save({"x": 1})
            assert ref.wait(10).hex() in blobs.blobs
        assert flaky.sent == 3
    finally:
        client.close()


def test_a_save_refused_for_good_fails_its_ref() -> None:
    actor = DigestActor.start(FailingStore())
    client = DigestClient(actor)
    try:
        with using_backend(client), pytest.raises(DigestError):
            save(b"poison").wait(5)
    finally:
        client.close()
        actor.stop()


def test_a_save_that_stays_unanswered_past_retry_for_fails() -> None:
    class Dead:
        def tell(self, message: StoreBlob) -> None:
            raise pykka.ActorDeadError("gone for good")

    client = DigestClient(Dead(), retry_for=0.2)
    try:
        with using_backend(client), pytest.raises(DigestError):
            save("v").wait(10)
    finally:
        client.close()


def test_save_waits_for_room_past_max_pending_bytes(
        actor: pykka.ActorRef[DigestActor], blobs: MemoryBlobStore) -> None:
    blobs.hold()
    client = DigestClient(actor, max_pending_bytes=100)
    saved = threading.Event()
    try:
        with using_backend(client):
            save(b"a" * 80)
            second = threading.Thread(target=lambda: (save(b"b" * 80), saved.set()))
            second.start()
            assert not saved.wait(0.1)  # bounded memory: it waits for the first to be stored
            blobs.release()
            assert saved.wait(5)
            second.join(5)
    finally:
        client.close()


def test_a_closed_client_fails_the_saves_it_had_not_stored(
        actor: pykka.ActorRef[DigestActor], blobs: MemoryBlobStore) -> None:
    blobs.hold()
    client = DigestClient(actor)
    with using_backend(client):
        ref = save("late")
    client.close(timeout=0.2)
    blobs.release()
    with pytest.raises(DigestError):
        ref.wait(5)


def test_a_callback_reply_calls_back_instead_of_waking_a_waiter() -> None:
    seen: list[Any] = []
    reply = CallbackReply(seen.append, seen.append)
    reply.set("digest")
    error = ValueError("no")
    reply.set_exception((ValueError, error, None))
    assert seen == ["digest", error]
