"""Retry and completion policies, and the result of a batch of branches.

All of it is pure: a policy is a frozen value that answers questions about
counts and attempts, so the context, the worker and the scheduler can share it
and a test can check every decision without running anything.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from actors.errors import BatchFailedError
from actors.messages import BranchStatus


def _finite_seconds(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and 0 <= value < math.inf)


@dataclass(frozen=True, slots=True)
class Retry:
    """How often a failed step is tried again, and how long the branch waits in between.

    ``attempts`` counts every try, the first included. The delay after the n-th
    failed attempt is ``initial * backoff ** (n - 1)``, capped by ``max_delay``;
    the branch is suspended for it like ``ctx.wait``. Only exceptions that are
    instances of ``retry_on`` are retried.

        retry = Retry(attempts=3, backoff=2.0, initial=1.0)
        retry.delay(1), retry.delay(2)            # (1.0, 2.0)
        retry.should_retry(OSError(), attempt=3)  # False: that was the last try
    """

    attempts: int = 3
    backoff: float = 2.0
    initial: float = 1.0
    max_delay: float | None = None
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or isinstance(self.attempts, bool) or (
                self.attempts < 1):
            raise ValueError(f"Retry(attempts={self.attempts!r}): give at least 1 attempt (an int)")
        # NaN and inf are no delay a timer can keep (a branch would never resume).
        if not (_finite_seconds(self.initial) and _finite_seconds(self.backoff)):
            raise ValueError(
                f"Retry(initial={self.initial!r}, backoff={self.backoff!r}): delays cannot be "
                "negative, NaN or infinite; give finite numbers >= 0"
            )
        if self.max_delay is not None and not _finite_seconds(self.max_delay):
            raise ValueError(
                f"Retry(max_delay={self.max_delay!r}): a delay cannot be negative, NaN or "
                "infinite; give a finite delay >= 0, or None for no cap"
            )
        if not isinstance(self.retry_on, tuple) or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in self.retry_on
        ):
            raise TypeError(
                f"Retry(retry_on={self.retry_on!r}): give a tuple of exception classes, "
                "e.g. retry_on=(TimeoutError,)"
            )

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th (1-based) failed attempt."""
        if attempt < 1:
            raise ValueError(f"attempt numbers start at 1, not {attempt}")
        try:
            seconds = self.initial * self.backoff ** (attempt - 1)
        except OverflowError:  # a thousand doublings: past any cap there is
            seconds = sys.float_info.max
        return seconds if self.max_delay is None else min(seconds, self.max_delay)

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        """Whether ``exc``, raised by the ``attempt``-th try, earns another try."""
        return attempt < self.attempts and isinstance(exc, self.retry_on)


class BatchStatus(StrEnum):
    """Why a batch of branches finished (``BatchResult.status``)."""

    ALL_COMPLETED = "ALL_COMPLETED"  # every branch ran to an end, within the tolerance
    MIN_SUCCESSFUL_REACHED = "MIN_SUCCESSFUL_REACHED"  # enough succeeded; the rest were not awaited
    FAILURE_TOLERANCE_EXCEEDED = "FAILURE_TOLERANCE_EXCEEDED"  # too many failed to go on


