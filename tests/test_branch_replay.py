"""The branch replay engine, in one process: an InlineHost over a MemoryStore and a FakeClock.

Every suspension is an eviction (``BranchSuspended``) and every resume a replay
from the store's log, unless a test asks for in-place resumes. A test that takes
``kind`` runs its branches once as sync and once as async branches: one body each
(``tests/branch_kinds.py``).
"""

from __future__ import annotations

import contextlib
import pickle
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import structlog
from structlog.contextvars import merge_contextvars

from actors.branch import BranchActor, BranchSpec, decode_error, encode_error
from actors.context import ConditionResult
from actors.errors import (
    CheckpointError,
    ConditionTimeoutError,
    NonDeterminismError,
    StepFailedError,
)
from actors.messages import BranchLog, BranchStatus, OpKind, OpStatus
from actors.policies import BatchResult, BatchStatus, Completion, Retry
from actors.replay import run_branch
from actors.testing import InlineHost

from branch_kinds import Kind

START = 1_000_000.0  # FakeClock's default start


@pytest.fixture
def host(inline_host: InlineHost) -> InlineHost:
    return inline_host  # the plugin's: a MemoryStore and its fake_clock


@pytest.fixture
def calls() -> Counter[str]:
    return Counter()


def counted(calls: Counter[str], name: str, value: Any = None) -> Callable[[], Any]:
    def fn() -> Any:
        calls[name] += 1
        return value

    return fn


def ops(host: InlineHost, branch_id: str = "branch") -> list[tuple[str, OpKind, str, OpStatus]]:
    return [(o.op_id, o.kind, o.name, o.status) for o in host.store.read_log(branch_id).operations]


def outcome_of(host: InlineHost, branch_id: str = "branch") -> Any:
    return host.outcomes[branch_id]


# -- steps and replay ------------------------------------------------------------------------


def test_replay_returns_logged_step_results_without_calling_fn(
    host: InlineHost, calls: Counter[str], kind: Kind
) -> None:
    class Pipeline(BranchActor):
        async def run(self, ctx: Any, item: Any) -> Any:
            a = await ctx.step("a", counted(calls, "a", 1))
            b = await ctx.step("b", counted(calls, "b", 2))
            await ctx.wait("pause", seconds=10)
            return a + b + await ctx.step("c", counted(calls, "c", 3))

    host.start(kind(Pipeline))
    host.run_until_idle()
    host.advance(10)

    assert outcome_of(host).result == 6
    assert calls == {"a": 1, "b": 1, "c": 1}
    assert (host.runs, host.replays, host.step_executions) == (2, 1, 3)


def test_operation_ids_follow_call_order_within_the_branch(host: InlineHost, kind: Kind) -> None:
    class Three(BranchActor):
        async def run(self, ctx: Any, item: Any) -> None:
            await ctx.step("fetch", lambda: 1)
            await ctx.wait("cool", seconds=0)
            await ctx.step("store", lambda: 2)

    host.start(kind(Three))
    host.run_until_idle()

    assert ops(host) == [
        ("1", OpKind.STEP, "fetch", OpStatus.SUCCEEDED),
        ("2", OpKind.WAIT, "cool", OpStatus.SUCCEEDED),
        ("3", OpKind.STEP, "store", OpStatus.SUCCEEDED),
    ]


def test_step_success_is_checkpointed_synchronously_before_step_returns(
    host: InlineHost, kind: Kind
) -> None:
    seen: list[list[Any]] = []

    class Observe(BranchActor):
        async def run(self, ctx: Any, item: Any) -> None:
            await ctx.step("one", lambda: "v")
            seen.append(ops(host))

    host.start(kind(Observe))
    host.run_until_idle()

    assert seen == [[("1", OpKind.STEP, "one", OpStatus.SUCCEEDED)]]


def test_logged_step_failure_reraises_with_its_type_without_calling_fn(
    host: InlineHost, calls: Counter[str], kind: Kind
) -> None:
    caught: list[BaseException] = []

    def boom() -> None:
        calls["boom"] += 1
        raise KeyError("missing")

    class Catches(BranchActor):
        async def run(self, ctx: Any, item: Any) -> str:
            try:
                await ctx.step("boom", boom)
            except KeyError as exc:
                caught.append(exc)
            await ctx.wait("pause", seconds=1)
            return "done"

    host.start(kind(Catches))
    host.run_until_idle()
    host.advance(1)

    assert outcome_of(host).result == "done"
    assert calls["boom"] == 1
    assert [type(e) for e in caught] == [KeyError, KeyError]
    assert caught[1].args == ("missing",)


