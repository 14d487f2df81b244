"""The worker starts a bundle of runs with one RUNNING message: plain pykka, one process.

Every run is fenced by its epoch, for both kinds of branch (``kind``): a sync one on
the worker's pool, an async one on its event loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pykka
import pytest

from actors import BranchActor
from actors.branches import BranchSpec
from actors.bundles import Bundle
from actors.errors import CheckpointError
from actors.protocol import (
    BranchAborted,
    BranchRan,
    Checkpoint,
    Checkpoints,
    RunBranch,
    RunsFrom,
    Suspend,
)
from actors.records import TERMINAL_BRANCH_STATUSES, BranchLog, BranchStatus, BranchUpdate
from actors.scheduling import UNWIND, Resume
from actors.tracelog import capture_events
from actors.workers import WorkerActor
from runtime.errors import SerializationError

from actors_for_tests import Recorder
from branch_kinds import Kind, both_kinds

DEADLINE = 5.0


@both_kinds
class Echo(BranchActor):
    async def run(self, ctx: Any, item: Any) -> Any:
        return item


class Answering(Recorder):
    """A checkpoint actor stand-in that records and acknowledges every checkpoint."""

    def on_receive(self, message: Any) -> Any:
        items = message.items if isinstance(message, Checkpoints) else (message,)
        for item in items:
            if isinstance(item, Checkpoint) and item.reply_to is not None:
                item.reply_to.set(None)
        return super().on_receive(message)


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.001)


@pytest.fixture
def actors() -> Iterator[tuple[Any, Any, Any]]:
    checkpoint, coordinator, scheduler = Answering.start(), Recorder.start(), Recorder.start()
    worker = WorkerActor.start(checkpoint=checkpoint, coordinator=coordinator,
                               scheduler=scheduler, threads=4)
    yield worker, checkpoint, coordinator
    pykka.ActorRegistry.stop_all()


@pytest.fixture
def holding() -> Iterator[tuple[Any, Any, Any]]:
    """A worker of a durable system: it holds its runs until told which are current."""
    checkpoint, coordinator, scheduler = Answering.start(), Recorder.start(), Recorder.start()
    worker = WorkerActor.start(checkpoint=checkpoint, coordinator=coordinator,
                               scheduler=scheduler, threads=4, hold_runs=True)
    yield worker, checkpoint, coordinator
    pykka.ActorRegistry.stop_all()


def run(index: int, epoch: int, kind: Kind = Kind.SYNC) -> RunBranch:
    branch_id = f"e/{index}"
    return RunBranch(BranchSpec("e", branch_id, kind(Echo), index, index), epoch,
                     BranchLog(branch_id, None, ()))


def test_a_bundle_of_runs_is_marked_running_in_one_message_with_each_runs_epoch(
    actors: tuple[Any, Any, Any], kind: Kind
) -> None:
    worker, checkpoint, coordinator = actors
    worker.tell(Bundle((run(0, 3, kind), run(1, 5, kind), run(2, 7, kind))))
    wait_until(lambda: len(coordinator.ask("seen")) == 3)
    first = checkpoint.ask("seen")[0]
    assert isinstance(first, Checkpoints)
    marked = [(c.update.branch_id, c.update.status, c.update.epoch) for c in first.items]
    assert marked == [("e/0", BranchStatus.RUNNING, 3), ("e/1", BranchStatus.RUNNING, 5),
                      ("e/2", BranchStatus.RUNNING, 7)]


def test_every_run_of_a_bundle_runs_and_reports_under_its_epoch(
    actors: tuple[Any, Any, Any], kind: Kind
) -> None:
    worker, _, coordinator = actors
    worker.tell(Bundle((run(0, 3, kind), run(1, 5, kind))))
    wait_until(lambda: len(coordinator.ask("seen")) == 2)
    reports = sorted(coordinator.ask("seen"), key=lambda r: r.branch_id)
    assert all(isinstance(r, BranchRan) for r in reports)
    assert [(r.branch_id, r.epoch, r.status, r.result) for r in reports] == [
        ("e/0", 3, BranchStatus.SUCCEEDED, 0), ("e/1", 5, BranchStatus.SUCCEEDED, 1)]


def test_a_runs_updates_carry_its_epoch_from_the_start(
    actors: tuple[Any, Any, Any], kind: Kind
) -> None:
    worker, checkpoint, coordinator = actors
    worker.tell(run(0, 9, kind))
    wait_until(lambda: len(coordinator.ask("seen")) == 1)
    updates = [item.update for message in checkpoint.ask("seen")
               for item in (message.items if isinstance(message, Checkpoints) else (message,))]
    final = [u for u in updates if isinstance(u, BranchUpdate)
             and u.status is BranchStatus.SUCCEEDED]
    assert len(final) == 1 and final[0].epoch == 9


@both_kinds
class Waits(BranchActor):
    async def run(self, ctx: Any, item: Any) -> Any:
        await ctx.wait("cooldown", seconds=60)
        return item


def test_a_suspension_the_scheduler_cannot_take_aborts_the_branch_and_fails_nothing(
    kind: Kind,
) -> None:
    # A shutdown stops the scheduler first: the suspension cannot be sent, nothing of it is
    # durable, and the branch must be replayed later, not recorded FAILED for it.
    checkpoint, coordinator, scheduler = Answering.start(), Recorder.start(), Recorder.start()
    scheduler.stop()
    worker = WorkerActor.start(checkpoint=checkpoint, coordinator=coordinator,
                               scheduler=scheduler, threads=2)
    try:
        worker.tell(RunBranch(BranchSpec("e", "e/0", kind(Waits), 0, 0), 4,
                              BranchLog("e/0", None, ())))
        wait_until(lambda: len(coordinator.ask("seen")) == 1)
        (report,) = coordinator.ask("seen")
        assert isinstance(report, BranchAborted)
        assert (report.branch_id, report.epoch) == ("e/0", 4)
        assert isinstance(report.error, CheckpointError)
        written = [item.update for message in checkpoint.ask("seen")
                   for item in (message.items if isinstance(message, Checkpoints) else (message,))]
        assert not [u for u in written if isinstance(u, BranchUpdate)
                    and u.status is BranchStatus.FAILED]
    finally:
        pykka.ActorRegistry.stop_all()


class RefusesEnds:
    """A checkpoint ref whose sends of a branch's end fail as an unpicklable result does."""

    def __init__(self, answering: Any) -> None:
        self.answering = answering

    def tell(self, message: Any) -> None:
        items = message.items if isinstance(message, Checkpoints) else (message,)
        if any(isinstance(item.update, BranchUpdate)
               and item.update.status in TERMINAL_BRANCH_STATUSES for item in items):
            raise SerializationError("cannot pickle the result of 'e/0' (a lock)")
        self.answering.tell(message)


