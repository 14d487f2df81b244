"""Retry, Completion and BatchResult: every decision, from counts alone."""

from __future__ import annotations

import pickle

import pytest

from actors.errors import BatchFailedError
from actors.policies import BatchProgress, BatchResult, BatchStatus, Completion, Retry
from actors.records import BranchStatus

OK, FAIL, PENDING = BranchStatus.SUCCEEDED, BranchStatus.FAILED, BranchStatus.PENDING


# -- Retry ------------------------------------------------------------------------------


def test_retry_delay_grows_by_backoff_from_initial() -> None:
    retry = Retry(attempts=5, backoff=2.0, initial=1.5)
    assert [retry.delay(n) for n in (1, 2, 3, 4)] == [1.5, 3.0, 6.0, 12.0]


def test_retry_delay_is_capped_by_max_delay() -> None:
    retry = Retry(attempts=10, backoff=3.0, initial=1.0, max_delay=5.0)
    assert [retry.delay(n) for n in (1, 2, 3, 4)] == [1.0, 3.0, 5.0, 5.0]


def test_retry_attempts_count_the_first_try() -> None:
    retry = Retry(attempts=3)
    assert retry.should_retry(OSError(), attempt=1)
    assert retry.should_retry(OSError(), attempt=2)
    assert not retry.should_retry(OSError(), attempt=3)


def test_retry_on_retries_only_the_listed_exception_types() -> None:
    retry = Retry(attempts=3, retry_on=(TimeoutError,))
    assert retry.should_retry(TimeoutError(), attempt=1)
    assert not retry.should_retry(ValueError(), attempt=1)


def test_retry_rejects_settings_that_make_no_sense() -> None:
    with pytest.raises(ValueError, match="at least 1 attempt"):
        Retry(attempts=0)
    with pytest.raises(ValueError, match="negative"):
        Retry(initial=-1.0)
    with pytest.raises(TypeError, match="tuple of exception classes"):
        Retry(retry_on=ValueError)  # type: ignore[arg-type]


def test_retry_is_a_picklable_frozen_value() -> None:
    retry = Retry(attempts=4, retry_on=(OSError,))
    assert pickle.loads(pickle.dumps(retry)) == retry
    with pytest.raises(AttributeError):
        retry.attempts = 5  # type: ignore[misc]


# -- Completion.decide ------------------------------------------------------------------


def test_all_successful_finishes_at_the_first_failure() -> None:
    policy = Completion.all_successful()
    assert policy.decide(total=5, succeeded=2, failed=0) is None
    assert policy.decide(total=5, succeeded=2, failed=1) is BatchStatus.FAILURE_TOLERANCE_EXCEEDED


def test_all_successful_completes_when_every_branch_succeeded() -> None:
    assert Completion.all_successful().decide(3, 3, 0) is BatchStatus.ALL_COMPLETED


def test_all_completed_waits_for_every_branch_whatever_fails() -> None:
    policy = Completion.all_completed()
    assert policy.decide(total=4, succeeded=0, failed=3) is None
    assert policy.decide(total=4, succeeded=0, failed=4) is BatchStatus.ALL_COMPLETED


def test_min_successful_reached_finishes_early() -> None:
    policy = Completion(min_successful=2)
    assert policy.decide(total=5, succeeded=1, failed=1) is None
    assert policy.decide(total=5, succeeded=2, failed=1) is BatchStatus.MIN_SUCCESSFUL_REACHED


def test_min_successful_reached_by_the_last_branch_is_all_completed() -> None:
    assert Completion(min_successful=3).decide(3, 3, 0) is BatchStatus.ALL_COMPLETED


def test_min_successful_out_of_reach_exceeds_the_tolerance() -> None:
    # 1 succeeded + 1 pending can no longer make 3.
    policy = Completion(min_successful=3)
    assert policy.decide(total=4, succeeded=1, failed=2) is BatchStatus.FAILURE_TOLERANCE_EXCEEDED


def test_tolerated_failures_allows_that_many_and_no_more() -> None:
    policy = Completion(tolerated_failures=2)
    assert policy.decide(total=6, succeeded=0, failed=2) is None
    assert policy.decide(total=6, succeeded=0, failed=3) is BatchStatus.FAILURE_TOLERANCE_EXCEEDED


def test_tolerated_failures_within_tolerance_ends_all_completed() -> None:
    assert Completion(tolerated_failures=2).decide(5, 3, 2) is BatchStatus.ALL_COMPLETED


def test_tolerated_failure_pct_is_a_share_of_the_total() -> None:
    policy = Completion(tolerated_failure_pct=25)
    assert policy.decide(total=8, succeeded=0, failed=2) is None  # 25% exactly is tolerated
    assert policy.decide(total=8, succeeded=0, failed=3) is BatchStatus.FAILURE_TOLERANCE_EXCEEDED