@dataclass(frozen=True, slots=True)
class Completion:
    """When a batch of branches (``map``, ``parallel``) is finished, and how it ended.

    ``decide(total, succeeded, failed)`` is asked after every branch that ends;
    ``pending = total - succeeded - failed`` are the branches not yet ended
    (running, suspended or not started). It answers, checking in this order:

    1. ``FAILURE_TOLERANCE_EXCEEDED`` when ``failed > tolerated_failures``, or
       ``failed > total * tolerated_failure_pct / 100``, or ``min_successful``
       can no longer be reached (``succeeded + pending < min_successful``);
    2. ``ALL_COMPLETED`` when nothing is pending;
    3. ``MIN_SUCCESSFUL_REACHED`` when ``succeeded >= min_successful`` while
       some branches are still pending (they are not awaited);
    4. ``None``: keep going.

    A finished batch starts no more branches. ``None`` limits do not apply, so
    ``Completion()`` waits for every branch whatever fails.

        Completion.all_successful()   # tolerated_failures=0: the first failure ends it
        Completion.all_completed()    # wait for every branch; failures are only reported
        Completion(min_successful=2)  # done as soon as two succeed
        Completion(tolerated_failure_pct=10).decide(total=20, succeeded=5, failed=3)
        # -> BatchStatus.FAILURE_TOLERANCE_EXCEEDED (3 > 2)

    ``all_successful()`` is the default of both ``map`` and ``parallel``: it is
    fail-fast, since after the first failure no new branch is scheduled.
    """

    min_successful: int | None = None
    tolerated_failures: int | None = None
    tolerated_failure_pct: float | None = None

    def __post_init__(self) -> None:
        for name in ("min_successful", "tolerated_failures"):
            count = getattr(self, name)
            # A NaN count compares false with everything: it would never end a batch.
            if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
                raise ValueError(f"Completion({name}={count!r}): give a count (an int) or None")
            if count is not None and count < 0:
                raise ValueError(f"Completion({name}={count}) cannot be negative")
        pct = self.tolerated_failure_pct
        if pct is not None and not 0 <= pct <= 100:
            raise ValueError(f"Completion(tolerated_failure_pct={pct}): give a percent, 0 to 100")

    @classmethod
    def all_successful(cls) -> Completion:
        """Every branch must succeed; the first failure ends the batch (fail-fast)."""
        return cls(tolerated_failures=0)

    @classmethod
    def all_completed(cls) -> Completion:
        """Wait for every branch to end, whatever fails."""
        return cls()

    def check_total(self, total: int) -> None:
        """Raise ``ValueError`` if a batch of ``total`` branches can never satisfy this policy."""
        if self.min_successful is not None and self.min_successful > total:
            raise ValueError(
                f"Completion(min_successful={self.min_successful}) cannot be reached by a batch "
                f"of {total} branches; lower min_successful or give more items"
            )

    def decide(self, total: int, succeeded: int, failed: int) -> BatchStatus | None:
        """The batch's status if it is finished with these counts, else ``None``."""
        pending = total - succeeded - failed
        if min(total, succeeded, failed, pending) < 0:
            raise ValueError(
                f"inconsistent counts: total={total}, succeeded={succeeded}, failed={failed}"
            )
        if self._tolerance_exceeded(total, succeeded, failed, pending):
            return BatchStatus.FAILURE_TOLERANCE_EXCEEDED
        if pending == 0:
            return BatchStatus.ALL_COMPLETED
        if self.min_successful is not None and succeeded >= self.min_successful:
            return BatchStatus.MIN_SUCCESSFUL_REACHED
        return None

    def _tolerance_exceeded(self, total: int, succeeded: int, failed: int, pending: int) -> bool:
        if self.tolerated_failures is not None and failed > self.tolerated_failures:
            return True
        pct = self.tolerated_failure_pct
        if pct is not None and failed * 100 > total * pct:
            return True
        return self.min_successful is not None and succeeded + pending < self.min_successful


