"""The scheduler's deferred checkpoints, on a fake clock: plain pykka, one process, no sleeps."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pykka
import pytest

from actors.bundles import Bundle
from actors.checkpointing import CheckpointActor
from actors.clock import FakeClock, Tick
from actors.protocol import (
    Checkpoint,
    DependencyDone,
    ResumeBranches,
    ScheduleResume,
    Suspend,
    SuspensionKey,
)
from actors.records import BranchLog, BranchStatus, OperationUpdate, OpKind, OpStatus, Update
from actors.scheduling import EVICT, UNWIND, Resume, SchedulerActor
from actors.store import MemoryStore

from actors_for_tests import Recorder

DELAY = 0.1
EPSILON = 0.01


class Verdicts:
    """A reply handle that records every answer (a second one would be a bug)."""

    def __init__(self) -> None:
        self.answers: list[Any] = []  # Verdicts, or ("error", exc_info)
        self.arrived = threading.Event()

    def set(self, value: Any = None) -> None:
        self.answers.append(value)
        self.arrived.set()

    def set_exception(self, exc_info: Any = None) -> None:
        self.answers.append(("error", exc_info))
        self.arrived.set()


class HeldStore(MemoryStore):
    """A MemoryStore whose commits wait while ``hold`` is set: an apply stays in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.open = threading.Event()
        self.open.set()
        self.entered = threading.Event()

    def commit(self, updates: Sequence[Update], read_logs: Sequence[str],
               now: float) -> dict[str, BranchLog]:
        self.entered.set()
        assert self.open.wait(10), "the test never released the store"
        return super().commit(updates, read_logs, now)


