"""``judge_crash`` and ``held_again``: what a ``RestartPolicy`` says of a crash, and when a
child past its budget counts as recovered, on either backend."""

from __future__ import annotations

from runtime.config import RestartPolicy
from runtime.processes._supervisor import HELD, ChildState, held_again, judge_crash


def test_a_crash_within_the_budget_restarts_after_the_policys_backoff() -> None:
    policy = RestartPolicy(max_restarts=3, backoff=0.1, within=60.0)
    verdict = judge_crash(policy, [100.0], 110.0, "worker-0", "SIGKILL")
    assert verdict.restart
    assert verdict.delay == policy.delay(2)
    assert verdict.recent == [100.0]


def test_restarts_older_than_the_window_do_not_count() -> None:
    policy = RestartPolicy(max_restarts=1, within=10.0)
    verdict = judge_crash(policy, [0.0], 50.0, "worker-0", "SIGKILL")
    assert verdict.restart and verdict.recent == []


def test_a_crash_past_the_budget_says_why_and_keeps_the_slower_pace() -> None:
    policy = RestartPolicy(max_restarts=2, within=60.0, then_every=10.0)
    verdict = judge_crash(policy, [1.0, 2.0], 3.0, "checkpoint", "SIGKILL")
    assert not verdict.restart
    assert verdict.then_every == 10.0
    assert verdict.why == "the checkpoint process crashed 3 times in 60 s: last exit SIGKILL"


def test_a_crash_without_a_policy_is_the_end() -> None:
    verdict = judge_crash(None, [], 1.0, "counter", "exit code 3")
    assert not verdict.restart and verdict.then_every is None
    assert verdict.why == "the counter process crashed: exit code 3"


def test_a_given_up_child_counts_as_recovered_once_it_has_run_for_the_held_time() -> None:
    assert held_again(True, ChildState.RUNNING, 10.0, 10.0 + HELD + 0.1)
    assert not held_again(True, ChildState.RUNNING, 10.0, 10.0 + HELD - 0.1)


def test_only_a_running_child_that_had_given_up_counts_as_recovered() -> None:
    assert not held_again(False, ChildState.RUNNING, 0.0, 100.0)
    assert not held_again(True, ChildState.RESTARTING, 0.0, 100.0)