def test_a_failure_report_to_a_gone_coordinator_is_logged_and_the_pool_goes_on() -> None:
    coordinator = Recorder.start()
    coordinator.stop()  # a shutdown took it while the branch ran
    checkpoint = RefusesEnds(Answering.start())
    worker = WorkerActor.start(checkpoint=checkpoint, coordinator=coordinator,
                               scheduler=Recorder.start(), threads=1)
    try:
        with capture_events() as events:
            worker.tell(run(0, 1))
            wait_until(lambda: any(e["event"] == "branch.report_unsent" for e in events))
            worker.tell(run(1, 1))  # the pool's one thread still takes runs
            wait_until(lambda: len([e for e in events
                                    if e["event"] == "branch.report_unsent"]) == 2)
        assert not [e for e in events if e["event"] == "pool.task_failed"]
    finally:
        pykka.ActorRegistry.stop_all()


def parked_runs(count: int) -> Bundle:
    return Bundle(tuple(RunBranch(BranchSpec("e", f"e/{i}", Waits, i, i), 1,
                                  BranchLog(f"e/{i}", None, ())) for i in range(count)))


def suspensions_told(scheduler: Any) -> list[Any]:
    """What the scheduler was told, bundles opened: a loop's suspensions of one turn travel
    together."""
    return [item for message in scheduler.ask("seen")
            for item in (message.items if isinstance(message, Bundle) else (message,))]


def pool_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("worker-branch")]


def test_async_runs_parked_on_their_suspension_hold_no_pool_thread() -> None:
    checkpoint, coordinator, scheduler = Answering.start(), Recorder.start(), Recorder.start()
    worker = WorkerActor.start(checkpoint=checkpoint, coordinator=coordinator,
                               scheduler=scheduler, threads=1)
    try:
        worker.tell(parked_runs(50))
        wait_until(lambda: len(suspensions_told(scheduler)) == 50)
        suspensions = suspensions_told(scheduler)
        assert all(isinstance(s, Suspend) and s.coroutine for s in suspensions)
        assert pool_threads() == []  # 50 parked branches, no thread of the pool taken
        for suspension in suspensions:
            suspension.reply_to.set(Resume())  # the scheduler cancels each deferral
        wait_until(lambda: len(coordinator.ask("seen")) == 50)
        reports = coordinator.ask("seen")
        assert sorted(r.result for r in reports) == list(range(50))
        assert all(r.status is BranchStatus.SUCCEEDED for r in reports)
    finally:
        pykka.ActorRegistry.stop_all()


