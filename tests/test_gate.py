"""The checkpoint gate: checkpoints naming pending Refs are released by continuations, in order."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from actors import Ref
from actors.checkpointing import CheckpointGate
from actors.errors import CheckpointError
from actors.protocol import Checkpoint
from actors.records import OperationUpdate, OpKind, OpStatus
from actors.refs import (
    DigestActor,
    DigestClient,
    MemoryBlobStore,
    PendingDigest,
    new_token,
    save,
    tokens_in,
    using_backend,
)

from conftest import wait_until


@pytest.fixture
def held_store() -> Iterator[MemoryBlobStore]:
    """A digest actor whose store holds every write until released, wired as the backend."""
    blobs = MemoryBlobStore()
    blobs.hold()
    actor = DigestActor.start(blobs)
    client = DigestClient(actor)
    try:
        with using_backend(client):
            yield blobs
    finally:
        blobs.release()
        client.close()
        actor.stop()


def step_done(op_id: str, payload: bytes) -> OperationUpdate:
    return OperationUpdate("e", "b", op_id, OpKind.STEP, f"s{op_id}", OpStatus.SUCCEEDED,
                           payload=payload)


def serialized(gate: CheckpointGate, value: Any) -> bytes:
    with gate.tracking():
        return pickle.dumps(value)


def test_a_checkpoint_naming_a_pending_ref_waits_for_its_blob(
        held_store: MemoryBlobStore) -> None:
    gate, sent = CheckpointGate("b"), []
    ref = save({"big": list(range(1000))})
    gate.send(Checkpoint("b", step_done("1", serialized(gate, {"result": ref}))), sent.append)
    assert sent == [] and gate.held == 1
    held_store.release()
    wait_until(lambda: sent, timeout=5)
    payload = sent[0].update.payload
    assert tokens_in(payload) == []
    assert pickle.loads(payload)["result"].digest == ref.digest


def test_checkpoints_behind_a_held_one_keep_their_order(held_store: MemoryBlobStore) -> None:
    gate, sent = CheckpointGate("b"), []
    ref = save("value")
    gate.send(Checkpoint("b", step_done("1", serialized(gate, ref))), sent.append)
    gate.send(Checkpoint("b", step_done("2", serialized(gate, "plain"))), sent.append)
    gate.send(Checkpoint("b", None), sent.append)
    assert sent == []
    held_store.release()
    wait_until(lambda: len(sent) == 3, timeout=5)
    assert [m.update and m.update.op_id for m in sent] == ["1", "2", None]


def test_a_checkpoint_naming_only_durable_refs_goes_at_once(held_store: MemoryBlobStore) -> None:
    held_store.release()
    gate, sent = CheckpointGate("b"), []
    ref = save("value")
    ref.wait(5)
    gate.send(Checkpoint("b", step_done("1", serialized(gate, ref))), sent.append)
    assert len(sent) == 1


def test_a_ref_serialized_while_pending_is_patched_even_if_durable_before_the_send(
        held_store: MemoryBlobStore) -> None:
    gate, sent = CheckpointGate("b"), []
    ref = save("value")
    payload = serialized(gate, ref)
    held_store.release()
    ref.wait(5)
    gate.send(Checkpoint("b", step_done("1", payload)), sent.append)
    assert tokens_in(sent[0].update.payload) == []
    assert pickle.loads(sent[0].update.payload) == ref


def test_a_failed_digest_fails_the_held_checkpoints_and_the_runs_later_ones() -> None:
    gate, sent = CheckpointGate("b"), []
    cell = PendingDigest(new_token())
    ref = Ref(cell, 5, "pickle")
    waiter: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
    gate.send(Checkpoint("b", step_done("1", serialized(gate, ref))), sent.append)
    gate.send(Checkpoint("b", step_done("2", b"x"), reply_to=waiter), sent.append)
    cell.fail(RuntimeError("disk gone"))
    with pytest.raises(CheckpointError, match="never stored"):
        waiter.get(timeout=5)
    with pytest.raises(CheckpointError):
        gate.send(Checkpoint("b", step_done("3", b"y")), sent.append)
    assert sent == []


def test_a_run_that_never_named_a_pending_ref_sends_straight_through() -> None:
    gate, sent = CheckpointGate("b"), []
    gate.send(Checkpoint("b", step_done("1", serialized(gate, {"plain": 1}))), sent.append)
    assert len(sent) == 1 and gate.held == 0


def test_a_checkpoint_naming_a_ref_whose_save_already_failed_is_refused() -> None:
    gate, sent = CheckpointGate("b"), []
    cell = PendingDigest(new_token())
    payload = serialized(gate, Ref(cell, 5, "pickle"))
    cell.fail(RuntimeError("disk gone"))
    with pytest.raises(CheckpointError, match="never stored"):
        gate.send(Checkpoint("b", step_done("1", payload)), sent.append)
    assert sent == []
