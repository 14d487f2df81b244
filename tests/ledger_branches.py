"""Ledger branches of both kinds, and ones that suspend on each kind of durable timer.

``runtime.tools.ledger.LedgerBranch`` is sync (the chaos campaign runs it);
``AsyncLedgerBranch`` is its async twin: the same steps, waits and saves, the same
ledger lines written by the same helpers, each ``ctx`` operation awaited. A test
parametrized over ``kind`` runs ``ledger_branch(kind)``.

The timer branches run a ledger step, suspend on one timer of ``TimerItem.seconds``
(a retry backoff, a condition's poll interval, a callback's timeout), then run a
second ledger step: long enough a timer for every branch to be evicted on it.
They are written once, async, with sync twins (``@both_kinds``).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any

from actors import AsyncBranchContext, BranchActor, Retry
from actors.errors import CallbackTimeoutError
from runtime.tools.ledger import LedgerBranch, LedgerItem, ledger_step, record

from branch_kinds import Kind, both_kinds


class AsyncLedgerBranch(BranchActor):
    """``LedgerBranch`` as an async branch: every effect in the ledger, every operation awaited."""

    async def run(self, ctx: AsyncBranchContext, item: LedgerItem) -> int:
        total = 0
        for s in range(item.steps):
            flaky = bool(item.flaky_every) and (item.index + s) % item.flaky_every == 0
            total += await ctx.step(f"s{s}", ledger_step, item.path, ctx.branch_id, f"s{s}",
                                    item.index + s, item.pause, flaky,
                                    retry=Retry(attempts=3, initial=0.05) if flaky else None)
            record(item.path, "ack", ctx.branch_id, f"s{s}", os.getpid())
            if item.wait:
                await ctx.wait(f"w{s}", seconds=item.wait)
        if item.save:
            ref = await ctx.save(bytes([item.index % 256]) * item.save)
            total += len(await asyncio.to_thread(ref.get))  # a blob read: off the loop
        return total


def ledger_branch(kind: Kind) -> type[BranchActor]:
    """The ledger branch of ``kind``: ``runtime.tools.ledger``'s sync one, or its async twin."""
    return LedgerBranch if kind is Kind.SYNC else AsyncLedgerBranch


@dataclass(frozen=True)
class TimerItem:
    """One timer branch: its ledger, and how long its timer runs."""

    index: int
    path: str
    seconds: float


async def _ledger(ctx: AsyncBranchContext, item: TimerItem, step: str, value: int,
                  retry: Retry | None = None) -> int:
    """A ledger step, acknowledged in the ledger once ``ctx.step`` returned."""
    result: int = await ctx.step(step, ledger_step, item.path, ctx.branch_id, step, value, 0.0,
                                 retry is not None, retry=retry)
    record(item.path, "ack", ctx.branch_id, step, os.getpid())
    return result


def timer_total(item: TimerItem) -> int:
    """What every timer branch returns for ``item``: its two ledger steps' squares."""
    return item.index ** 2 + (item.index + 1) ** 2


@both_kinds
class RetriedAfterBackoff(BranchActor):
    """Its first step fails once and is retried after a backoff of ``seconds``."""

    async def run(self, ctx: AsyncBranchContext, item: TimerItem) -> int:
        first = await _ledger(ctx, item, "s0", item.index,
                              retry=Retry(attempts=2, initial=item.seconds))
        return first + await _ledger(ctx, item, "s1", item.index + 1)


def second_look(looks: int) -> tuple[bool, int]:
    """A condition that holds at its second check."""
    return looks >= 1, looks + 1


@both_kinds
class PolledCondition(BranchActor):
    """Between its steps, a condition polled every ``seconds`` that holds at the second poll."""

    async def run(self, ctx: AsyncBranchContext, item: TimerItem) -> int:
        first = await _ledger(ctx, item, "s0", item.index)
        looks = await ctx.wait_for_condition("ready", second_look, initial_state=0,
                                             interval=item.seconds, max_attempts=3)
        assert looks == 2, looks
        return first + await _ledger(ctx, item, "s1", item.index + 1)


@both_kinds
class CallbackTimedOut(BranchActor):
    """Between its steps, a callback nobody completes: it times out after ``seconds``."""

    async def run(self, ctx: AsyncBranchContext, item: TimerItem) -> Any:
        first = await _ledger(ctx, item, "s0", item.index)
        callback = await ctx.create_callback("reply", timeout=item.seconds)
        try:
            answer = await ctx.wait_for_callback(callback)
        except CallbackTimeoutError:
            return first + await _ledger(ctx, item, "s1", item.index + 1)
        return ("completed", answer)  # not what these tests expect: nobody completes it


@both_kinds
class CallbackAnswered(BranchActor):
    """Between its steps, a callback (published in the ledger file ``path``.ids) completed
    from outside with a number, which it returns beside its steps' squares."""

    async def run(self, ctx: AsyncBranchContext, item: TimerItem) -> Any:
        first = await _ledger(ctx, item, "s0", item.index)
        callback = await ctx.create_callback("reply", timeout=item.seconds)
        record(f"{item.path}.ids", callback.id)  # published again by a replay: same id
        answer = await ctx.wait_for_callback(callback)
        return first + await _ledger(ctx, item, "s1", item.index + 1), answer


__all__ = ["AsyncLedgerBranch", "CallbackAnswered", "CallbackTimedOut", "PolledCondition",
           "RetriedAfterBackoff", "TimerItem", "ledger_branch", "second_look", "timer_total"]
