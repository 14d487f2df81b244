"""A worker loop's sends of one turn leave together; a failed send reaches its waiters."""

from __future__ import annotations

import asyncio
from typing import Any

import pykka
import pytest
from pykka import ActorDeadError

from actors.bundles import Bundle
from actors.checkpointing import BatchingPolicy, CheckpointOutbox, LoopOutbox
from actors.errors import CheckpointError
from actors.protocol import Checkpoint, Checkpoints, Suspend, SuspensionKey
from actors.records import OperationUpdate, OpKind, OpStatus
from actors.replies import AwaitableReply


def checkpoint(branch: str, op_id: str, reply: Any = None) -> Checkpoint:
    update = OperationUpdate("e", branch, op_id, OpKind.STEP, "s", OpStatus.SUCCEEDED, epoch=1)
    return Checkpoint(branch, update, reply_to=reply)


def suspension(branch: str) -> Suspend:
    op = OperationUpdate("e", branch, "2", OpKind.WAIT, "w", OpStatus.SUSPENDED, due_at=9.0,
                         epoch=1)
    return Suspend(SuspensionKey(branch, 1, 0), op, 0.1, "w", AwaitableReply(), True)


def one_turn(send: Any) -> None:
    """Run ``send(outbox)`` in a coroutine and give the loop the turn that flushes it."""

    async def main() -> None:
        send()
        await asyncio.sleep(0)  # the flush scheduled by the first send runs now
        await asyncio.sleep(0)

    asyncio.run(main())


def test_sends_of_one_turn_leave_as_one_message_per_recipient_checkpoints_first() -> None:
    order: list[Any] = []
    outbox: list[LoopOutbox] = []

    def send() -> None:
        loop = asyncio.get_running_loop()
        box = LoopOutbox(loop, lambda batch: order.append(("checkpoints", batch)),
                         lambda message: order.append(("scheduler", message)))
        outbox.append(box)
        box.suspension(suspension("e/0"))
        box.checkpoint(checkpoint("e/1", "1"))
        box.checkpoint(checkpoint("e/1", "2"))
        box.suspension(suspension("e/1"))

    one_turn(send)

    assert [kind for kind, _ in order] == ["checkpoints", "scheduler"]
    assert [c.update.op_id for c in order[0][1]] == ["1", "2"]
    assert isinstance(order[1][1], Bundle)
    assert [s.key.branch_id for s in order[1][1].items] == ["e/0", "e/1"]
    assert outbox[0].flushes == 1


def test_suspensions_of_one_turn_go_in_bundles_of_the_policys_bundle_limit() -> None:
    told: list[Any] = []

    def send() -> None:
        box = LoopOutbox(asyncio.get_running_loop(), lambda batch: None, told.append,
                         BatchingPolicy(bundle_limit=2))
        for i in range(5):
            box.suspension(suspension(f"e/{i}"))

    one_turn(send)

    assert [len(m.items) if isinstance(m, Bundle) else 1 for m in told] == [2, 2, 1]
    flat = [s for m in told for s in (m.items if isinstance(m, Bundle) else (m,))]
    assert [s.key.branch_id for s in flat] == [f"e/{i}" for i in range(5)]


def test_suspensions_a_gone_scheduler_cannot_take_fail_their_verdicts() -> None:
    told = [suspension("e/0"), suspension("e/1")]

    def refuse(message: Any) -> None:
        raise ActorDeadError("scheduler is stopped")

    def send() -> None:
        box = LoopOutbox(asyncio.get_running_loop(), lambda batch: None, refuse)
        for message in told:
            box.suspension(message)

    one_turn(send)

    for message in told:
        with pytest.raises(CheckpointError, match="was not sent"):
            message.reply_to.get(timeout=1)


def test_after_a_lost_update_nobody_waited_for_the_runs_next_waiter_is_refused() -> None:
    sent: list[Any] = []

    def tell(message: Any) -> None:
        if not sent:
            sent.append("failed")
            raise ActorDeadError("checkpoint actor is gone")
        sent.append(message)

    outbox = CheckpointOutbox(tell)
    outbox.send_all([checkpoint("e/0", "1")])  # lost: nobody waits for it
    reply: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
    outbox.send_all([checkpoint("e/0", "2", reply), checkpoint("e/1", "1")])

    with pytest.raises(CheckpointError, match="nobody waited for was not sent"):
        reply.get(timeout=1)
    assert len(sent) == 2 and isinstance(sent[1], Checkpoint)  # e/1's went; e/0's did not
    assert sent[1].branch_id == "e/1"


def test_send_all_combines_the_messages_into_one() -> None:
    sent: list[Any] = []
    outbox = CheckpointOutbox(sent.append)
    outbox.send_all([checkpoint("e/0", "1"), checkpoint("e/1", "1"), checkpoint("e/0", "2")])

    assert len(sent) == 1 and isinstance(sent[0], Checkpoints)
    assert [(c.branch_id, c.update.op_id) for c in sent[0].items] == [
        ("e/0", "1"), ("e/1", "1"), ("e/0", "2")]
