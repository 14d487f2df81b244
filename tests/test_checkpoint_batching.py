"""The checkpoint actor's batching, as specified: plain pykka, one process, a fake clock.

Checkpoints are made to queue up by holding a "plug" commit at a gate; every wait
is on a future or an event with a deadline.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pykka
import pytest

from actors import BranchActor, BranchContext
from actors.branches import BranchSpec
from actors.bundles import Bundle
from actors.checkpointing import BatchingPolicy, CheckpointActor
from actors.clock import FakeClock
from actors.errors import CheckpointError
from actors.protocol import Checkpoint, Checkpoints, LogDelivery, RunBranch
from actors.records import BranchLog, OperationUpdate, OpKind, OpStatus, Update
from actors.store import MemoryStore

from actors_for_tests import Recorder

DEADLINE = 5.0  # seconds any single wait may take before the test fails
STREAM_CHUNK = BatchingPolicy().stream_chunk
BUNDLE_LIMIT = BatchingPolicy().bundle_limit


class Noop(BranchActor):
    def run(self, ctx: BranchContext, item: Any) -> Any:
        return item


class GatedStore(MemoryStore):
    """A MemoryStore that, once ``hold()`` is called, keeps its next commit from returning.

    The held commit has already written: what a test prepares (``fail_next``) applies
    to the commit after it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._gate = threading.Event()
        self._gate.set()
        self.entered = threading.Event()

    def hold(self) -> None:
        self._gate.clear()
        self.entered.clear()

    def release(self) -> None:
        self._gate.set()

    def commit(
        self, updates: Sequence[Update], read_logs: Sequence[str], now: float
    ) -> dict[str, BranchLog]:
        logs = super().commit(updates, read_logs, now)
        self.entered.set()
        if not self._gate.wait(DEADLINE):
            raise AssertionError("the test never released the gate")
        return logs


Start = Callable[..., "pykka.ActorRef[CheckpointActor]"]


@pytest.fixture
def start(fake_clock: FakeClock) -> Iterator[Start]:
    refs: list[pykka.ActorRef[CheckpointActor]] = []

    def start_actor(store: MemoryStore, **limits: Any) -> pykka.ActorRef[CheckpointActor]:
        ref = CheckpointActor.start(store=store, clock=fake_clock,
                                    batching=BatchingPolicy(**limits))
        refs.append(ref)
        return ref

    yield start_actor
    for ref in refs:
        ref.stop(timeout=DEADLINE)


def update(branch: str, op_id: str, payload: bytes = b"x" * 100) -> OperationUpdate:
    return OperationUpdate("e1", branch, op_id, OpKind.STEP, "step", OpStatus.SUCCEEDED,
                           payload=payload)


def send(
    ref: pykka.ActorRef[CheckpointActor], branch: str, upd: Update | None, wait: bool = True
) -> pykka.ThreadingFuture[Any]:
    reply: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
    ref.tell(Checkpoint(branch, upd, reply_to=reply if wait else None))
    return reply


def plug(ref: pykka.ActorRef[CheckpointActor], store: GatedStore) -> pykka.ThreadingFuture[Any]:
    """Hold a first commit at the gate, so that what is sent next queues in the inbox."""
    store.hold()
    reply = send(ref, "plug", update("plug", "0"))
    assert store.entered.wait(DEADLINE), "the plug never reached the store"
    return reply


def after_plug(store: MemoryStore) -> list[tuple[Update, ...]]:
    return [updates for updates, _ in store.commits[1:]]


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.001)


def metrics(ref: pykka.ActorRef[CheckpointActor]) -> dict[str, int]:
    result: dict[str, int] = ref.proxy().metrics().get(timeout=DEADLINE)
    return result


def test_300_queued_updates_with_limit_250_go_out_as_250_then_50(start: Start) -> None:
    store = GatedStore()
    ref = start(store, max_ops=250)
    plug(ref, store)
    sent = [update(f"b{i}", "1") for i in range(300)]
    replies = [send(ref, u.branch_id, u) for u in sent]
    store.release()
    assert [r.get(timeout=DEADLINE) for r in replies] == [None] * 300
    assert [len(batch) for batch in after_plug(store)] == [250, 50]
    assert [u for batch in after_plug(store) for u in batch] == sent


