"""Async branches in one process: what differs from a sync branch, and step timeouts of both.

Everything a sync branch guarantees is pinned by the suites parametrized over ``kind``
(``test_branch_replay.py`` and the system suites); here is what only an async branch
has — where its step functions run, what it refuses — and ``ctx.step(timeout=...)``.
"""

from __future__ import annotations

import asyncio
import pickle
import threading
from collections import Counter
from typing import Any

import pytest

from actors import AsyncBranchContext, BranchActor
from actors.branch import BranchSpec
from actors.errors import DurableActorsError, StepTimeoutError
from actors.messages import BranchLog, BranchStatus, OpKind, OpStatus
from actors.policies import Retry
from actors.replay import run_branch, run_branch_async
from actors.testing import InlineHost

from branch_kinds import Kind


@pytest.fixture
def host(inline_host: InlineHost) -> InlineHost:
    return inline_host


@pytest.fixture
def release() -> Any:
    """An event that abandoned step attempts wait on; set at the end so their threads end."""
    event = threading.Event()
    yield event
    event.set()


def outcome_of(host: InlineHost, branch_id: str = "branch") -> Any:
    return host.outcomes[branch_id]


def statuses(host: InlineHost, branch_id: str = "branch") -> list[tuple[OpKind, OpStatus, int]]:
    return [(o.kind, o.status, o.attempt) for o in host.store.read_log(branch_id).operations]


# -- where step functions run -------------------------------------------------------------------


def test_an_async_step_function_is_awaited_on_the_branchs_own_loop(host: InlineHost) -> None:
    seen: dict[str, Any] = {}

    async def fetch(url: str) -> str:
        seen["step"] = asyncio.get_running_loop()
        await asyncio.sleep(0)
        return f"page of {url}"

    class Fetch(BranchActor):
        async def run(self, ctx: AsyncBranchContext, item: Any) -> str:
            seen["run"] = asyncio.get_running_loop()
            page: str = await ctx.step("get", fetch, item)
            return page

    host.start(Fetch, "a.example")
    host.run_until_idle()

    assert outcome_of(host).result == "page of a.example"
    assert seen["step"] is seen["run"]


def test_a_sync_step_function_of_an_async_branch_runs_off_the_loops_thread(
    host: InlineHost,
) -> None:
    threads: dict[str, int] = {}

    def blocking() -> int:
        threads["step"] = threading.get_ident()
        return 7

    class Blocks(BranchActor):
        async def run(self, ctx: AsyncBranchContext, item: Any) -> int:
            threads["run"] = threading.get_ident()
            value: int = await ctx.step("block", blocking)
            return value

    host.start(Blocks)
    host.run_until_idle()

    assert outcome_of(host).result == 7
    assert threads["step"] != threads["run"]


def test_a_sync_step_function_that_returns_a_coroutine_has_it_awaited(host: InlineHost) -> None:
    async def double(n: int) -> int:
        return 2 * n

    class Wraps(BranchActor):
        async def run(self, ctx: AsyncBranchContext, item: Any) -> int:
            value: int = await ctx.step("double", lambda: double(21))
            return value

    host.start(Wraps)
    host.run_until_idle()

    assert outcome_of(host).result == 42


def test_an_async_condition_check_is_awaited(host: InlineHost) -> None:
    async def grown(state: int) -> tuple[bool, int]:
        return state + 1 >= 2, state + 1

    class Polls(BranchActor):
        async def run(self, ctx: AsyncBranchContext, item: Any) -> int:
            final: int = await ctx.wait_for_condition("grown", grown, initial_state=0,
                                                      interval=1.0)
            return final

    host.start(Polls)
    host.run_until_idle()
    host.advance(1)

    assert outcome_of(host).result == 2


# -- what an async branch refuses ---------------------------------------------------------------


def test_two_operations_at_once_are_refused_naming_the_one_in_progress(host: InlineHost) -> None:
    async def slow() -> int:
        await asyncio.sleep(0.01)
        return 1

    class Gathers(BranchActor):
        async def run(self, ctx: AsyncBranchContext, item: Any) -> Any:
            return await asyncio.gather(ctx.step("a", slow), ctx.step("b", lambda: 2))

    host.start(Gathers)
    host.run_until_idle()

    error = outcome_of(host).error
    assert isinstance(error, RuntimeError)
    assert "while step 'a' is in progress" in str(error)
    assert "ctx.map or ctx.parallel" in str(error)


def test_a_sync_branch_whose_step_returns_a_coroutine_fails_saying_to_make_it_async(
    host: InlineHost,
) -> None:
    async def fetch() -> str:
        return "page"

    class Sync(BranchActor):
        def run(self, ctx: Any, item: Any) -> Any:
            return ctx.step("get", fetch)

    host.start(Sync)
    host.run_until_idle()

    error = outcome_of(host).error
    assert isinstance(error, TypeError)
    assert "needs an async branch" in str(error) and "async def run" in str(error)
    assert statuses(host) == [(OpKind.STEP, OpStatus.FAILED, 1)]


def test_each_runner_refuses_the_other_kind_of_branch(host: InlineHost) -> None:
    class Async(BranchActor):
        async def run(self, ctx: AsyncBranchContext, item: Any) -> None:
            return None

    class Sync(BranchActor):
        def run(self, ctx: Any, item: Any) -> None:
            return None

    with pytest.raises(TypeError, match="run it with run_branch_async"):
        run_branch(BranchSpec("e", "a", Async), BranchLog("a", None, ()), host)
    with pytest.raises(TypeError, match="run it with run_branch on a thread"):
        asyncio.run(run_branch_async(BranchSpec("e", "s", Sync), BranchLog("s", None, ()),
                                     host))  # type: ignore[arg-type]