class NeedsTwoArgsError(Exception):
    """Pickles, but cannot be unpickled: its __init__ wants two arguments."""

    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a}/{b}")


def test_logged_failure_that_cannot_be_loaded_reraises_as_step_failed_error(
    host: InlineHost, kind: Kind
) -> None:
    caught: list[BaseException] = []

    def boom() -> None:
        raise NeedsTwoArgsError("x", "y")

    class Catches(BranchActor):
        async def run(self, ctx: Any, item: Any) -> None:
            try:
                await ctx.step("boom", boom)
            except Exception as exc:
                caught.append(exc)
            await ctx.wait("pause", seconds=1)

    host.start(kind(Catches))
    host.run_until_idle()
    host.advance(1)

    replayed = caught[1]
    assert isinstance(replayed, StepFailedError)
    assert replayed.type_name.endswith("NeedsTwoArgsError")
    assert "x/y" in str(replayed)
    assert "Traceback" in replayed.remote_traceback


def test_an_exception_that_cannot_be_serialized_is_kept_as_its_text(host: InlineHost) -> None:
    error = RuntimeError("holds a lock")
    error.lock = threading.Lock()  # type: ignore[attr-defined]

    decoded = decode_error(encode_error(error, host.serialize), host.deserialize)

    assert isinstance(decoded, StepFailedError)
    assert decoded.type_name == "builtins.RuntimeError"
    assert "holds a lock" in str(decoded)


def test_nondeterminism_error_names_the_logged_and_the_called_operation(
    host: InlineHost, kind: Kind
) -> None:
    names = ["fetch"]

    class Drifts(BranchActor):
        async def run(self, ctx: Any, item: Any) -> None:
            await ctx.step(names[0], lambda: 1)
            await ctx.wait("pause", seconds=1)

    host.start(kind(Drifts))
    host.run_until_idle()
    names[0] = "download"  # the code changed while the branch was suspended
    host.advance(1)

    error = outcome_of(host).error
    assert isinstance(error, NonDeterminismError)
    assert (error.op_id, error.expected, error.found) == ("1", "step 'fetch'", "step 'download'")
    assert "step 'fetch'" in str(error) and "step 'download'" in str(error)


def test_nondeterminism_error_names_a_different_kind_at_the_same_op_id(
    host: InlineHost, kind: Kind
) -> None:
    first = [True]

    class Drifts(BranchActor):
        async def run(self, ctx: Any, item: Any) -> None:
            if first[0]:
                await ctx.wait("x", seconds=1)
            else:
                await ctx.step("x", lambda: 1)

    host.start(kind(Drifts))
    host.run_until_idle()
    first[0] = False
    host.advance(1)

    error = outcome_of(host).error
    assert isinstance(error, NonDeterminismError)
    assert (error.expected, error.found) == ("wait 'x'", "step 'x'")


def test_crash_before_a_steps_checkpoint_reruns_it_but_never_an_acknowledged_one(
    host: InlineHost, calls: Counter[str], kind: Kind
) -> None:
    def charge() -> str:
        calls["charge"] += 1
        if calls["charge"] == 1:
            host.store.fail_next(OSError("disk gone"))  # the next write is this step's result
        return "charged"

    class Order(BranchActor):
        async def run(self, ctx: Any, item: Any) -> str:
            reserved: str = await ctx.step("reserve", counted(calls, "reserve", "reserved"))
            return reserved + "+" + await ctx.step("charge", charge)

    host.start(kind(Order))
    host.run_until_idle()
    assert isinstance(host.aborted["branch"], CheckpointError)
    assert ops(host) == [("1", OpKind.STEP, "reserve", OpStatus.SUCCEEDED)]

    outcome = host.replay("branch")

    assert outcome.result == "reserved+charged"
    assert calls == {"reserve": 1, "charge": 2}


