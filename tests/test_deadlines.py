"""When the scheduler looks at its clock: ``Deadlines``, pure logic, no clock at all."""

from __future__ import annotations

import random

import pytest

from actors.clock import FakeClock
from actors.protocol import SuspensionKey
from actors.scheduling import DeadlineKind, Deadlines, SchedulerActor

SLACK = 0.005


def key(n: int) -> SuspensionKey:
    return SuspensionKey(f"e/{n}", 1, 0)


def test_a_deadline_with_none_near_it_is_due_on_time() -> None:
    deadlines = Deadlines(SLACK)
    deadlines.push(10.0, DeadlineKind.DUE, key(0))
    assert deadlines.wake_time() == 10.0


def test_deadlines_within_the_slack_of_the_soonest_wake_at_the_latest_of_them() -> None:
    deadlines = Deadlines(SLACK)
    for n, when in enumerate((10.004, 10.0, 10.02, 10.003, 10.0051)):
        deadlines.push(when, DeadlineKind.DUE, key(n))
    assert deadlines.wake_time() == 10.004


def test_a_deadline_pushed_into_the_window_later_moves_the_wake_time() -> None:
    deadlines = Deadlines(SLACK)
    deadlines.push(10.0, DeadlineKind.DUE, key(0))
    assert deadlines.wake_time() == 10.0
    deadlines.push(10.002, DeadlineKind.DUE, key(1))
    assert deadlines.wake_time() == 10.002


def test_a_new_soonest_deadline_opens_a_new_window() -> None:
    deadlines = Deadlines(SLACK)
    deadlines.push(10.0, DeadlineKind.DUE, key(0))
    assert deadlines.wake_time() == 10.0
    deadlines.push(9.0, DeadlineKind.APPLY, key(1))
    assert deadlines.wake_time() == 9.0


def test_pop_due_takes_every_deadline_at_or_before_now_soonest_first() -> None:
    deadlines = Deadlines(SLACK)
    for n, when in enumerate((10.004, 10.0, 10.02, 10.003)):
        deadlines.push(when, DeadlineKind.DUE, key(n))
    due = DeadlineKind.DUE
    assert list(deadlines.pop_due(10.004)) == [(due, key(1)), (due, key(3)), (due, key(0))]
    assert len(deadlines) == 1
    assert deadlines.wake_time() == 10.02


def test_no_deadline_means_no_wake_time() -> None:
    deadlines = Deadlines(SLACK)
    assert deadlines.wake_time() is None
    deadlines.push(1.0, DeadlineKind.DUE, key(0))
    assert list(deadlines.pop_due(1.0)) == [(DeadlineKind.DUE, key(0))]
    assert deadlines.wake_time() is None


def test_waking_at_the_wake_time_takes_the_soonest_at_most_slack_late_and_none_early() -> None:
    """Against a brute-force reading of the rule, over random pushes and pops."""
    rng = random.Random(20261122)
    deadlines = Deadlines(SLACK)
    pending: list[float] = []
    for n in range(3_000):
        if pending and rng.random() < 0.3:
            now = min(pending) + rng.choice((0.0, SLACK / 2, SLACK * 3))
            taken = list(deadlines.pop_due(now))
            due = sorted(w for w in pending if w <= now)
            pending = [w for w in pending if w > now]
            assert len(taken) == len(due)
        else:
            when = round(rng.uniform(0.0, 1.0), 4)  # ties and near-ties are common
            deadlines.push(when, rng.choice((DeadlineKind.DUE, DeadlineKind.APPLY)), key(n))
            pending.append(when)
        expected = max((w for w in pending if w <= min(pending) + SLACK), default=None)
        assert deadlines.wake_time() == expected


def test_a_negative_slack_is_refused() -> None:
    with pytest.raises(ValueError, match="slack"):
        SchedulerActor(checkpoint=None, coordinator=None,  # type: ignore[arg-type]
                       clock=FakeClock(), slack=-1.0)