# -- mixing kinds ---------------------------------------------------------------------------------


class Square(BranchActor):
    async def run(self, ctx: AsyncBranchContext, item: int) -> int:
        value: int = await ctx.step("square", lambda: item * item)
        return value


def test_a_parent_maps_children_of_the_other_kind(host: InlineHost, kind: Kind) -> None:
    other = Kind.SYNC if kind is Kind.ASYNC else Kind.ASYNC

    class Parent(BranchActor):
        async def run(self, ctx: Any, item: Any) -> Any:
            await ctx.wait("first", seconds=1)
            return (await ctx.map("squares", other(Square), [2, 3])).values()

    host.start(kind(Parent), branch_id="p")
    host.run_until_idle()
    host.advance(1)

    assert outcome_of(host, "p").result == [4, 9]


# -- step timeouts, both kinds --------------------------------------------------------------------


def test_a_step_past_its_timeout_fails_with_step_timeout_error(
    host: InlineHost, kind: Kind, release: threading.Event
) -> None:
    class Slow(BranchActor):
        async def run(self, ctx: Any, item: Any) -> Any:
            return await ctx.step("slow", release.wait, 30, timeout=0.05)

    host.start(kind(Slow))
    host.run_until_idle()

    error = outcome_of(host).error
    assert isinstance(error, StepTimeoutError)
    assert (error.step, error.timeout, error.attempt) == ("slow", 0.05, 1)
    assert statuses(host) == [(OpKind.STEP, OpStatus.FAILED, 1)]


def test_retry_applies_to_an_attempt_that_timed_out(
    host: InlineHost, kind: Kind, release: threading.Event
) -> None:
    calls: Counter[str] = Counter()

    def slow_then_fast() -> str:
        calls["attempt"] += 1
        if calls["attempt"] == 1:
            release.wait(30)  # abandoned: it finishes when the test ends
        return "ok"

    class Retries(BranchActor):
        async def run(self, ctx: Any, item: Any) -> Any:
            return await ctx.step("call", slow_then_fast, timeout=0.05,
                                  retry=Retry(attempts=2, initial=1.0))

    host.start(kind(Retries))
    host.run_until_idle()
    assert statuses(host) == [(OpKind.STEP, OpStatus.RETRYING, 1)]
    retrying = host.store.read_log("branch").operations[0]
    assert retrying.error is not None and b"StepTimeoutError" in retrying.error
    host.advance(1)

    assert outcome_of(host).result == "ok"
    assert statuses(host) == [(OpKind.STEP, OpStatus.SUCCEEDED, 2)]


def test_a_step_within_its_timeout_succeeds_as_without_one(host: InlineHost, kind: Kind) -> None:
    class Quick(BranchActor):
        async def run(self, ctx: Any, item: Any) -> Any:
            return await ctx.step("quick", lambda: "done", timeout=30)

    host.start(kind(Quick))
    host.run_until_idle()

    assert outcome_of(host).result == "done"


def test_an_async_step_past_its_timeout_is_cancelled(host: InlineHost) -> None:
    cancelled = threading.Event()

    async def hangs() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    class Hangs(BranchActor):
        async def run(self, ctx: AsyncBranchContext, item: Any) -> Any:
            return await ctx.step("hang", hangs, timeout=0.05)

    host.start(Hangs)
    host.run_until_idle()

    assert isinstance(outcome_of(host).error, StepTimeoutError)
    assert cancelled.is_set()


def test_a_step_functions_own_timeout_error_is_a_failure_not_a_step_timeout(
    host: InlineHost,
) -> None:
    async def gives_up() -> None:
        raise TimeoutError("the remote said so")

    class Own(BranchActor):
        async def run(self, ctx: AsyncBranchContext, item: Any) -> Any:
            return await ctx.step("call", gives_up, timeout=30)

    host.start(Own)
    host.run_until_idle()

    error = outcome_of(host).error
    assert type(error) is TimeoutError and error.args == ("the remote said so",)


def test_a_timeout_that_is_not_positive_is_refused(host: InlineHost, kind: Kind) -> None:
    class Zero(BranchActor):
        async def run(self, ctx: Any, item: Any) -> Any:
            return await ctx.step("zero", lambda: 1, timeout=0)

    host.start(kind(Zero))
    host.run_until_idle()

    error = outcome_of(host).error
    assert isinstance(error, ValueError) and "timeout=0" in str(error)
    assert outcome_of(host).status is BranchStatus.FAILED


def test_step_timeout_error_is_a_durable_actors_error_and_a_timeout_error() -> None:
    from runtime import StepTimeoutError as Exported

    error = StepTimeoutError("get", 2.5, attempt=3)
    copy = pickle.loads(pickle.dumps(error))

    assert Exported is StepTimeoutError
    assert isinstance(error, DurableActorsError) and isinstance(error, TimeoutError)
    assert (copy.step, copy.timeout, copy.attempt, str(copy)) == ("get", 2.5, 3, str(error))
    assert "within its timeout of 2.5 s" in str(error) and "Retry" in str(error)