def test_a_branch_that_already_ended_is_not_run_again(
    host: InlineHost, calls: Counter[str], kind: Kind
) -> None:
    class Once(BranchActor):
        async def run(self, ctx: Any, item: Any) -> Any:
            return await ctx.step("only", counted(calls, "only", 42))

    host.start(kind(Once))
    host.run_until_idle()
    outcome = host.replay("branch")

    assert (outcome.status, outcome.result, outcome.step_executions) == (
        BranchStatus.SUCCEEDED, 42, 0,
    )
    assert calls["only"] == 1


def test_replays_count_only_runs_that_start_from_a_non_empty_log(
    host: InlineHost, kind: Kind
) -> None:
    class Waits(BranchActor):
        async def run(self, ctx: Any, item: Any) -> None:
            await ctx.wait("pause", seconds=1)

    host.start(kind(Waits))
    host.run_until_idle()
    assert (outcome_of(host).replayed, host.replays) == (False, 0)
    host.advance(1)
    assert (outcome_of(host).replayed, host.replays) == (True, 1)


def test_an_operation_inside_a_step_is_refused(host: InlineHost, kind: Kind) -> None:
    class Nests(BranchActor):
        async def run(self, ctx: Any, item: Any) -> None:
            await ctx.step("outer", lambda: ctx.step("inner", lambda: 1))

    host.start(kind(Nests))
    host.run_until_idle()

    error = outcome_of(host).error
    assert isinstance(error, RuntimeError)
    assert "inside 'outer'" in str(error)


def test_run_that_swallows_the_suspension_still_ends_suspended(
    host: InlineHost, kind: Kind
) -> None:
    class Swallows(BranchActor):
        async def run(self, ctx: Any, item: Any) -> str:
            with contextlib.suppress(BaseException):  # the misuse under test
                await ctx.wait("pause", seconds=5)
            return "too early"

    host.start(kind(Swallows))
    host.run_until_idle()

    assert outcome_of(host).status is BranchStatus.SUSPENDED
    assert host.store.read_log("branch").branch.status is BranchStatus.SUSPENDED  # type: ignore[union-attr]


# -- retries ---------------------------------------------------------------------------------


def test_retry_backs_off_as_suspensions_and_succeeds_on_the_third_attempt(
    host: InlineHost, calls: Counter[str], kind: Kind
) -> None:
    def flaky() -> str:
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise TimeoutError(f"attempt {calls['flaky']}")
        return "ok"

    class Fetch(BranchActor):
        async def run(self, ctx: Any, item: Any) -> str:
            await ctx.step("prepare", counted(calls, "prepare"))
            return await ctx.step("fetch", flaky, retry=Retry(attempts=3, backoff=2.0, initial=1.0))

    host.start(kind(Fetch))
    host.run_until_idle()
    host.advance(0.5)  # the first backoff is 1 s: nothing runs yet
    assert calls["flaky"] == 1
    host.advance(0.5)
    host.advance(2.0)

    assert outcome_of(host).result == "ok"
    assert calls == {"prepare": 1, "flaky": 3}
    assert [(s.status, s.attempt, s.due_at) for s in host.suspensions] == [
        (OpStatus.RETRYING, 1, START + 1.0),
        (OpStatus.RETRYING, 2, START + 1.0 + 2.0),
    ]
    fetch = host.store.read_log("branch").by_op_id()["2"]
    assert (fetch.status, fetch.attempt) == (OpStatus.SUCCEEDED, 3)


def test_retry_exhausted_fails_the_step_with_the_last_error(
    host: InlineHost, calls: Counter[str], kind: Kind
) -> None:
    def always() -> None:
        calls["always"] += 1
        raise TimeoutError(f"attempt {calls['always']}")

    class Fetch(BranchActor):
        async def run(self, ctx: Any, item: Any) -> None:
            await ctx.step("fetch", always, retry=Retry(attempts=2, initial=1.0))

    host.start(kind(Fetch))
    host.run_until_idle()
    host.advance(1)

    error = outcome_of(host).error
    assert isinstance(error, TimeoutError)
    assert error.args == ("attempt 2",)
    fetch = host.store.read_log("branch").by_op_id()["1"]
    assert (fetch.status, fetch.attempt) == (OpStatus.FAILED, 2)
    assert calls["always"] == 2


