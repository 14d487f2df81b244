"""The checkpoint batching policy, on the pure ``CheckpointBatcher``: no actor, a fake clock.

The actor's side of the same behaviours (a real inbox, a gated store) is in
``test_checkpoint_batching.py``; here each decision is asked of the batcher directly.
"""

from __future__ import annotations

from typing import Any

import pytest

from actors.checkpointing import BatchingPolicy, CheckpointBatch, CheckpointBatcher
from actors.clock import FakeClock
from actors.protocol import Checkpoint
from actors.records import OperationUpdate, OpKind, OpStatus
from runtime import SystemConfig


def update(branch: str, op_id: str, payload: bytes = b"x" * 100) -> OperationUpdate:
    return OperationUpdate("e1", branch, op_id, OpKind.STEP, "step", OpStatus.SUCCEEDED,
                           payload=payload)


def told(branch: str, op_id: str, payload: bytes = b"x" * 100) -> Checkpoint:
    return Checkpoint(branch, update(branch, op_id, payload))


def empty(branch: str, reply_to: Any = None) -> Checkpoint:
    return Checkpoint(branch, None, reply_to=reply_to)


def batcher(clock: FakeClock | None = None, **policy: Any) -> CheckpointBatcher:
    return CheckpointBatcher(BatchingPolicy(**policy), clock or FakeClock())


def batches(b: CheckpointBatcher) -> list[list[Checkpoint]]:
    """Every batch ``b`` hands out while nothing more comes and nothing else waits."""
    found: list[list[Checkpoint]] = []
    while (step := b.next(other_waiting=False)) is not None:
        if isinstance(step, CheckpointBatch):
            found.append(step.messages)
        else:
            b.quiet()  # nobody sends: the wait it asked for ends without a message
    return found


def test_a_lone_checkpoint_of_an_idle_actor_is_handed_out_at_once() -> None:
    b = batcher(window=3600.0)
    message = told("b1", "1")
    b.feed([message], loaded=False)
    step = b.next(other_waiting=False)
    assert isinstance(step, CheckpointBatch) and step.messages == [message]
    assert b.next(other_waiting=False) is None


def test_under_load_the_batcher_asks_to_wait_the_quiet_gap_for_more() -> None:
    b = batcher(window=0.01, quiet_gap=0.001)
    b.feed([told("b1", "1"), told("b1", "2")], loaded=True)
    assert b.hungry
    assert b.next(other_waiting=False) == pytest.approx(0.001)


def test_a_checkpoint_that_comes_within_the_window_joins_the_open_batch() -> None:
    b = batcher(window=3600.0, quiet_gap=3600.0)
    first, second, third = told("b1", "1"), told("b1", "2"), told("b1", "3")
    b.feed([first, second], loaded=True)
    assert isinstance(b.next(other_waiting=False), float)
    b.take(third)
    assert isinstance(b.next(other_waiting=False), float)  # still open: not full
    b.quiet()
    step = b.next(other_waiting=False)
    assert isinstance(step, CheckpointBatch) and step.messages == [first, second, third]


def test_a_quiet_inbox_closes_the_window_early() -> None:
    b = batcher(window=3600.0, quiet_gap=0.05)
    b.feed([told("b1", "1"), told("b1", "2")], loaded=True)
    assert b.next(other_waiting=False) == pytest.approx(0.05)
    b.quiet()
    assert isinstance(b.next(other_waiting=False), CheckpointBatch)


def test_the_window_is_read_from_the_clock_and_ends_however_busy_the_inbox() -> None:
    clock = FakeClock()
    b = batcher(clock, window=0.01, quiet_gap=1.0)
    b.feed([told("b1", "1"), told("b1", "2")], loaded=True)
    assert b.next(other_waiting=False) == pytest.approx(0.01)  # the window, not the gap
    clock.advance(0.006)
    b.take(told("b1", "3"))
    assert b.next(other_waiting=False) == pytest.approx(0.004)  # what is left of it
    clock.advance(0.004)
    b.take(told("b1", "4"))
    step = b.next(other_waiting=False)
    assert isinstance(step, CheckpointBatch) and len(step.messages) == 4


def test_a_message_that_is_not_a_told_checkpoint_closes_the_batch_at_once() -> None:
    b = batcher(window=3600.0)
    b.feed([told("b1", "1"), told("b1", "2")], loaded=True)
    assert isinstance(b.next(other_waiting=True), CheckpointBatch)


def test_a_full_batch_is_handed_out_without_waiting() -> None:
    b = batcher(max_ops=2, window=3600.0)
    b.feed([told("b1", "1"), told("b1", "2")], loaded=True)
    assert isinstance(b.next(other_waiting=False), CheckpointBatch)


def test_300_checkpoints_with_limit_250_are_batches_of_250_then_50_in_order() -> None:
    b = batcher(max_ops=250)
    sent = [told(f"b{i}", "1") for i in range(300)]
    b.feed(sent, loaded=True)
    assert not b.hungry  # the 251st does not fit: the first batch is complete
    found = batches(b)
    assert [len(batch) for batch in found] == [250, 50]
    assert [m for batch in found for m in batch] == sent