class Rig:
    def __init__(self, store: MemoryStore, max_parked: int = 8,
                 remember_for: float = 3600.0, max_parked_coroutines: int = 4096) -> None:
        self.clock = FakeClock()
        self.store = store
        self.checkpoint = CheckpointActor.start(store=store, clock=self.clock)
        self.coordinator = Recorder.start()
        self.scheduler = SchedulerActor.start(checkpoint=self.checkpoint,
                                              coordinator=self.coordinator, clock=self.clock,
                                              max_parked=max_parked, autotick=False,
                                              remember_for=remember_for,
                                              max_parked_coroutines=max_parked_coroutines)
        self.seq = 0
        self.dispatched: dict[str, int] = {}

    def suspend(self, branch: str = "e/0", op_id: str = "2", kind: OpKind = OpKind.WAIT,
                due_in: float | None = 1.0, delay: float = DELAY, worker: str = "w",
                seq: int | None = None) -> Verdicts:
        self.dispatch(branch, epoch=1)
        verdicts = Verdicts()
        due = None if due_in is None else self.clock.time() + due_in
        op = OperationUpdate("e", branch, op_id, kind, "pause", OpStatus.SUSPENDED, due_at=due)
        key = SuspensionKey(branch, 1, self.seq if seq is None else seq)
        self.seq += 1
        self.scheduler.ask(Suspend(key, op, delay, worker, verdicts))  # handled before we go on
        return verdicts

    def dispatch(self, branch: str, epoch: int) -> None:
        """Dispatch run ``epoch`` of ``branch`` through the checkpoint actor, as it is done."""
        if self.dispatched.get(branch) == epoch:
            return
        reply: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
        self.checkpoint.tell(Checkpoint(branch, None, reply_to=reply, epoch=epoch))
        reply.get(timeout=10)
        self.dispatched[branch] = epoch
        # The tests count the scheduler's writes; the dispatch's read is the rig's setup.
        self.store.calls -= 1
        self.store.commits.pop()

    def tick(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.scheduler.ask(Tick())
        self.settle()

    def settle(self) -> None:
        """Wait until writes in flight were acknowledged and their continuations handled."""
        self.checkpoint.proxy().metrics().get(timeout=10)
        self.scheduler.proxy().metrics().get(timeout=10)

    def metrics(self) -> dict[str, int]:
        found: dict[str, int] = self.scheduler.proxy().metrics().get(timeout=10)
        return found

    def replays_requested(self) -> list[tuple[str, int]]:
        seen = self.coordinator.ask("seen", timeout=10)
        return [b for m in seen if isinstance(m, ResumeBranches) for b in m.branches]


@pytest.fixture
def rig() -> Iterator[Rig]:
    made = Rig(MemoryStore())
    yield made
    pykka.ActorRegistry.stop_all()


def test_resumed_before_the_delay_ends_nothing_is_written_and_no_replay(rig: Rig) -> None:
    verdicts = rig.suspend(due_in=DELAY - EPSILON)
    rig.tick(DELAY - EPSILON)
    assert verdicts.answers == [Resume()]
    assert rig.store.calls == 0
    assert rig.replays_requested() == []
    assert rig.metrics()["scheduler.cancelled"] == 1


def test_after_the_delay_it_is_written_once_evicted_once_then_replayed_once(rig: Rig) -> None:
    verdicts = rig.suspend(due_in=1.0)
    rig.tick(DELAY + EPSILON)
    assert verdicts.answers == [EVICT]
    assert rig.store.calls == 1
    log = rig.store.read_log("e/0")
    assert log.branch is not None and log.branch.status is BranchStatus.SUSPENDED
    assert log.operations[0].status is OpStatus.SUSPENDED
    rig.tick(1.0)
    assert rig.replays_requested() == [("e/0", 1)]
    assert rig.metrics()["scheduler.applied"] == 1


def test_a_second_resume_is_dropped_and_counted(rig: Rig) -> None:
    verdicts = rig.suspend(kind=OpKind.CHILDREN, due_in=None)
    rig.scheduler.tell(DependencyDone("e/0", "2", b"batch"))
    rig.scheduler.tell(DependencyDone("e/0", "2", b"batch"))
    rig.settle()
    assert verdicts.answers == [Resume(b"batch")]
    assert rig.metrics()["scheduler.duplicate_resumes"] == 1


def test_a_resume_during_an_apply_in_flight_leaves_one_live_branch() -> None:
    store = HeldStore()
    rig = Rig(store)
    try:
        verdicts = rig.suspend(kind=OpKind.CHILDREN, due_in=None)
        store.open.clear()
        rig.clock.advance(DELAY + EPSILON)
        rig.scheduler.ask(Tick())  # the apply starts; the store holds its commit
        assert store.entered.wait(10)
        rig.scheduler.tell(DependencyDone("e/0", "2", b"batch"))
        assert verdicts.arrived.wait(10)
        store.open.set()
        rig.settle()
        # Resumed in place, once; never also evicted; no replay asked for.
        assert verdicts.answers == [Resume(b"batch")]
        assert rig.replays_requested() == []
    finally:
        store.open.set()
        pykka.ActorRegistry.stop_all()


def test_a_late_resume_never_cancels_a_newer_suspension(rig: Rig) -> None:
    first = rig.suspend(op_id="2", kind=OpKind.CHILDREN, due_in=None)
    rig.scheduler.tell(DependencyDone("e/0", "2", b"one"))
    rig.settle()
    assert first.answers == [Resume(b"one")]
    second = rig.suspend(op_id="3", due_in=5.0)
    rig.scheduler.tell(DependencyDone("e/0", "2", b"one"))  # late, for the first suspension
    rig.tick(EPSILON)
    assert second.answers == []  # still parked
    assert rig.metrics()["scheduler.duplicate_resumes"] == 1
    rig.tick(DELAY)
    assert second.answers == [EVICT]  # its own deferral ran its course


def test_past_the_parked_bound_a_suspension_is_applied_at_once() -> None:
    rig = Rig(MemoryStore(), max_parked=1)
    try:
        first = rig.suspend(branch="e/0")
        second = rig.suspend(branch="e/1")
        rig.settle()
        assert first.answers == []  # parked, deferred
        assert second.answers == [EVICT]  # applied without waiting for the delay
    finally:
        pykka.ActorRegistry.stop_all()


def coroutine_suspension(rig: Rig, branch: str) -> tuple[Suspend, Verdicts]:
    rig.dispatch(branch, epoch=1)
    verdicts = Verdicts()
    op = OperationUpdate("e", branch, "1", OpKind.WAIT, "pause", OpStatus.SUSPENDED,
                         due_at=rig.clock.time() + 1.0)
    return Suspend(SuspensionKey(branch, 1, 0), op, DELAY, "w", verdicts, True), verdicts


def test_coroutine_suspensions_are_bounded_apart_from_parked_threads() -> None:
    rig = Rig(MemoryStore(), max_parked=0, max_parked_coroutines=2)
    try:
        told = [coroutine_suspension(rig, f"e/{i}") for i in range(3)]
        for message, _ in told:
            rig.scheduler.ask(message)
        rig.settle()
        assert [v.answers for _, v in told] == [[], [], [EVICT]]
    finally:
        pykka.ActorRegistry.stop_all()


def test_a_bundle_of_suspensions_applied_at_once_is_one_write() -> None:
    rig = Rig(MemoryStore(), max_parked_coroutines=0)
    try:
        told = [coroutine_suspension(rig, f"e/{i}") for i in range(5)]
        rig.scheduler.ask(Bundle(tuple(message for message, _ in told)))
        rig.settle()
        assert all(v.answers == [EVICT] for _, v in told)
        assert len(rig.store.commits) == 1  # ten updates, one message, one store transaction
    finally:
        pykka.ActorRegistry.stop_all()


def test_a_dependency_done_before_the_branch_suspends_resumes_it_without_a_write(
    rig: Rig,
) -> None:
    rig.scheduler.tell(DependencyDone("e/0", "2", b"early"))
    verdicts = rig.suspend(kind=OpKind.CHILDREN, due_in=None)
    rig.settle()
    assert verdicts.answers == [Resume(b"early")]
    assert rig.store.calls == 0
    assert rig.metrics()["scheduler.deferred"] == 0


def test_a_zero_delay_applies_the_suspension_at_once(rig: Rig) -> None:
    verdicts = rig.suspend(delay=0)
    rig.settle()
    assert verdicts.answers == [EVICT]


def test_a_wave_of_due_timers_asks_for_their_replays_in_one_message(rig: Rig) -> None:
    due = rig.clock.time() + 1.0
    for i in range(999):
        rig.scheduler.tell(ScheduleResume(f"e/{i}", 0, "2", due))
    rig.tick(1.0)
    seen = rig.coordinator.ask("seen", timeout=10)
    (wave,) = [m for m in seen if isinstance(m, ResumeBranches)]
    assert len(wave.branches) == 999


def test_a_timer_not_yet_due_does_not_fire(rig: Rig) -> None:
    verdicts = rig.suspend(due_in=0.5, delay=5.0)
    rig.tick(0.5 - EPSILON)
    assert verdicts.answers == []
    rig.tick(EPSILON)
    assert verdicts.answers == [Resume()]


def test_an_early_result_resumes_a_parked_branch_and_its_confirmation_is_no_duplicate(
    rig: Rig,
) -> None:
    verdicts = rig.suspend(kind=OpKind.CHILDREN, due_in=None)
    rig.scheduler.tell(DependencyDone("e/0", "2", b"batch", durable=False))
    rig.scheduler.tell(DependencyDone("e/0", "2", b"batch"))
    rig.settle()
    assert verdicts.answers == [Resume(b"batch")]
    assert rig.metrics()["scheduler.duplicate_resumes"] == 0


def test_an_early_result_never_resumes_an_evicted_branch_only_the_durable_one_does(
    rig: Rig,
) -> None:
    verdicts = rig.suspend(kind=OpKind.CHILDREN, due_in=None)
    rig.tick(DELAY + EPSILON)
    assert verdicts.answers == [EVICT]
    rig.scheduler.tell(DependencyDone("e/0", "2", b"batch", durable=False))
    rig.settle()
    assert rig.replays_requested() == []  # its replay would not find the result yet
    rig.scheduler.tell(DependencyDone("e/0", "2", b"batch"))
    rig.settle()
    assert rig.replays_requested() == [("e/0", 1)]


def test_when_the_checkpoint_process_is_lost_parked_branches_are_released(rig: Rig) -> None:
    from actors.protocol import CheckpointLost

    verdicts = rig.suspend(due_in=5.0)
    rig.scheduler.tell(CheckpointLost())  # the coordinator dispatches it again, anew
    rig.settle()
    # The old copy unwinds, aborted: nothing of its suspension is durable, it runs again.
    assert verdicts.answers == [UNWIND]


def test_a_newer_run_suspending_releases_the_older_runs_parked_thread(rig: Rig) -> None:
    old = rig.suspend(due_in=5.0, seq=0)
    newer = Verdicts()
    op = OperationUpdate("e", "e/0", "2", OpKind.WAIT, "pause", OpStatus.SUSPENDED,
                         due_at=rig.clock.time() + 5.0)
    rig.scheduler.ask(Suspend(SuspensionKey("e/0", 2, 0), op, DELAY, "w", newer))
    assert old.answers == [UNWIND]
    assert newer.answers == []  # the newer run is the one parked now


def test_resume_once_facts_are_forgotten_after_remember_for_so_memory_stays_bounded() -> None:
    rig = Rig(MemoryStore(), remember_for=60.0)
    try:
        for i in range(5):  # done before their branches suspend: remembered for them
            rig.scheduler.tell(DependencyDone(f"e/{i}", "2", None))
        assert rig.scheduler.proxy().remembered().get(timeout=10) == 5
        rig.tick(59.0)
        assert rig.scheduler.proxy().remembered().get(timeout=10) == 5
        rig.tick(2.0)
        assert rig.scheduler.proxy().remembered().get(timeout=10) == 0
    finally:
        pykka.ActorRegistry.stop_all()
