"""Requests the coordinator had sent the checkpoint actor die with its process: they are sent again.

The coordinator asks the checkpoint actor (the lease desk) to create, claim and
renew executions, and is answered by a message. A checkpoint process killed
with such a request in its inbox never answers: without asking again, a
``map()`` started then waits its whole timeout for a creation that a restart
0.1 s later could have made, and a lease round in flight at the kill is the
last one ever sent, so the system's leases are never confirmed again (found by
the chaos campaign). Plain pykka, one process: a stand-in checkpoint actor that
drops everything while "dead".
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from actors.branches import BranchActor, BranchContext, BranchSpec
from actors.checkpointing import LeaseDesk
from actors.clock import FakeClock
from actors.coordinator import CoordinatorActor
from actors.policies import Completion
from actors.protocol import (
    DESK_MESSAGES,
    CheckpointLost,
    ClaimExecution,
    CreateExecution,
    DescribeExecution,
    HoldLeases,
    RenewLeases,
    StartExecution,
    Wire,
)
from actors.records import BranchInput, NewExecution, OperationUpdate, OpKind, OpStatus
from actors.store import MemoryStore

from actors_for_tests import LeasingRecorder, Recorder
from conftest import wait_until


class Noop(BranchActor):
    def run(self, ctx: BranchContext, item: Any) -> Any:
        return item


class CrashingCheckpoint(LeasingRecorder):
    """Answers lease requests as the desk does, except while it is "dead": then it drops
    every message (or, told ``("die on", Kind)``, from the first of that kind on), as a
    killed process does with its inbox. ``"restart"`` brings it back."""

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self.dead = False
        self.dies_on: type | None = None
        self.dropped: list[Any] = []

    def on_receive(self, message: Any) -> Any:
        if message in ("die", "restart"):
            self.dead, self.dies_on = message == "die", None
            return None
        if isinstance(message, tuple) and message[:1] == ("die on",):
            self.dies_on = message[1]
            return None
        if message == "dropped":
            return list(self.dropped)
        if self.dies_on is not None and isinstance(message, self.dies_on):
            self.dead = True
        if self.dead:
            self.dropped.append(message)
            return None
        if isinstance(message, DESK_MESSAGES):
            self.seen.append(message)  # and answered, below
        return super().on_receive(message)


@pytest.fixture
def rig() -> Iterator[tuple[Any, Any]]:
    store = MemoryStore()
    checkpoint = CrashingCheckpoint.start(store)
    worker, scheduler = Recorder.start(), Recorder.start()
    coordinator = CoordinatorActor.start(checkpoint=checkpoint, reader=store, lease_seconds=0.6)
    coordinator.tell(Wire(coordinator, (worker,), scheduler))
    yield coordinator, checkpoint
    pykka.ActorRegistry.stop_all()


def start(coordinator: Any) -> Any:
    reply = pykka.ThreadingFuture()
    spec = BranchSpec("e", "e/0", Noop, 1, 0)
    coordinator.tell(StartExecution("e", "map", (spec,), None, Completion.all_successful(), reply))
    return reply


def dropped(checkpoint: Any, kind: type) -> list[Any]:
    return [m for m in checkpoint.ask("dropped", timeout=10) if isinstance(m, kind)]


def crash_and_restart(coordinator: Any, checkpoint: Any) -> None:
    checkpoint.tell("restart")  # the supervisor started it again...
    coordinator.tell(CheckpointLost())  # ...and told the coordinator


def test_a_start_whose_creation_died_with_the_checkpoint_process_is_created_after_its_restart(
        rig: tuple[Any, Any]) -> None:
    coordinator, checkpoint = rig
    checkpoint.tell("die")
    reply = start(coordinator)
    wait_until(lambda: dropped(checkpoint, CreateExecution), timeout=10)
    crash_and_restart(coordinator, checkpoint)
    assert reply.get(timeout=10) in ("created", "resumed")
    assert coordinator.ask(DescribeExecution("e"), timeout=10)["status"] != "UNKNOWN"


def test_a_claim_that_died_with_the_checkpoint_process_is_made_after_its_restart(
        rig: tuple[Any, Any]) -> None:
    coordinator, checkpoint = rig
    assert start(coordinator).get(timeout=10) == "created"
    coordinator.stop()  # a new coordinator of the same executor: it claims "e" to resume it
    store = checkpoint.proxy().desk.get()._store
    fresh = CoordinatorActor.start(checkpoint=checkpoint, reader=store, lease_seconds=600.0,
                                 recover=False)
    fresh.tell(Wire(fresh, (Recorder.start(),), Recorder.start()))
    checkpoint.tell(("die on", ClaimExecution))  # after answering the creation: "it exists"
    reply = start(fresh)
    wait_until(lambda: dropped(checkpoint, ClaimExecution), timeout=10)
    crash_and_restart(fresh, checkpoint)
    assert reply.get(timeout=10) == "resumed"


def test_a_lease_round_that_died_with_the_checkpoint_process_is_followed_by_another(
        rig: tuple[Any, Any]) -> None:
    coordinator, checkpoint = rig
    assert start(coordinator).get(timeout=10) == "created"
    checkpoint.tell("die")
    wait_until(lambda: dropped(checkpoint, RenewLeases), timeout=10)
    crash_and_restart(coordinator, checkpoint)
    answered_before = rounds_answered(checkpoint)
    # Lease rounds go every lease_seconds / 3 = 0.2 s: several within the deadline.
    wait_until(lambda: rounds_answered(checkpoint) > answered_before + 1, timeout=10)


def rounds_answered(checkpoint: Any) -> int:
    return sum(1 for m in checkpoint.ask("seen", timeout=10) if isinstance(m, RenewLeases))


class Answer:
    """A reply handle that keeps what it was answered."""

    def __init__(self) -> None:
        self.value: Any = None

    def set(self, value: Any = None) -> None:
        self.value = value

    def set_exception(self, exc_info: Any = None) -> None:
        raise AssertionError(f"answered with an error: {exc_info!r}")


def test_a_restarted_writer_keeps_a_lease_it_took_again_before_it_was_told_the_held_ones() -> None:
    store, clock = MemoryStore(), FakeClock()
    first = LeaseDesk(store, clock, executor="local", lease_seconds=10.0)
    first.handle(CreateExecution(NewExecution("e", "map", "fp", b"", (
        BranchInput("e/0", 0, pickle.dumps(0)),)), Answer()))
    assert first.held == {"e": 1}
    # The checkpoint process restarts: the coordinator's lease round reaches the new desk
    # before the HoldLeases of its CheckpointLost, and takes "e" again, at epoch 2.
    restarted = LeaseDesk(store, clock, executor="local", lease_seconds=10.0)
    round_ = Answer()
    restarted.handle(RenewLeases(64, round_))
    assert [c.lease.epoch for c in round_.value.claimed if c.lease] == [2]
    restarted.handle(HoldLeases({"e": 1}, keep_newer=True))  # what the coordinator knew then
    assert restarted.held == {"e": 2}
    update = OperationUpdate("e", "e/0", "1", OpKind.STEP, "s", OpStatus.SUCCEEDED, payload=b"v")
    store.commit([update], (), clock.time(), restarted.fence())  # not refused


def test_a_coordinator_that_starts_afresh_makes_the_writer_hold_exactly_what_it_holds() -> None:
    store, clock = MemoryStore(), FakeClock()
    desk = LeaseDesk(store, clock, executor="local", lease_seconds=10.0)
    desk.handle(CreateExecution(NewExecution("e", "map", "fp", b"", ()), Answer()))
    desk.handle(HoldLeases({}))  # the earlier coordinator's leases are claimed again, anew
    assert desk.held == {}


def test_the_coordinator_tells_a_restarted_writer_to_keep_the_newer_leases(
        rig: tuple[Any, Any]) -> None:
    coordinator, checkpoint = rig
    assert start(coordinator).get(timeout=10) == "created"
    crash_and_restart(coordinator, checkpoint)
    coordinator.ask(DescribeExecution("e"), timeout=10)
    holds = [m for m in checkpoint.ask("seen", timeout=10) if isinstance(m, HoldLeases)]
    assert holds[0].keep_newer is False  # at Wire: exactly what it holds (nothing)
    assert holds[-1] == HoldLeases({"e": 1}, keep_newer=True)
