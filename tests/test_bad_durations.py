"""Durations and counts that make no sense (NaN, inf, zero, negative, wrong type) are refused.

Each is refused where it is given, with what to give instead: a NaN timer never
fires, an infinite one never resumes its branch, and a zero spawn timeout made
every later ``map`` fail far from the configuration that caused it.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from actors import BranchActor, BranchContext, Completion, Retry
from actors.messages import BranchStatus
from actors.testing import InlineHost
from runtime import ActorSystem, ConfigurationError, RestartPolicy, SystemConfig
from runtime.future import Future, get_all

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize("name", ["spawn_timeout", "send_timeout"])
@pytest.mark.parametrize("value", [0, 0.0, NAN, INF, -1])
def test_config_timeouts_that_nothing_could_wait_for_are_refused(name: str, value: float) -> None:
    with pytest.raises(ConfigurationError, match=f"SystemConfig.{name}"):
        SystemConfig(**{name: value})


@pytest.mark.parametrize("name", ["checkpoint_window", "suspend_checkpoint_delay", "spin_wait",
                                  "stop_timeout", "store_lock_timeout"])
@pytest.mark.parametrize("value", [NAN, INF, -0.1, "1", True])
def test_config_durations_must_be_finite_seconds(name: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=f"SystemConfig.{name}.*finite"):
        SystemConfig(**{name: value})


@pytest.mark.parametrize("name", ["checkpoint_window", "suspend_checkpoint_delay", "spin_wait",
                                  "stop_timeout", "store_lock_timeout"])
def test_config_durations_may_be_zero(name: str) -> None:
    assert getattr(SystemConfig(**{name: 0}), name) == 0


@pytest.mark.parametrize("kwargs", [{"ref_threshold_bytes": NAN}, {"ref_threshold_bytes": -1},
                                    {"fork_snapshot_bytes": 1.5}, {"max_parked": NAN},
                                    {"workers": 2.0}, {"mailbox_window": True},
                                    {"suspend_delays": {"wait": NAN}},
                                    {"suspend_delays": {"retry": INF}},
                                    {"trace_path": 7}, {"trace_path": "t\x00.jsonl"}])
def test_config_sizes_counts_and_paths_of_the_wrong_kind_are_refused(
        kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        SystemConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [{"backoff": NAN}, {"backoff": INF}, {"max_backoff": NAN},
                                    {"within": NAN}, {"within": 0}, {"max_restarts": 1.5},
                                    {"max_restarts": -1}])
def test_restart_policies_that_make_no_sense_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="RestartPolicy"):
        RestartPolicy(**kwargs)


def test_a_restart_budget_within_inf_counts_every_restart_ever() -> None:
    assert RestartPolicy(max_restarts=2, within=INF).within == INF


@pytest.mark.parametrize("kwargs", [{"initial": NAN}, {"initial": INF}, {"backoff": NAN},
                                    {"backoff": INF}, {"max_delay": NAN}, {"max_delay": INF},
                                    {"attempts": 2.5}, {"attempts": 0}])
def test_retries_that_would_never_resume_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="Retry"):
        Retry(**kwargs)


def test_a_retry_delay_past_float_range_is_capped_not_an_overflow() -> None:
    assert Retry(attempts=5000, max_delay=60).delay(3000) == 60
    assert Retry(attempts=5000).delay(3000) < INF


class WaitsFor(BranchActor):
    def run(self, ctx: BranchContext, item: Any) -> Any:
        kind, value = item
        if kind == "wait":
            ctx.wait("pause", seconds=value)
        elif kind == "condition":
            ctx.wait_for_condition("ready", lambda s: (True, s), interval=value)
        else:
            ctx.create_callback("approval", timeout=value)
        return "went on"


@pytest.mark.parametrize("item", [("wait", NAN), ("wait", INF), ("wait", -1),
                                  ("condition", NAN), ("condition", INF),
                                  ("callback", NAN), ("callback", INF), ("callback", 0)])
def test_context_durations_that_no_timer_can_keep_fail_the_branch_at_the_call(
        inline_host: InlineHost, item: tuple[str, float]) -> None:
    inline_host.start(WaitsFor, item, branch_id="b")
    inline_host.run_until_idle()
    outcome = inline_host.outcomes["b"]
    assert outcome.status is BranchStatus.FAILED
    assert isinstance(outcome.error, ValueError)
    assert "finite" in str(outcome.error) or "seconds > 0" in str(outcome.error)


@pytest.mark.parametrize("timeout", [NAN, -1, -INF])
def test_future_get_refuses_a_timeout_that_is_no_duration(timeout: float) -> None:
    future: Future[int] = Future()
    future.set(1)
    with pytest.raises(ValueError, match=r"Future.get\(\) timeout"):
        future.get(timeout=timeout)
    with pytest.raises(ValueError, match=r"get_all\(\) timeout"):
        get_all([future], timeout=timeout)


def test_future_get_with_an_infinite_timeout_waits_like_none() -> None:
    future: Future[int] = Future()
    future.set(1)
    assert future.get(timeout=INF) == 1
    assert get_all([future], timeout=INF) == [1]


@pytest.mark.parametrize("kwargs", [{"min_successful": NAN}, {"tolerated_failures": NAN},
                                    {"min_successful": 1.5}, {"tolerated_failures": True},
                                    {"tolerated_failure_pct": NAN}])
def test_completion_counts_that_would_never_end_a_batch_are_refused(
        kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="Completion"):
        Completion(**kwargs)


@pytest.mark.parametrize("timeout", [NAN, INF, -1])
def test_shutdown_refuses_a_timeout_that_is_no_duration_before_closing_anything(
        timeout: float) -> None:
    system = ActorSystem(config=SystemConfig(workers=1))
    try:
        with pytest.raises(ValueError, match=r"shutdown\(timeout="):
            system.shutdown(timeout=timeout)
        assert not system.closed
    finally:
        system.shutdown()
    assert system.closed
