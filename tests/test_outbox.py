"""The worker's checkpoint outbox combines what queues behind a send (pure logic, threads)."""

from __future__ import annotations

import threading
from typing import Any

import pykka
import pytest
from pykka import ActorDeadError

from actors.checkpointing import BatchingPolicy, CheckpointOutbox
from actors.errors import CheckpointError
from actors.protocol import Checkpoint, Checkpoints
from actors.records import OperationUpdate, OpKind, OpStatus

DEADLINE = 5.0


def checkpoint(branch: str, op_id: str, *, epoch: int = 1,
               reply: pykka.ThreadingFuture[Any] | None = None) -> Checkpoint:
    update = OperationUpdate("e", branch, op_id, OpKind.STEP, "s", OpStatus.SUCCEEDED,
                             epoch=epoch)
    return Checkpoint(branch, update, reply_to=reply)


class HeldTell:
    """A ``tell`` whose first call blocks until released, so that others queue behind it."""

    def __init__(self) -> None:
        self.told: list[Any] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_with: Exception | None = None

    def __call__(self, message: Any) -> None:
        if not self.told and not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(DEADLINE), "the test never released the first send"
        if self.fail_with is not None:
            raise self.fail_with
        self.told.append(message)


def send_in_thread(outbox: CheckpointOutbox, message: Checkpoint) -> threading.Thread:
    """``outbox.send(message)`` on a thread of its own; what it raised goes to ``.errors``."""

    def send() -> None:
        try:
            outbox.send(message)
        except Exception as exc:
            errors.append(exc)

    errors: list[Exception] = []
    thread = threading.Thread(target=send)
    thread.errors = errors  # type: ignore[attr-defined]
    thread.start()
    return thread


def test_a_lone_checkpoint_is_told_at_once_as_itself() -> None:
    told: list[Any] = []
    outbox = CheckpointOutbox(told.append)
    message = checkpoint("b1", "1")
    outbox.send(message)
    assert told == [message]


def test_checkpoints_handed_in_during_a_send_go_out_together_in_order() -> None:
    tell = HeldTell()
    outbox = CheckpointOutbox(tell)
    first = send_in_thread(outbox, checkpoint("b0", "1"))
    assert tell.entered.wait(DEADLINE)
    queued = [checkpoint(f"b{i}", "1") for i in range(1, 5)]
    for message in queued:
        outbox.send(message)  # returns at once: the first sender takes it
    tell.release.set()
    first.join(DEADLINE)
    assert len(tell.told) == 2
    assert isinstance(tell.told[1], Checkpoints) and list(tell.told[1].items) == queued
    assert (outbox.messages, outbox.combined) == (2, 3)


def test_a_combined_message_holds_at_most_the_limit() -> None:
    tell = HeldTell()
    outbox = CheckpointOutbox(tell, BatchingPolicy(outbox_limit=2))
    first = send_in_thread(outbox, checkpoint("b0", "1"))
    assert tell.entered.wait(DEADLINE)
    for i in range(1, 6):
        outbox.send(checkpoint(f"b{i}", "1"))
    tell.release.set()
    first.join(DEADLINE)
    assert [len(m.items) if isinstance(m, Checkpoints) else 1 for m in tell.told] == [1, 2, 2, 1]


def test_a_failed_send_fails_each_waiter_of_it_with_checkpoint_error() -> None:
    tell = HeldTell()
    outbox = CheckpointOutbox(tell)
    first = send_in_thread(outbox, checkpoint("b0", "1"))
    assert tell.entered.wait(DEADLINE)
    reply: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
    outbox.send(checkpoint("b1", "1", reply=reply))
    tell.fail_with = ActorDeadError("checkpoint actor is gone")
    tell.release.set()
    first.join(DEADLINE)
    with pytest.raises(CheckpointError, match="not sent"):
        reply.get(timeout=DEADLINE)
    assert [type(e) for e in first.errors] == [ActorDeadError]  # type: ignore[attr-defined]


def test_the_sender_of_a_failed_send_gets_the_error_for_its_own_checkpoint() -> None:
    tell = HeldTell()
    tell.entered.set()  # no holding: the first send fails at once
    tell.fail_with = ActorDeadError("checkpoint actor is gone")
    outbox = CheckpointOutbox(tell)
    with pytest.raises(ActorDeadError):
        outbox.send(checkpoint("b0", "1"))


def test_a_lost_unwatched_update_fails_its_runs_next_checkpoint_not_a_later_runs() -> None:
    tell = HeldTell()
    outbox = CheckpointOutbox(tell)
    first = send_in_thread(outbox, checkpoint("b0", "1"))
    assert tell.entered.wait(DEADLINE)
    outbox.send(checkpoint("b1", "1", epoch=1))  # nobody waits for it
    tell.fail_with = ActorDeadError("checkpoint actor is gone")
    tell.release.set()
    first.join(DEADLINE)
    tell.fail_with = None
    outbox.send(checkpoint("b1", "1", epoch=2))  # a newer run of b1 is not told of it
    with pytest.raises(CheckpointError, match="nobody waited"):
        outbox.send(checkpoint("b1", "2", epoch=1))
    outbox.send(checkpoint("b1", "3", epoch=1))  # told once
