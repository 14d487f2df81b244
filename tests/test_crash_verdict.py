"""``judge_crash``: what a ``RestartPolicy`` says of one more crash, on either backend."""

from __future__ import annotations

from runtime.config import RestartPolicy
from runtime.processes._supervisor import judge_crash


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
