"""The coordinator keeps a branch live in at most one place: plain pykka, one process."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from actors.branch import BranchActor, BranchSpec
from actors.context import BranchContext
from actors.execution import ExecutionActor
from actors.messages import (
    BranchRan,
    BranchStatus,
    Bundle,
    Checkpoint,
    Checkpoints,
    DescribeExecution,
    LogDelivery,
    OperationUpdate,
    OpKind,
    OpStatus,
    ResumeBranches,
    StartExecution,
    Wire,
)
from actors.policies import Completion
from actors.store import MemoryStore

from actors_for_tests import LeasingRecorder, Recorder


class Noop(BranchActor):
    def run(self, ctx: BranchContext, item: Any) -> Any:
        return item


def dispatches(checkpoint: Any) -> list[tuple[str, int]]:
    """(branch, epoch) of every dispatch the coordinator sent: empty checkpoints with delivery."""
    found = []
    for message in checkpoint.ask("seen", timeout=10):
        items = message.items if isinstance(message, Checkpoints) else (message,)
        for item in items:
            if isinstance(item, Checkpoint) and isinstance(item.reply_to, LogDelivery):
                found.append((item.branch_id, item.reply_to.epoch))
    return found


@pytest.fixture
def coordinator() -> Iterator[tuple[Any, Any]]:
    store = MemoryStore()
    checkpoint = LeasingRecorder.start(store)
    worker, scheduler = Recorder.start(), Recorder.start()
    coordinator = ExecutionActor.start(checkpoint=checkpoint, reader=store)
    coordinator.tell(Wire(coordinator, (worker,), scheduler))
    reply = pykka.ThreadingFuture()
    spec = BranchSpec("e", "e/0", Noop, 1, 0)
    coordinator.tell(StartExecution("e", "map", (spec,), None, Completion.all_successful(), reply))
    assert reply.get(timeout=10) == "created"  # durable and leased
    coordinator.ask(DescribeExecution("e"))  # its dispatch wave has left
    yield coordinator, checkpoint
    pykka.ActorRegistry.stop_all()


def parked_on_timer() -> OperationUpdate:
    return OperationUpdate("e", "e/0", "1", OpKind.WAIT, "pause", OpStatus.SUSPENDED, due_at=1.0)


def test_a_resume_before_the_old_run_reported_its_eviction_waits_for_that_report(
    coordinator: tuple[Any, Any],
) -> None:
    actor, checkpoint = coordinator
    assert dispatches(checkpoint) == [("e/0", 1)]
    actor.tell(ResumeBranches((("e/0", 1),)))  # the scheduler resumes it...
    actor.ask(DescribeExecution("e"))
    assert dispatches(checkpoint) == [("e/0", 1)]  # ...but run 1 is still live: no second copy
    actor.tell(BranchRan("e/0", 1, BranchStatus.SUSPENDED, suspended_on=parked_on_timer()))
    actor.ask(DescribeExecution("e"))
    assert dispatches(checkpoint) == [("e/0", 1), ("e/0", 2)]  # replayed once it left


def test_a_report_from_an_older_run_is_ignored(coordinator: tuple[Any, Any]) -> None:
    actor, _ = coordinator
    actor.tell(BranchRan("e/0", 1, BranchStatus.SUSPENDED, suspended_on=parked_on_timer()))
    actor.tell(ResumeBranches((("e/0", 1),)))  # run 2 starts
    actor.tell(BranchRan("e/0", 1, BranchStatus.SUCCEEDED, result="stale"))  # run 1, late
    progress = actor.ask(DescribeExecution("e"))
    assert progress["done"] == 0 and progress["running"] == 1


def test_when_the_checkpoint_process_is_lost_running_branches_are_dispatched_under_a_new_epoch(
    coordinator: tuple[Any, Any],
) -> None:
    from actors.messages import CheckpointLost

    actor, checkpoint = coordinator
    actor.tell(CheckpointLost())  # its LogDelivery for run 1 may have died with it
    actor.ask(DescribeExecution("e"))
    assert dispatches(checkpoint) == [("e/0", 1), ("e/0", 2)]  # run 1, if alive, is fenced


def test_reports_in_a_bundle_are_handled_in_order_as_if_told_one_by_one(
    coordinator: tuple[Any, Any],
) -> None:
    actor, checkpoint = coordinator
    actor.tell(Bundle((
        BranchRan("e/0", 1, BranchStatus.SUSPENDED, suspended_on=parked_on_timer()),
        ResumeBranches((("e/0", 1),)),
    )))
    actor.ask(DescribeExecution("e"))
    assert dispatches(checkpoint) == [("e/0", 1), ("e/0", 2)]  # evicted first, then resumed


def test_an_orphan_claimed_by_a_lease_round_while_a_map_starts_it_is_resumed_once() -> None:
    from actors.ownership import BranchInput, ExecutionSpec, NewExecution, class_ref

    store = MemoryStore()
    spec = ExecutionSpec("map", (class_ref(Noop, pickle.dumps),), None,
                         Completion.all_successful())
    store.create_execution(NewExecution("e", "map", "fp", pickle.dumps(spec),
                                        (BranchInput("e/0", 0, pickle.dumps(1)),)),
                           "dead", 10.0, now=0.0)  # its owner's lease expired long ago
    checkpoint = LeasingRecorder.start(store)
    worker, scheduler = Recorder.start(), Recorder.start()
    coordinator = ExecutionActor.start(checkpoint=checkpoint, reader=store)
    try:
        coordinator.tell(Wire(coordinator, (worker,), scheduler))  # its first round: a claim
        reply = pykka.ThreadingFuture()
        new = NewExecution("e", "map", "fp", pickle.dumps(spec),
                           (BranchInput("e/0", 0, pickle.dumps(1)),))
        coordinator.tell(StartExecution("e", "map", (BranchSpec("e", "e/0", Noop, 1, 0),), None,
                                        Completion.all_successful(), reply, new))
        assert reply.get(timeout=10) == "resumed"
        coordinator.ask(DescribeExecution("e"))
        assert [b for b, _ in dispatches(checkpoint)] == ["e/0"]  # one run, not one per claim
    finally:
        pykka.ActorRegistry.stop_all()


def test_a_branch_that_ends_after_its_batch_finished_writes_no_second_result() -> None:
    from actors.messages import ExecutionUpdate

    store = MemoryStore()
    checkpoint = LeasingRecorder.start(store)
    worker, scheduler = Recorder.start(), Recorder.start()
    coordinator = ExecutionActor.start(checkpoint=checkpoint, reader=store)
    try:
        coordinator.tell(Wire(coordinator, (worker,), scheduler))
        reply = pykka.ThreadingFuture()
        specs = tuple(BranchSpec("e", f"e/{i}", Noop, i, i) for i in range(2))
        coordinator.tell(StartExecution("e", "map", specs, None, Completion.all_successful(),
                                        reply))
        assert reply.get(timeout=10) == "created"
        coordinator.ask(DescribeExecution("e"))
        epochs = dict(dispatches(checkpoint))
        coordinator.tell(BranchRan("e/1", epochs["e/1"], BranchStatus.FAILED,
                                   error=ValueError("bad")))  # fail-fast: the batch ends here
        coordinator.tell(BranchRan("e/0", epochs["e/0"], BranchStatus.SUCCEEDED, result=0))
        coordinator.ask(DescribeExecution("e"))
        results = [m for m in checkpoint.ask("seen", timeout=10)
                   if isinstance(m, Checkpoint) and isinstance(m.update, ExecutionUpdate)]
        assert len(results) == 1  # a late report must not write (and later retire) it again
    finally:
        pykka.ActorRegistry.stop_all()
