"""Ledger branches of both kinds.

``runtime.ledger.LedgerBranch`` is sync (the chaos campaign runs it);
``AsyncLedgerBranch`` is its async twin: the same steps, waits and saves, the same
ledger lines written by the same helpers, each ``ctx`` operation awaited. A test
parametrized over ``kind`` runs ``ledger_branch(kind)``.
"""

from __future__ import annotations

import asyncio
import os

from actors import AsyncBranchContext, BranchActor, Retry
from runtime.ledger import LedgerBranch, LedgerItem, ledger_step, record

from branch_kinds import Kind


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
    """The ledger branch of ``kind``: the sync one of ``runtime.ledger``, or its async twin."""
    return LedgerBranch if kind is Kind.SYNC else AsyncLedgerBranch


__all__ = ["AsyncLedgerBranch", "ledger_branch"]