def test_an_update_over_the_byte_limit_goes_alone_and_nothing_is_reordered() -> None:
    b = batcher(max_bytes=1000)
    a, c = told("b1", "a", b"x" * 300), told("b1", "c", b"x" * 300)
    big = told("b1", "big", b"x" * 2000)
    b.feed([a, big, c], loaded=False)
    assert batches(b) == [[a], [big], [c]]


def test_the_empties_of_a_batch_are_one_op_and_read_each_branch_once() -> None:
    b = batcher(max_ops=2)
    messages = [empty("b1"), empty("b2"), empty("b1"), told("b3", "1"), empty("b2")]
    b.feed(messages, loaded=False)
    step = b.next(other_waiting=False)
    assert isinstance(step, CheckpointBatch)
    assert step.messages == messages and step.ops == 2
    assert step.read_logs == ["b1", "b2"]


def test_after_a_commit_what_was_left_over_is_load_and_waits_for_more() -> None:
    b = batcher(max_ops=2, window=0.01, quiet_gap=0.001)
    b.feed([told("b1", "1"), told("b1", "2"), told("b1", "3")], loaded=False)
    assert isinstance(b.next(other_waiting=False), CheckpointBatch)  # complete: at once
    assert b.next(other_waiting=False) == pytest.approx(0.001)  # the third, loaded now


def test_after_a_commit_the_next_waiting_checkpoint_is_taken_as_load() -> None:
    b = batcher(window=0.01, quiet_gap=0.001)
    b.feed([told("b1", "1")], loaded=False)
    assert isinstance(b.next(other_waiting=False), CheckpointBatch)
    assert b.hungry and b.next(other_waiting=False) is None  # nothing left unless taken
    b.take(told("b1", "2"))  # came in during the commit
    assert b.next(other_waiting=False) == pytest.approx(0.001)


def test_a_stopping_actor_never_waits_for_more() -> None:
    b = batcher(window=3600.0)
    b.feed([told("b1", "1"), told("b1", "2")], loaded=True, linger=False)
    assert isinstance(b.next(other_waiting=False), CheckpointBatch)


def test_a_batch_of_only_empties_for_more_branches_than_a_chunk_is_streamed() -> None:
    policy = BatchingPolicy(stream_chunk=2)
    assert CheckpointBatch(policy, [empty("b1"), empty("b2"), empty("b3")]).streamed
    assert not CheckpointBatch(policy, [empty("b1"), empty("b2"), empty("b1")]).streamed
    assert not CheckpointBatch(policy, [empty("b1"), empty("b2"), empty("b3"),
                                        told("b4", "1")]).streamed


class Handle:
    """A reply handle of one recipient, as ``LogDelivery`` is (``reply_group``)."""

    def __init__(self, recipient: str) -> None:
        self.reply_group = recipient

    def set(self, value: Any = None) -> None: ...

    def set_exception(self, exc_info: Any = None) -> None: ...

    @staticmethod
    def set_group(answers: Any) -> None: ...


def test_grouped_answers_come_after_the_others_a_bundle_at_a_time_recipients_in_turns() -> None:
    b = batcher(bundle_limit=2)
    w0 = [empty(f"a{i}", Handle("w0")) for i in range(3)]
    w1 = [empty(f"c{i}", Handle("w1")) for i in range(2)]
    alone = [empty("x", object()), empty("y", object())]
    waiters = [w0[0], alone[0], w1[0], w0[1], w0[2], alone[1], w1[1]]
    first, grouped = b.answer_order(waiters)
    assert first == alone
    assert [(kind, members) for kind, members in grouped] == [
        (Handle, w0[:2]), (Handle, w1), (Handle, w0[2:])]


def test_without_answer_grouping_every_waiter_is_answered_alone_in_order() -> None:
    b = batcher(group_answers=False)
    waiters = [empty(f"a{i}", Handle("w0")) for i in range(3)]
    assert b.answer_order(waiters) == (waiters, [])


@pytest.mark.parametrize(("field", "value"), [
    ("max_ops", 0), ("max_bytes", -1), ("stream_chunk", 1.5), ("bundle_limit", True),
    ("outbox_limit", 0), ("window", -0.1), ("quiet_gap", float("nan")),
    ("window", float("inf")), ("group_answers", 1),
])
def test_a_bad_policy_value_is_refused_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=rf"BatchingPolicy\.{field} must be"):
        BatchingPolicy(**{field: value})


def test_system_config_builds_the_policy_from_its_checkpoint_fields() -> None:
    config = SystemConfig(workers=1, checkpoint_max_ops=7, checkpoint_max_bytes=4096,
                          checkpoint_window=0.5)
    assert config.checkpoint_batching == BatchingPolicy(max_ops=7, max_bytes=4096, window=0.5)
    defaults = SystemConfig(workers=1)
    assert defaults.checkpoint_batching == BatchingPolicy()