def test_limit_1_sends_one_update_per_batch(start: Start) -> None:
    store = GatedStore()
    ref = start(store, max_ops=1)
    plug(ref, store)
    sent = [update("b1", str(i)) for i in range(5)]
    replies = [send(ref, "b1", u) for u in sent]
    store.release()
    for reply in replies:
        reply.get(timeout=DEADLINE)
    assert after_plug(store) == [(u,) for u in sent]


def test_an_update_over_the_byte_limit_goes_to_the_next_batch_in_order(start: Start) -> None:
    store = GatedStore()
    ref = start(store, max_bytes=1000)
    plug(ref, store)
    a, b, c = (update("b1", op, b"x" * 300) for op in "abc")  # 364 bytes each with overhead
    d, e = update("b1", "d"), update("b1", "e")  # 164 bytes each
    big = update("b1", "big", b"x" * 2000)  # over the limit on its own
    replies = [send(ref, "b1", u) for u in (a, b, c, d, big, e)]
    store.release()
    for reply in replies:
        reply.get(timeout=DEADLINE)
    assert after_plug(store) == [(a, b), (c, d), (big,), (e,)]


def test_999_queued_empties_are_answered_by_exactly_1_store_call(start: Start) -> None:
    store = GatedStore()
    branches = [f"b{i}" for i in range(999)]
    store.commit([update(b, "1", b.encode()) for b in branches], [], now=1.0)
    ref = start(store)
    plug(ref, store)
    replies = [send(ref, b, None) for b in branches]
    store.release()
    logs = [r.get(timeout=DEADLINE) for r in replies]
    assert [(log.branch_id, log.operations[0].payload) for log in logs] == [
        (b, b.encode()) for b in branches
    ]
    assert store.commits[-1] == ((), tuple(branches))
    counters = metrics(ref)
    assert counters["checkpoint.store_calls"] == 2  # the plug, then all 999
    assert counters["checkpoint.empty_requests"] == 999
    assert counters["checkpoint.empty_batches"] == 1


class StreamingStore(GatedStore):
    """Notes in ``events`` when it reads each chunk of logs; can fail after the first."""

    def __init__(self, fail_after_first: BaseException | None = None) -> None:
        super().__init__()
        self.events: list[tuple[str, Any]] = []
        self._fail_after_first = fail_after_first

    def read_logs(self, branch_ids: Sequence[str], chunk: int) -> Iterator[dict[str, BranchLog]]:
        for number, logs in enumerate(super().read_logs(branch_ids, chunk)):
            if number == 1 and self._fail_after_first is not None:
                raise self._fail_after_first
            self.events.append(("read", number))
            yield logs


class Answer:
    """A reply handle that notes its answer in a shared list of events."""

    def __init__(self, branch: str, events: list[tuple[str, Any]]) -> None:
        self.branch = branch
        self.events = events
        self.value: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def set(self, value: Any = None) -> None:
        self.value = value
        self.events.append(("answered", self.branch))
        self.done.set()

    def set_exception(self, exc_info: Any = None) -> None:
        self.error = exc_info[1] if isinstance(exc_info, tuple) else exc_info
        self.done.set()


def queue_empties(ref: pykka.ActorRef[CheckpointActor], store: StreamingStore,
                  count: int) -> list[Answer]:
    branches = [f"b{i}" for i in range(count)]
    store.commit([update(b, "1", b.encode()) for b in branches], [], now=1.0)
    plug(ref, store)
    answers = [Answer(b, store.events) for b in branches]
    for answer in answers:
        ref.tell(Checkpoint(answer.branch, None, reply_to=answer))
    store.release()
    for answer in answers:
        assert answer.done.wait(DEADLINE), f"{answer.branch} was never answered"
    return answers


def test_a_wave_of_empties_is_answered_chunk_by_chunk_as_its_logs_are_read(start: Start) -> None:
    store = StreamingStore()
    ref = start(store)
    answers = queue_empties(ref, store, 3 * STREAM_CHUNK)
    assert [(a.value.branch_id, a.value.operations[0].payload) for a in answers] == [
        (a.branch, a.branch.encode()) for a in answers
    ]
    first_chunk = {("answered", a.branch) for a in answers[:STREAM_CHUNK]}
    second_read = store.events.index(("read", 1))
    assert first_chunk <= set(store.events[:second_read])
    counters = metrics(ref)
    assert counters["checkpoint.store_calls"] == 2  # the plug, then one read for the wave
    assert counters["checkpoint.empty_batches"] == 1


