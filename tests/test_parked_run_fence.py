"""A run parked in place and superseded meanwhile stops before it runs user code again.

A retry backoff or a condition interval shorter than the deferral delay parks
the run in memory and resumes it in place, inside the same operation. If the
branch was dispatched again meanwhile (the coordinator or the checkpoint
process restarted), the parked copy is stale: it must not run its step again,
or the newer run's acknowledged step would have its body run once more after
its acknowledgement (found by the chaos campaign after a service-process kill).
Pure logic: an inline host that supersedes the run while it is parked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from actors import BranchActor, BranchContext, ConditionResult, Retry
from actors.branches import AsyncBranchContext, BranchSpec, InlineHost, run_branch, run_branch_async
from actors.errors import CheckpointError
from actors.policies import Completion
from actors.records import OperationUpdate, Update


class SupersededWhileParked(InlineHost):
    """Resumes every suspension in place; while the run is parked, a newer run supersedes it."""

    def __init__(self) -> None:
        super().__init__(in_place=True)
        self.superseded = False

    def ensure_current(self) -> None:
        if self.superseded:
            raise CheckpointError("run 1 stops before its next operation: superseded by run 2")

    def suspend(self, op: OperationUpdate) -> bytes | None:
        self.superseded = True  # the coordinator dispatched the branch again meanwhile
        return super().suspend(op)


class AsyncSupersededWhileParked:
    """The same host for an async run."""

    def __init__(self, host: SupersededWhileParked) -> None:
        self._host = host

    def ensure_current(self) -> None:
        self._host.ensure_current()

    async def checkpoint(self, update: Update, *, sync: bool) -> None:
        self._host.checkpoint(update, sync=sync)

    async def suspend(self, op: OperationUpdate) -> bytes | None:
        return self._host.suspend(op)

    async def start_children(self, parent: OperationUpdate, children: Sequence[BranchSpec], *,
                             max_concurrency: int | None, completion: Completion) -> None:
        raise AssertionError("no children here")

    async def call_blocking(self, fn: Callable[[], Any]) -> Any:
        return fn()

    def now(self) -> float:
        return self._host.now()

    def serialize(self, obj: object) -> bytes:
        return self._host.serialize(obj)

    def deserialize(self, data: bytes) -> Any:
        return self._host.deserialize(data)


calls: list[str] = []


def charge() -> str:
    calls.append("charge")
    if len(calls) == 1:
        raise RuntimeError("the first attempt fails")
    return "charged"


def ready(state: Any) -> ConditionResult[Any]:
    calls.append("check")
    return ConditionResult(done=len(calls) > 1, state=state)


class RetriedStep(BranchActor):
    def run(self, ctx: BranchContext, item: Any) -> str:
        return ctx.step("charge", charge, retry=Retry(attempts=3, initial=1.0))


class AsyncRetriedStep(BranchActor):
    async def run(self, ctx: AsyncBranchContext, item: Any) -> str:  # type: ignore[override]
        return await ctx.step("charge", charge, retry=Retry(attempts=3, initial=1.0))


class PolledCondition(BranchActor):
    def run(self, ctx: BranchContext, item: Any) -> Any:
        return ctx.wait_for_condition("ready", ready, initial_state=None, interval=1.0,
                                      max_attempts=5)


@pytest.fixture(autouse=True)
def fresh_calls() -> None:
    calls.clear()


def spec_of(cls: type[BranchActor]) -> BranchSpec:
    return BranchSpec("e", "e/0", cls, None)


def test_a_retry_parked_in_place_does_not_run_its_step_again_once_superseded() -> None:
    host = SupersededWhileParked()
    spec = host.start(RetriedStep, None, branch_id="e/0", execution_id="e")
    with pytest.raises(CheckpointError, match="superseded"):
        run_branch(spec, host.store.read_log("e/0"), host)
    assert calls == ["charge"]


def test_an_async_retry_parked_in_place_does_not_run_its_step_again_once_superseded() -> None:
    host = SupersededWhileParked()
    spec = host.start(AsyncRetriedStep, None, branch_id="e/0", execution_id="e")
    with pytest.raises(CheckpointError, match="superseded"):
        asyncio.run(run_branch_async(spec, host.store.read_log("e/0"),
                                     AsyncSupersededWhileParked(host)))
    assert calls == ["charge"]


def test_a_condition_parked_in_place_does_not_check_again_once_superseded() -> None:
    host = SupersededWhileParked()
    spec = host.start(PolledCondition, None, branch_id="e/0", execution_id="e")
    with pytest.raises(CheckpointError, match="superseded"):
        run_branch(spec, host.store.read_log("e/0"), host)
    assert calls == ["check"]


def test_a_current_run_parked_in_place_goes_on() -> None:
    host = InlineHost(in_place=True)
    host.start(RetriedStep, None, branch_id="e/0", execution_id="e")
    host.run_until_idle()
    assert host.outcomes["e/0"].result == "charged"
    assert calls == ["charge", "charge"]