def test_retry_on_fails_at_once_for_an_exception_it_does_not_list(
    host: InlineHost, calls: Counter[str], kind: Kind
) -> None:
    def wrong() -> None:
        calls["wrong"] += 1
        raise ValueError("bad input")

    class Fetch(BranchActor):
        async def run(self, ctx: Any, item: Any) -> None:
            await ctx.step("fetch", wrong, retry=Retry(attempts=5, retry_on=(TimeoutError,)))

    host.start(kind(Fetch))
    host.run_until_idle()

    assert isinstance(outcome_of(host).error, ValueError)
    assert (calls["wrong"], host.suspensions) == (1, [])


def test_replay_of_a_retry_before_its_due_time_suspends_again_until_then(
    host: InlineHost, calls: Counter[str], kind: Kind
) -> None:
    def flaky() -> str:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise TimeoutError
        return "ok"

    class Fetch(BranchActor):
        async def run(self, ctx: Any, item: Any) -> str:
            return await ctx.step("fetch", flaky, retry=Retry(attempts=2, initial=10.0))

    host.start(kind(Fetch))
    host.run_until_idle()
    host.replay("branch")  # a restarted worker replays too early

    assert calls["flaky"] == 1
    assert [s.due_at for s in host.suspensions] == [START + 10.0, START + 10.0]
    host.advance(10)
    assert outcome_of(host).result == "ok"


# -- wait ------------------------------------------------------------------------------------


def test_wait_suspends_then_completes_after_its_due_time(host: InlineHost, kind: Kind) -> None:
    class Cools(BranchActor):
        async def run(self, ctx: Any, item: Any) -> str:
            await ctx.wait("cool", seconds=30)
            return "cooled"

    host.start(kind(Cools))
    host.run_until_idle()
    assert outcome_of(host).status is BranchStatus.SUSPENDED
    assert ops(host) == [("1", OpKind.WAIT, "cool", OpStatus.SUSPENDED)]
    assert host.store.read_log("branch").operations[0].due_at == START + 30

    host.advance(29)
    assert outcome_of(host).status is BranchStatus.SUSPENDED
    host.advance(1)

    assert outcome_of(host).result == "cooled"
    assert ops(host) == [("1", OpKind.WAIT, "cool", OpStatus.SUCCEEDED)]


def test_replay_of_a_wait_before_its_due_time_keeps_the_first_due_time(
    host: InlineHost, kind: Kind
) -> None:
    class Cools(BranchActor):
        async def run(self, ctx: Any, item: Any) -> None:
            await ctx.wait("cool", seconds=30)

    host.start(kind(Cools))
    host.run_until_idle()
    host.clock.advance(10)
    host.replay("branch")

    assert [s.due_at for s in host.suspensions] == [START + 30, START + 30]


# -- wait_for_condition ----------------------------------------------------------------------


def test_wait_for_condition_keeps_its_state_across_polls(host: InlineHost, kind: Kind) -> None:
    seen: list[int] = []

    def grown(state: int) -> ConditionResult[int]:
        seen.append(state)
        return ConditionResult(state + 1 >= 3, state + 1)

    class Polls(BranchActor):
        async def run(self, ctx: Any, item: Any) -> int:
            return await ctx.wait_for_condition("grown", grown, initial_state=0, interval=5.0)

    host.start(kind(Polls))
    host.run_until_idle()
    host.advance(5)
    host.advance(5)

    assert outcome_of(host).result == 3
    assert seen == [0, 1, 2]
    assert [(s.attempt, s.due_at, pickle.loads(s.payload or b"")) for s in host.suspensions] == [
        (1, START + 5, 1),
        (2, START + 10, 2),
    ]


def test_wait_for_condition_times_out_after_max_attempts(host: InlineHost, kind: Kind) -> None:
    polls: list[Any] = []

    def never(state: Any) -> tuple[bool, Any]:
        polls.append(state)
        return False, state

    class Polls(BranchActor):
        async def run(self, ctx: Any, item: Any) -> None:
            await ctx.wait_for_condition("never", never, initial_state="s", interval=1.0,
                                         max_attempts=2)

    host.start(kind(Polls))
    host.run_until_idle()
    host.advance(1)

    error = outcome_of(host).error
    assert isinstance(error, ConditionTimeoutError)
    assert (error.attempts, error.state) == (2, "s")
    assert len(polls) == 2
    assert ops(host) == [("1", OpKind.CONDITION, "never", OpStatus.FAILED)]


