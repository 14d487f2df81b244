"""``LeaseKeeper.soon``: a store change heard while a round is in flight is not lost.

A change (a signal written for this owner, heard through the store's notifications)
asks for a round now. If a round is already in flight, that round may have read the
store before the change committed: the keeper sends another one as soon as it returns.
"""

from __future__ import annotations

from actors.clock import FakeClock
from actors.coordinator import LeaseKeeper
from actors.records import LeaseRound

NOTHING = LeaseRound((), (), (), (), None)


def keeper_after_first_round(clock: FakeClock) -> LeaseKeeper:
    keeper = LeaseKeeper(clock, lease_seconds=30.0, recover=False)
    keeper.sent()
    keeper.done(NOTHING)
    return keeper


def test_a_change_between_rounds_makes_the_next_round_due_at_once() -> None:
    clock = FakeClock()
    keeper = keeper_after_first_round(clock)
    clock.advance(1.0)
    assert not keeper.due()
    keeper.soon()
    assert keeper.due()


def test_a_change_heard_while_a_round_is_in_flight_sends_another_round_when_it_returns() -> None:
    clock = FakeClock()
    keeper = keeper_after_first_round(clock)
    clock.advance(1.0)
    keeper.sent()
    keeper.soon()  # the round in flight may have read the store before the change
    clock.advance(0.01)
    keeper.done(NOTHING)
    assert keeper.due()


def test_without_a_change_the_next_round_waits_its_interval() -> None:
    clock = FakeClock()
    keeper = keeper_after_first_round(clock)
    keeper.sent()
    keeper.done(NOTHING)
    assert not keeper.due()
    clock.advance(10.0)
    assert keeper.due()