def test_failures_beyond_tolerance_win_over_min_successful() -> None:
    policy = Completion(min_successful=2, tolerated_failures=0)
    assert policy.decide(total=5, succeeded=2, failed=1) is BatchStatus.FAILURE_TOLERANCE_EXCEEDED


def test_an_empty_batch_is_completed_at_once() -> None:
    assert Completion.all_successful().decide(0, 0, 0) is BatchStatus.ALL_COMPLETED


def test_completion_rejects_counts_that_do_not_add_up() -> None:
    with pytest.raises(ValueError, match="inconsistent counts"):
        Completion().decide(total=2, succeeded=2, failed=1)


def test_completion_rejects_a_min_successful_larger_than_the_batch() -> None:
    with pytest.raises(ValueError, match="cannot be reached by a batch of 2"):
        Completion(min_successful=3).check_total(2)


def test_completion_rejects_a_percentage_out_of_range() -> None:
    with pytest.raises(ValueError, match="percent"):
        Completion(tolerated_failure_pct=150)


# -- BatchResult ------------------------------------------------------------------------


def _result(*outcomes: tuple[BranchStatus, object]) -> BatchResult:
    return BatchResult(
        tuple(v if s is OK else None for s, v in outcomes),
        tuple(v if s is FAIL else None for s, v in outcomes),  # type: ignore[misc]
        tuple(s for s, _ in outcomes),
        BatchStatus.ALL_COMPLETED,
    )


def test_batch_result_counts_succeeded_and_failed() -> None:
    batch = _result((OK, 1), (FAIL, KeyError("b")), (OK, 3), (PENDING, None))
    assert (batch.succeeded, batch.failed) == (2, 1)


def test_batch_result_values_returns_results_in_input_order() -> None:
    assert _result((OK, "a"), (OK, None), (OK, "c")).values() == ["a", None, "c"]


def test_batch_result_values_raises_naming_how_many_failed() -> None:
    first = KeyError("b")
    batch = _result((OK, 1), (FAIL, first), (FAIL, ValueError("c")))
    with pytest.raises(BatchFailedError, match="2 of 3 branches failed") as caught:
        batch.values()
    assert caught.value.__cause__ is first
    assert (caught.value.failed, caught.value.first_index) == (2, 1)


def test_batch_failed_error_keeps_its_cause_through_pickle() -> None:
    err = pickle.loads(pickle.dumps(BatchFailedError(1, 2, 0, KeyError("x"))))
    assert isinstance(err.__cause__, KeyError)
    assert "1 of 2 branches failed" in str(err)


def test_batch_result_is_a_picklable_frozen_value() -> None:
    batch = _result((OK, {"k": 1}), (FAIL, KeyError("b")))
    copy = pickle.loads(pickle.dumps(batch))
    assert copy.results == batch.results
    assert copy.statuses == batch.statuses
    assert (copy.succeeded, copy.failed, copy.status) == (1, 1, BatchStatus.ALL_COMPLETED)
    assert isinstance(copy.errors[1], KeyError)
    with pytest.raises(AttributeError):
        batch.status = BatchStatus.MIN_SUCCESSFUL_REACHED  # type: ignore[misc]


def test_batch_result_status_compares_equal_to_its_api_string() -> None:
    assert _result((OK, 1)).status == "ALL_COMPLETED"


# -- BatchProgress ----------------------------------------------------------------------


def test_batch_progress_finishes_fail_fast_and_keeps_unawaited_branches_empty() -> None:
    progress = BatchProgress(total=3, completion=Completion.all_successful())
    progress.start(0)
    progress.start(1)
    assert progress.succeed(0, "a") is None
    assert progress.fail(1, KeyError("b")) is BatchStatus.FAILURE_TOLERANCE_EXCEEDED
    batch = progress.result()
    assert batch.results == ("a", None, None)
    assert batch.statuses == (OK, FAIL, PENDING)


def test_batch_progress_ignores_reports_after_the_batch_finished() -> None:
    progress = BatchProgress(total=3, completion=Completion(min_successful=1))
    progress.start(0)
    progress.start(1)
    progress.succeed(0, "a")
    progress.fail(1, KeyError("late"))
    batch = progress.result()
    assert batch.status is BatchStatus.MIN_SUCCESSFUL_REACHED
    assert batch.statuses == (OK, BranchStatus.RUNNING, PENDING)
    assert batch.failed == 0


def test_batch_progress_has_no_result_before_it_finishes() -> None:
    with pytest.raises(RuntimeError, match="not finished"):
        BatchProgress(total=1, completion=Completion()).result()