# -- map and parallel ------------------------------------------------------------------------


class Square(BranchActor):
    async def run(self, ctx: Any, item: int) -> int:
        return await ctx.step("square", lambda: item * item)


class FailsOnOdd(BranchActor):
    async def run(self, ctx: Any, item: int) -> int:
        if item % 2:
            raise ValueError(f"odd {item}")
        return item


def test_map_starts_children_with_deterministic_ids(host: InlineHost, kind: Kind) -> None:
    class Parent(BranchActor):
        async def run(self, ctx: Any, item: Any) -> BatchResult:
            await ctx.step("prepare", lambda: None)
            return await ctx.map("squares", kind(Square), [1, 2, 3])

    host.start(kind(Parent), branch_id="p")
    host.run_until_idle()

    children = host.store.read_branches("execution")
    assert [(b.branch_id, b.parent_branch_id, b.parent_op_id, b.index)
            for b in children if b.parent_branch_id] == [
        ("p/2/0", "p", "2", 0), ("p/2/1", "p", "2", 1), ("p/2/2", "p", "2", 2),
    ]


def test_map_returns_the_batch_result_when_its_parent_is_replayed(
    host: InlineHost, calls: Counter[str], kind: Kind
) -> None:
    class Parent(BranchActor):
        async def run(self, ctx: Any, item: Any) -> list[Any]:
            await ctx.step("prepare", counted(calls, "prepare"))
            return (await ctx.map("squares", kind(Square), [1, 2, 3])).values()

    host.start(kind(Parent), branch_id="p")
    host.run_until_idle()

    assert outcome_of(host, "p").result == [1, 4, 9]
    assert outcome_of(host, "p").replayed
    assert calls["prepare"] == 1
    assert ops(host, "p")[1] == ("2", OpKind.CHILDREN, "squares", OpStatus.SUCCEEDED)


def test_map_is_fail_fast_by_default(host: InlineHost, kind: Kind) -> None:
    class Parent(BranchActor):
        async def run(self, ctx: Any, item: Any) -> BatchResult:
            return await ctx.map("odd", kind(FailsOnOdd), [2, 3, 4], max_concurrency=1)

    host.start(kind(Parent), branch_id="p")
    host.run_until_idle()

    batch = outcome_of(host, "p").result
    assert batch.status is BatchStatus.FAILURE_TOLERANCE_EXCEEDED
    assert batch.statuses == (BranchStatus.SUCCEEDED, BranchStatus.FAILED, BranchStatus.PENDING)
    assert isinstance(batch.errors[1], ValueError)
    assert "p/1/2" not in host.outcomes  # never scheduled


def test_map_with_all_completed_runs_every_child(host: InlineHost, kind: Kind) -> None:
    class Parent(BranchActor):
        async def run(self, ctx: Any, item: Any) -> BatchResult:
            return await ctx.map("odd", kind(FailsOnOdd), [1, 2, 3],
                                   completion=Completion.all_completed())

    host.start(kind(Parent), branch_id="p")
    host.run_until_idle()

    batch = outcome_of(host, "p").result
    assert (batch.status, batch.results, batch.failed) == (
        BatchStatus.ALL_COMPLETED, (None, 2, None), 2,
    )


def test_map_runs_at_most_max_concurrency_children_at_once(host: InlineHost, kind: Kind) -> None:
    class Sleeper(BranchActor):
        async def run(self, ctx: Any, item: int) -> int:
            await ctx.wait("nap", seconds=1)
            return item

    class Parent(BranchActor):
        async def run(self, ctx: Any, item: Any) -> BatchResult:
            return await ctx.map("naps", kind(Sleeper), range(5), max_concurrency=2)

    host.start(kind(Parent), branch_id="p")
    host.run_until_idle()
    assert sorted(b for b in host.outcomes if b != "p") == ["p/1/0", "p/1/1"]

    for _ in range(3):
        host.advance(1)

    assert outcome_of(host, "p").result.values() == [0, 1, 2, 3, 4]


