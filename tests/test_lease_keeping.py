"""When the coordinator renews leases, and when a worker's run is stale: pure logic."""

from __future__ import annotations

import threading
import time

from actors.clock import FakeClock
from actors.control import FENCE_ALL, FenceRuns
from actors.fences import RunFences
from actors.leasekeeper import MARGIN, LeaseKeeper
from actors.messages import ExecutionRecord, ExecutionStatus
from actors.ownership import ExecutionClaim, Lease, LeaseRound

LEASE = 9.0


def keeper(clock: FakeClock, recover: bool = True) -> LeaseKeeper:
    return LeaseKeeper(clock, lease_seconds=LEASE, recover=recover)


def round_of(renewed: tuple[Lease, ...] = (), next_expiry: float | None = None,
             claimed: tuple[ExecutionClaim, ...] = ()) -> LeaseRound:
    return LeaseRound(renewed, (), claimed, (), next_expiry)


def test_the_first_round_goes_at_once_and_the_next_a_third_of_a_lease_later() -> None:
    clock = FakeClock(100.0)
    k = keeper(clock)
    assert k.due()
    k.sent()
    assert not k.due()  # one round in flight at a time
    k.done(round_of())
    clock.advance(LEASE / 3 - 0.01)
    assert not k.due()
    clock.advance(0.02)
    assert k.due()


def test_orphans_are_looked_for_just_after_the_soonest_foreign_lease_expires() -> None:
    clock = FakeClock(100.0)
    k = keeper(clock)
    k.sent()
    k.done(round_of(next_expiry=101.0))
    assert k.wake_time() == 101.01
    clock.advance(1.02)
    assert k.due()


def test_without_recover_a_foreign_expiry_is_not_watched() -> None:
    clock = FakeClock(100.0)
    k = keeper(clock, recover=False)
    k.sent()
    k.done(round_of(next_expiry=101.0))
    assert k.wake_time() == 100.0 + LEASE / 3
    assert k.claim_batch == 0


def test_leases_are_confirmed_from_when_their_renewal_was_sent() -> None:
    clock = FakeClock(100.0)
    k = keeper(clock)
    assert k.hold(Lease("e1", "me", 1, 109.0), asked_at=clock.monotonic()) == (
        100.0 + LEASE * (1 - MARGIN))
    clock.advance(2.0)
    k.sent()  # sent at 102
    clock.advance(1.0)  # answered at 103: the confirmation counts from 102
    moved = k.done(round_of((Lease("e1", "me", 1, 111.0),)))
    assert moved == 102.0 + LEASE * (1 - MARGIN)


def test_the_soonest_confirmation_bounds_every_lease() -> None:
    clock = FakeClock(100.0)
    k = keeper(clock)
    k.hold(Lease("old", "me", 1, 0.0), asked_at=100.0)
    assert k.hold(Lease("new", "me", 1, 0.0), asked_at=105.0) is None  # "old" still bounds it
    assert k.valid_until == 100.0 + LEASE * (1 - MARGIN)


def test_a_failed_round_is_tried_again_soon() -> None:
    clock = FakeClock(100.0)
    k = keeper(clock)
    k.sent()
    k.failed()
    assert not k.due()
    clock.advance(0.5)
    assert k.due()


def test_a_claimed_orphan_is_held_after_the_round() -> None:
    clock = FakeClock(100.0)
    k = keeper(clock)
    k.sent()
    record = ExecutionRecord("o", "map", ExecutionStatus.RUNNING, b"", 1, None, None, 0, 0)
    k.done(round_of(claimed=(ExecutionClaim(record, lease=Lease("o", "me", 3, 109.0)),)))
    assert k.held["o"].epoch == 3


def test_a_run_older_than_its_branch_s_fence_is_stale() -> None:
    fences = RunFences()
    fences.update(FenceRuns(branches=(("e/0", 7),)))
    assert fences.stale("e", "e/0", 6) == "superseded by run 7"
    assert fences.stale("e", "e/0", 7) is None
    assert fences.stale("e", "e/1", 1) is None


def test_every_run_of_a_fenced_execution_is_stale_until_it_is_owned_again() -> None:
    fences = RunFences()
    fences.update(FenceRuns(executions=(("e", FENCE_ALL),)))
    assert "cancelled" in (fences.stale("e", "e/0", 10) or "")
    fences.update(FenceRuns(executions=(("e", 11),)))  # taken up again from run 11
    assert fences.stale("e", "e/0", 10) is not None
    assert fences.stale("e", "e/0", 11) is None


def test_an_operation_past_the_confirmed_leases_waits_for_a_renewal() -> None:
    fences = RunFences()
    fences.confirm(time.monotonic() - 1.0)  # expired: this process was paused, say
    threading.Timer(0.05, fences.confirm, args=(time.monotonic() + 60,)).start()
    assert fences.check("e", "e/0", 1, timeout=5.0) is None


def test_an_operation_waiting_for_a_renewal_stops_when_its_execution_is_fenced() -> None:
    fences = RunFences()
    fences.confirm(time.monotonic() - 1.0)
    threading.Timer(0.05, fences.update,
                    args=(FenceRuns(executions=(("e", FENCE_ALL),)),)).start()
    assert "another system" in (fences.check("e", "e/0", 1, timeout=5.0) or "")


def test_unconfirmed_leases_stop_an_operation_after_the_wait() -> None:
    fences = RunFences()
    fences.confirm(time.monotonic() - 1.0)
    assert "not confirmed" in (fences.check("e", "e/0", 1, timeout=0.05) or "")