def test_a_stopping_worker_cancels_its_parked_async_runs_and_reports_none() -> None:
    checkpoint, coordinator, scheduler = Answering.start(), Recorder.start(), Recorder.start()
    worker = WorkerActor.start(checkpoint=checkpoint, coordinator=coordinator,
                               scheduler=scheduler, threads=1)
    try:
        with capture_events() as events:
            worker.tell(parked_runs(5))
            wait_until(lambda: len(suspensions_told(scheduler)) == 5)
            worker.stop()
        assert len([e for e in events if e["event"] == "branch.cancelled"]) == 5
        assert coordinator.ask("seen") == []  # the coordinator replays them after a restart
        assert not [t for t in threading.enumerate() if t.name == "worker-loop"]
    finally:
        pykka.ActorRegistry.stop_all()


class Unwinding(Recorder):
    """A scheduler stand-in that answers every suspension UNWIND: nothing of it is durable
    (the checkpoint process restarted while the run was parked)."""

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Suspend):
            message.reply_to.set(UNWIND)
        return super().on_receive(message)


def test_a_parked_run_told_to_unwind_is_reported_aborted_never_suspended(kind: Kind) -> None:
    # Reported SUSPENDED, the coordinator would wait for a timer nobody holds: the suspension
    # was never written. Aborted, the branch is dispatched again and replayed from its log.
    checkpoint, coordinator, scheduler = Answering.start(), Recorder.start(), Unwinding.start()
    worker = WorkerActor.start(checkpoint=checkpoint, coordinator=coordinator,
                               scheduler=scheduler, threads=2)
    try:
        worker.tell(RunBranch(BranchSpec("e", "e/0", kind(Waits), 0, 0), 4,
                              BranchLog("e/0", None, ())))
        wait_until(lambda: len(coordinator.ask("seen")) == 1)
        (report,) = coordinator.ask("seen")
        assert isinstance(report, BranchAborted), report
        assert (report.branch_id, report.epoch) == ("e/0", 4)
        assert isinstance(report.error, CheckpointError)
        assert "not made durable" in str(report.error)
    finally:
        pykka.ActorRegistry.stop_all()


def test_a_holding_worker_starts_nothing_before_it_is_told_which_runs_are_current(
    holding: tuple[Any, Any, Any], kind: Kind
) -> None:
    worker, checkpoint, coordinator = holding
    worker.tell(run(0, 3, kind))
    worker.proxy().fences.get()  # an attribute read goes through the inbox: the run was taken
    assert checkpoint.ask("seen") == [] and coordinator.ask("seen") == []
    worker.tell(RunsFrom(1))
    wait_until(lambda: len(coordinator.ask("seen")) == 1)
    (report,) = coordinator.ask("seen")
    assert isinstance(report, BranchRan) and (report.branch_id, report.epoch) == ("e/0", 3)


def test_a_run_given_to_a_workers_previous_process_never_runs_in_the_next(
    holding: tuple[Any, Any, Any], kind: Kind
) -> None:
    worker, checkpoint, coordinator = holding
    worker.tell(Bundle((run(0, 3, kind), run(1, 12, kind))))  # 3: sent before a restart
    worker.tell(RunsFrom(10))
    wait_until(lambda: len(coordinator.ask("seen")) == 2)
    reports = {r.branch_id: r for r in coordinator.ask("seen")}
    assert isinstance(reports["e/0"], BranchAborted) and reports["e/0"].epoch == 3
    assert "earlier process of this worker" in str(reports["e/0"].error)
    assert isinstance(reports["e/1"], BranchRan) and reports["e/1"].epoch == 12
    marked = [item.update.branch_id for message in checkpoint.ask("seen")
              for item in (message.items if isinstance(message, Checkpoints) else (message,))
              if isinstance(item.update, BranchUpdate)
              and item.update.status is BranchStatus.RUNNING]
    assert marked == ["e/1"]  # the stale run was not even marked running