def test_parallel_takes_classes_and_class_input_pairs(host: InlineHost, kind: Kind) -> None:
    class Constant(BranchActor):
        async def run(self, ctx: Any, item: Any) -> str:
            return f"constant {item}"

    class Parent(BranchActor):
        async def run(self, ctx: Any, item: Any) -> list[Any]:
            return (await ctx.parallel("both", [kind(Constant), (kind(Square), 7)])).values()

    host.start(kind(Parent), branch_id="p")
    host.run_until_idle()

    assert outcome_of(host, "p").result == ["constant None", 49]


def test_map_refuses_a_class_that_is_not_a_branch_actor(host: InlineHost, kind: Kind) -> None:
    class Parent(BranchActor):
        async def run(self, ctx: Any, item: Any) -> None:
            await ctx.map("bad", dict, [1])  # type: ignore[arg-type]

    host.start(kind(Parent))
    host.run_until_idle()

    error = outcome_of(host).error
    assert isinstance(error, TypeError)
    assert "not a BranchActor subclass" in str(error)


def test_map_of_no_items_completes_without_suspending(host: InlineHost, kind: Kind) -> None:
    class Parent(BranchActor):
        async def run(self, ctx: Any, item: Any) -> BatchResult:
            return await ctx.map("none", kind(Square), [])

    host.start(kind(Parent))
    host.run_until_idle()

    assert outcome_of(host).result.status is BatchStatus.ALL_COMPLETED
    assert host.suspensions == []


# -- resumed in place --------------------------------------------------------------------------


def test_resumed_in_place_a_wait_goes_on_without_a_replay(kind: Kind) -> None:
    host = InlineHost(in_place=True)

    class Cools(BranchActor):
        async def run(self, ctx: Any, item: Any) -> str:
            await ctx.wait("cool", seconds=30)
            return "cooled"

    host.start(kind(Cools))
    host.run_until_idle()

    assert outcome_of(host).result == "cooled"
    assert (host.runs, host.replays) == (1, 0)
    assert ops(host) == [("1", OpKind.WAIT, "cool", OpStatus.SUCCEEDED)]


def test_resumed_in_place_a_retry_runs_its_next_attempt(calls: Counter[str], kind: Kind) -> None:
    host = InlineHost(in_place=True)

    def flaky() -> str:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise TimeoutError
        return "ok"

    class Fetch(BranchActor):
        async def run(self, ctx: Any, item: Any) -> str:
            return await ctx.step("fetch", flaky, retry=Retry(attempts=2))

    host.start(kind(Fetch))
    host.run_until_idle()

    assert (outcome_of(host).result, host.runs, calls["flaky"]) == ("ok", 1, 2)


def test_resumed_in_place_a_map_returns_its_batch_result(kind: Kind) -> None:
    host = InlineHost(in_place=True)

    class Parent(BranchActor):
        async def run(self, ctx: Any, item: Any) -> list[Any]:
            return (await ctx.map("squares", kind(Square), [2, 3])).values()

    host.start(kind(Parent), branch_id="p")
    host.run_until_idle()

    assert outcome_of(host, "p").result == [4, 9]
    assert not outcome_of(host, "p").replayed


# -- tracing and the driver --------------------------------------------------------------------


def test_events_from_user_code_in_a_step_carry_execution_branch_and_op(
    host: InlineHost, kind: Kind
) -> None:
    class Logs(BranchActor):
        async def run(self, ctx: Any, item: Any) -> None:
            await ctx.step("first", lambda: None)
            await ctx.step("second", lambda: structlog.get_logger().info("inside"))

    with structlog.testing.capture_logs(processors=[merge_contextvars]) as events:
        host.start(kind(Logs), execution_id="e-1", branch_id="b-1")
        host.run_until_idle()

    inside = next(e for e in events if e["event"] == "inside")
    assert (inside["execution_id"], inside["branch_id"], inside["op_id"]) == ("e-1", "b-1", "2")


def test_run_branch_refuses_a_log_of_another_branch(host: InlineHost) -> None:
    spec = BranchSpec("e", "a", Square, 1)
    with pytest.raises(ValueError, match="cannot run 'a'"):
        run_branch(spec, BranchLog("b", None, ()), host)