def test_a_store_failure_part_way_through_a_wave_fails_only_the_empties_not_yet_answered(
    start: Start,
) -> None:
    broken = OSError(5, "Input/output error")
    store = StreamingStore(fail_after_first=broken)
    ref = start(store)
    answers = queue_empties(ref, store, 3 * STREAM_CHUNK)
    answered, failed = answers[:STREAM_CHUNK], answers[STREAM_CHUNK:]
    assert [a.value.branch_id for a in answered] == [a.branch for a in answered]
    assert all(a.error is None for a in answered)
    for answer in failed:
        assert isinstance(answer.error, CheckpointError) and answer.error.original is broken
        assert answer.value is None
    counters = metrics(ref)
    assert counters["checkpoint.failed_batches"] == 1
    assert counters["checkpoint.empty_batches"] == 0
    assert counters["checkpoint.lost_updates"] == 0


def test_400_empties_and_10_updates_with_ops_limit_11_are_one_store_call(start: Start) -> None:
    store = GatedStore()
    ref = start(store, max_ops=11)
    plug(ref, store)
    updates = [update(f"b{i}", "1") for i in range(10)]
    empties: list[tuple[str, pykka.ThreadingFuture[Any]]] = []
    for i in range(400):
        if i % 40 == 0:
            send(ref, f"b{i // 40}", updates[i // 40])
        branch = f"b{i % 10}"
        empties.append((branch, send(ref, branch, None)))
    store.release()
    for branch, reply in empties:
        log = reply.get(timeout=DEADLINE)
        assert log.branch_id == branch
        # Some of these empties were sent after their branch's update: the log holds it.
        assert [op.op_id for op in log.operations] == ["1"]
    assert after_plug(store) == [tuple(updates)]
    assert metrics(ref)["checkpoint.store_calls"] == 2


def test_a_store_failure_reaches_every_waiter_and_none_is_told_it_was_written(
    start: Start,
) -> None:
    store = GatedStore()
    ref = start(store)
    plug(ref, store)
    disk_full = OSError(28, "No space left on device")
    store.fail_next(disk_full)
    replies = [
        send(ref, "b1", update("b1", "1")),
        send(ref, "b2", update("b2", "1"), wait=False),
        send(ref, "b3", None),
        send(ref, "b4", update("b4", "1")),
    ]
    store.release()
    for reply in (replies[0], replies[2], replies[3]):
        with pytest.raises(CheckpointError) as caught:
            reply.get(timeout=DEADLINE)
        assert caught.value.original is disk_full
        assert caught.value.__cause__ is disk_full
    assert store.operations.keys() == {"plug"}
    counters = metrics(ref)
    assert counters["checkpoint.updates"] == 1  # the plug's only
    assert counters["checkpoint.failed_batches"] == 1
    assert counters["checkpoint.lost_updates"] == 1


@pytest.mark.timeout(30)
def test_under_load_the_actor_waits_within_the_window_for_more_before_writing(
    start: Start,
) -> None:
    store = GatedStore()
    # The fake clock never ends this window, and no real quiet gap ends it early: the
    # third update may come any time after the actor has taken the first two.
    ref = start(store, max_ops=3, window=3600.0, quiet_gap=3600.0)
    plug(ref, store)
    first = [update("b1", "1"), update("b1", "2")]
    replies = [send(ref, "b1", u) for u in first]
    store.release()
    wait_until(ref.actor_inbox.empty)  # both taken: the actor now waits for more
    last = update("b1", "3")
    replies.append(send(ref, "b1", last))  # fills the batch, which then goes at once
    for reply in replies:
        reply.get(timeout=DEADLINE)
    assert after_plug(store) == [(*first, last)]


@pytest.mark.timeout(30)
def test_under_load_a_quiet_inbox_ends_the_window_early(start: Start) -> None:
    store = GatedStore()
    ref = start(store, max_ops=3, window=3600.0, quiet_gap=0.05)  # only the gap can end it
    plug(ref, store)
    first = [update("b1", "1"), update("b1", "2")]
    replies = [send(ref, "b1", u) for u in first]
    store.release()
    for reply in replies:
        reply.get(timeout=DEADLINE)  # answered though the batch never filled
    assert after_plug(store) == [tuple(first)]


@pytest.mark.timeout(30)
def test_an_idle_actor_writes_a_lone_checkpoint_at_once(start: Start) -> None:
    store = MemoryStore()
    ref = start(store, window=3600.0)  # waiting out this window would fail the deadline
    for op_id in ("1", "2"):
        assert send(ref, "b1", update("b1", op_id)).get(timeout=DEADLINE) is None
    assert store.calls == 2
    assert [len(updates) for updates, _ in store.commits] == [1, 1]


def test_after_a_store_failure_the_actor_stays_up_and_the_next_batch_is_written(
    start: Start,
) -> None:
    store = MemoryStore()
    ref = start(store)
    store.fail_next(OSError(28, "No space left on device"))
    with pytest.raises(CheckpointError):
        send(ref, "b1", update("b1", "1")).get(timeout=DEADLINE)
    assert send(ref, "b1", update("b1", "1")).get(timeout=DEADLINE) is None
    assert store.operations["b1"].keys() == {"1"}
    assert ref.is_alive()


def test_a_lost_update_nobody_waited_for_fails_the_next_waiter_of_its_branch(
    start: Start,
) -> None:
    store = GatedStore()
    ref = start(store)
    plug(ref, store)
    store.fail_next(OSError(5, "Input/output error"))
    send(ref, "b1", update("b1", "1"), wait=False)  # lost, and nobody is told right away
    other = send(ref, "b9", update("b9", "1"))  # same batch: shows when it has failed
    store.release()
    with pytest.raises(CheckpointError):
        other.get(timeout=DEADLINE)
    with pytest.raises(CheckpointError, match="earlier checkpoint of branch 'b1'"):
        send(ref, "b1", update("b1", "2")).get(timeout=DEADLINE)
    assert store.operations["b1"].keys() == {"2"}  # written, though its waiter was warned
    assert send(ref, "b1", update("b1", "3")).get(timeout=DEADLINE) is None  # warned once
    assert metrics(ref)["checkpoint.lost_updates"] == 1


def test_an_update_from_a_run_older_than_the_dispatched_one_is_fenced_off(start: Start) -> None:
    store = MemoryStore()
    ref = start(store)
    dispatched: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
    ref.tell(Checkpoint("b", None, reply_to=dispatched, epoch=2))  # run 2 is dispatched
    dispatched.get(timeout=DEADLINE)
    stale = OperationUpdate("e1", "b", "1", OpKind.STEP, "step", OpStatus.SUCCEEDED,
                            payload=b"old", epoch=1)
    with pytest.raises(CheckpointError, match="superseded by run 2"):
        send(ref, "b", stale).get(timeout=DEADLINE)
    current = OperationUpdate("e1", "b", "1", OpKind.STEP, "step", OpStatus.SUCCEEDED,
                              payload=b"new", epoch=2)
    send(ref, "b", current).get(timeout=DEADLINE)
    (op,) = store.read_log("b").operations
    assert op.payload == b"new"  # nothing of run 1 was written
    assert metrics(ref)["checkpoint.fenced"] == 1


def test_log_deliveries_to_one_worker_are_answered_by_one_bundle_in_their_order(
    start: Start,
) -> None:
    worker, other = Recorder.start(), Recorder.start()
    try:
        ref = start(MemoryStore())
        deliveries = [LogDelivery(worker if i % 3 else other, other,
                                  BranchSpec("e1", f"b{i}", Noop, None), epoch=1)
                      for i in range(6)]
        ref.tell(Checkpoints(tuple(Checkpoint(d.spec.branch_id, None, reply_to=d, epoch=1)
                                   for d in deliveries)))
        wait_until(lambda: len(worker.ask("seen")) == 1 and len(other.ask("seen")) == 1)
        (to_worker,), (to_other,) = worker.ask("seen"), other.ask("seen")
        assert isinstance(to_worker, Bundle)
        assert [run.spec.branch_id for run in to_worker.items] == ["b1", "b2", "b4", "b5"]
        assert all(isinstance(run.log, BranchLog) and run.log.branch_id == run.spec.branch_id
                   for run in to_worker.items)
        assert [run.spec.branch_id for run in to_other.items] == ["b0", "b3"]
    finally:
        worker.stop()
        other.stop()


def test_a_group_over_the_bundle_limit_goes_out_in_bundles_of_the_limit(start: Start) -> None:
    worker = Recorder.start()
    try:
        ref = start(MemoryStore())
        count = BUNDLE_LIMIT + 1
        ref.tell(Checkpoints(tuple(
            Checkpoint(f"b{i}", None, reply_to=LogDelivery(
                worker, worker, BranchSpec("e1", f"b{i}", Noop, None), epoch=1))
            for i in range(count))))
        wait_until(lambda: len(worker.ask("seen")) == 2)
        first, second = worker.ask("seen")
        assert len(first.items) == BUNDLE_LIMIT
        assert isinstance(second, RunBranch) and second.spec.branch_id == f"b{count - 1}"
    finally:
        worker.stop()


def test_a_configured_bundle_limit_sizes_the_answer_bundles(start: Start) -> None:
    worker = Recorder.start()
    try:
        ref = start(MemoryStore(), bundle_limit=3)
        ref.tell(Checkpoints(tuple(
            Checkpoint(f"b{i}", None, reply_to=LogDelivery(
                worker, worker, BranchSpec("e1", f"b{i}", Noop, None), epoch=1))
            for i in range(7))))
        wait_until(lambda: len(worker.ask("seen")) == 3)
        sizes = [len(m.items) if isinstance(m, Bundle) else 1 for m in worker.ask("seen")]
        assert sizes == [3, 3, 1]
    finally:
        worker.stop()


class _Journaled:
    """A worker stand-in whose messages go into one journal shared with other recipients."""

    def __init__(self, name: str, journal: list[tuple[str, Any]]) -> None:
        self.name, self.journal = name, journal

    def tell(self, message: Any) -> None:
        self.journal.append((self.name, message))


def test_groups_of_several_recipients_are_answered_a_bundle_at_a_time_in_turns(
    start: Start,
) -> None:
    journal: list[tuple[str, Any]] = []
    workers = [_Journaled("w0", journal), _Journaled("w1", journal)]
    ref = start(MemoryStore())
    count = 4 * BUNDLE_LIMIT  # two bundles for each worker
    ref.tell(Checkpoints(tuple(
        Checkpoint(f"b{i}", None, reply_to=LogDelivery(
            workers[i % 2], workers[i % 2], BranchSpec("e1", f"b{i}", Noop, None), epoch=1))
        for i in range(count))))
    wait_until(lambda: len(journal) == 4)
    assert [name for name, _ in journal] == ["w0", "w1", "w0", "w1"]
    for name in ("w0", "w1"):  # each worker's runs still come in their order
        runs = [run for who, bundle in journal if who == name for run in bundle.items]
        expected = [f"b{i}" for i in range(count) if f"w{i % 2}" == name]
        assert [run.spec.branch_id for run in runs] == expected


def test_an_update_of_a_run_this_actor_never_saw_dispatched_is_fenced_off(start: Start) -> None:
    store = MemoryStore()
    ref = start(store)  # a restarted checkpoint actor: it knows no run of "b"
    before_restart = OperationUpdate("e1", "b", "1", OpKind.STEP, "step", OpStatus.SUCCEEDED,
                                     payload=b"old", epoch=1)
    with pytest.raises(CheckpointError, match="before the checkpoint actor restarted"):
        send(ref, "b", before_restart).get(timeout=DEADLINE)
    dispatched: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
    ref.tell(Checkpoint("b", None, reply_to=dispatched, epoch=2))  # dispatched again
    dispatched.get(timeout=DEADLINE)
    send(ref, "b", dataclasses.replace(before_restart, payload=b"new", epoch=2)).get(
        timeout=DEADLINE)
    (op,) = store.read_log("b").operations
    assert op.payload == b"new"
    assert metrics(ref)["checkpoint.fenced"] == 1
