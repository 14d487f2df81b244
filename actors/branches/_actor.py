"""Branches: the user's unit of durable work, and what its context needs from a host.

``BranchActor`` is what users subclass. ``BranchContext`` (``actors.branches``)
gives ``run`` its durable operations; ``run_branch`` (``actors.branches``) drives
one run of a branch over its log. Both reach the outside world only through a
``BranchHost``: a worker in production, ``actors.branches.InlineHost`` in tests.
"""


from __future__ import annotations

import abc
import inspect
from typing import Any


class BranchActor(abc.ABC):
    """A unit of durable work: subclass it and implement ``run(ctx, item)``.

    Every effect belongs in a ``ctx`` operation, because ``run`` is replayed from
    the start after each suspension or crash and must call the same operations
    in the same order each time; logged results are returned without running
    again. A fresh instance runs each replay, so state kept on ``self`` does not
    survive a suspension: keep it in step results.

    Despite the name, a branch is not a pykka actor with a thread of its own: a
    worker actor hosts many branches on a bounded thread pool, and a suspended
    branch holds no thread at all, so a million branches cost a million log rows,
    not a million threads.

    ``run`` may be ``async def``: the branch then runs on its worker's event loop,
    gets an ``AsyncBranchContext`` and awaits every operation; while it is parked
    it is a suspended coroutine, not a parked thread.

        class Resize(BranchActor):
            def run(self, ctx: BranchContext, item: str) -> str:
                raw = ctx.step("download", download, item, retry=Retry(attempts=3))
                ctx.wait("cooldown", seconds=2)
                return ctx.step("resize", resize, raw)

        class Fetch(BranchActor):
            async def run(self, ctx: AsyncBranchContext, url: str) -> str:
                page = await ctx.step("get", http_get, url, timeout=30)
                await ctx.wait("cool", seconds=1)
                return page
    """

    @abc.abstractmethod
    def run(self, ctx: Any, item: Any) -> Any:
        """Do the branch's work through ``ctx``; the return value is the branch's result.

        ``ctx`` is a ``BranchContext``, or an ``AsyncBranchContext`` for ``async def run``.
        """


def check_branch_class(branch_cls: object) -> type[BranchActor]:
    """``branch_cls`` if it can run as a branch, else a ``TypeError`` that says why."""
    if not (isinstance(branch_cls, type) and issubclass(branch_cls, BranchActor)):
        raise TypeError(
            f"{branch_cls!r} is not a BranchActor subclass; define "
            "`class MyBranch(BranchActor)` with a run(self, ctx, item) method"
        )
    if getattr(branch_cls, "__abstractmethods__", None):
        raise TypeError(f"{branch_cls.__qualname__} does not implement run(self, ctx, item)")
    return branch_cls


def is_async_branch(branch_cls: type[BranchActor]) -> bool:
    """Whether ``branch_cls.run`` is ``async def``: the branch runs on an event loop."""
    return inspect.iscoroutinefunction(branch_cls.run)