def _count(statuses: Sequence[BranchStatus], status: BranchStatus) -> int:
    return sum(1 for s in statuses if s is status)


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What ``map`` and ``parallel`` return: one entry per branch, in input order.

    ``results[i]`` is branch i's value if it succeeded, else ``None``;
    ``errors[i]`` its exception if it failed, else ``None``; ``statuses[i]`` how
    it ended (``PENDING`` or ``RUNNING`` for branches the batch did not await).

        batch = ctx.map("thumbs", Thumb, sizes)
        if batch.status == "ALL_COMPLETED" and batch.failed == 0:
            thumbs = batch.values()      # raises BatchFailedError if any failed
    """

    results: tuple[Any, ...]
    errors: tuple[BaseException | None, ...]
    statuses: tuple[BranchStatus, ...]
    status: BatchStatus
    succeeded: int = field(init=False)
    failed: int = field(init=False)

    def __post_init__(self) -> None:
        if not len(self.results) == len(self.errors) == len(self.statuses):
            raise ValueError("results, errors and statuses need one entry per branch")
        # Derived once: a frozen value never changes, and the counts are read often.
        object.__setattr__(self, "succeeded", _count(self.statuses, BranchStatus.SUCCEEDED))
        object.__setattr__(self, "failed", _count(self.statuses, BranchStatus.FAILED))

    def values(self) -> list[Any]:
        """The results in input order; raises ``BatchFailedError`` if any branch failed.

        Branches the batch did not await (``MIN_SUCCESSFUL_REACHED``) give ``None``.
        """
        if self.failed:
            index = next(i for i, s in enumerate(self.statuses) if s is BranchStatus.FAILED)
            raise BatchFailedError(self.failed, len(self.statuses), index, self.errors[index])
        return list(self.results)


class BatchProgress:
    """Tracks the branches of one batch as they end, for the host that runs them.

    Not thread-safe: one owner (the worker or scheduler of the batch) feeds it.

        progress = BatchProgress(total=3, completion=Completion.all_successful())
        progress.succeed(0, "a")       # None: keep going
        progress.fail(1, KeyError())   # BatchStatus.FAILURE_TOLERANCE_EXCEEDED
        progress.result()              # BatchResult(results=('a', None, None), ...)
    """

    def __init__(self, total: int, completion: Completion) -> None:
        completion.check_total(total)
        self.total = total
        self.completion = completion
        self._results: list[Any] = [None] * total
        self._errors: list[BaseException | None] = [None] * total
        self._statuses: list[BranchStatus] = [BranchStatus.PENDING] * total
        self._succeeded = 0
        self._failed = 0
        self.status: BatchStatus | None = completion.decide(total, 0, 0)

    @property
    def finished(self) -> bool:
        return self.status is not None

    def start(self, index: int) -> None:
        """Note that branch ``index`` was scheduled (it shows as ``RUNNING`` until it ends)."""
        if self._statuses[index] is BranchStatus.PENDING:
            self._statuses[index] = BranchStatus.RUNNING

    def succeed(self, index: int, value: Any) -> BatchStatus | None:
        """Record that branch ``index`` succeeded with ``value``; the batch's status after it."""
        if self._end(index, BranchStatus.SUCCEEDED):
            self._results[index] = value
            self._succeeded += 1
        return self._decide()

    def fail(self, index: int, error: BaseException) -> BatchStatus | None:
        """Record that branch ``index`` failed with ``error``; the batch's status after it."""
        if self._end(index, BranchStatus.FAILED):
            self._errors[index] = error
            self._failed += 1
        return self._decide()

    def result_status(self, index: int) -> BranchStatus:
        """Where branch ``index`` stands in this batch."""
        return self._statuses[index]

    def result(self) -> BatchResult:
        """The batch's result; only once it is finished."""
        if self.status is None:
            raise RuntimeError("the batch is not finished yet; ask again when finished is True")
        return BatchResult(
            tuple(self._results), tuple(self._errors), tuple(self._statuses), self.status
        )

    def _end(self, index: int, status: BranchStatus) -> bool:
        # A branch ends once; a late or duplicate report after the batch finished is ignored.
        if self.status is not None or self._statuses[index] in (
            BranchStatus.SUCCEEDED, BranchStatus.FAILED,
        ):
            return False
        self._statuses[index] = status
        return True

    def _decide(self) -> BatchStatus | None:
        if self.status is None:
            self.status = self.completion.decide(self.total, self._succeeded, self._failed)
        return self.status


__all__ = ["BatchProgress", "BatchResult", "BatchStatus", "Completion", "Retry"]
