"""Branch classes the execution tests run (importable by worker processes).

Side effects are appended, one line each, to a file named in the item, so a
test can count exactly which step functions ran, in which process, when.
Each class is written once, as an async branch, and has a sync twin beside it
(``@both_kinds``, ``tests/branch_kinds.py``): a test runs ``kind(Squares)``.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

from actors import AsyncBranchContext, BranchActor, BranchContext, Retry

from branch_kinds import both_kinds, same_kind


def record(path: str, *fields: object) -> None:
    line = " ".join(str(f) for f in fields) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def effects(path: str | Path) -> list[list[str]]:
    target = Path(path)
    if not target.exists():
        return []
    return [line.split() for line in target.read_text().splitlines() if line.strip()]


def square_step(path: str, branch: str, name: str, value: int, pause: float = 0.0) -> int:
    record(path, branch, name, os.getpid(), time.time())
    if pause:
        time.sleep(pause)  # a slow side effect, e.g. a remote call
    return value * value


@both_kinds
class Squares(BranchActor):
    """Three side-effect-counted steps; result = i² + (i+1)² + (i+2)²."""

    async def run(self, ctx: AsyncBranchContext, item: Any) -> int:
        i, path, pause = item
        a = await ctx.step("a", square_step, path, ctx.branch_id, "a", i, pause)
        b = await ctx.step("b", square_step, path, ctx.branch_id, "b", i + 1, pause)
        c = await ctx.step("c", square_step, path, ctx.branch_id, "c", i + 2, pause)
        return a + b + c


def expected_squares(i: int) -> int:
    return i * i + (i + 1) ** 2 + (i + 2) ** 2


@both_kinds
class FailsOn(BranchActor):
    """Records that it ran; fails when ``i == bad``."""

    async def run(self, ctx: AsyncBranchContext, item: Any) -> int:
        i, bad, path = item

        def work() -> int:
            record(path, ctx.branch_id, "ran", i)
            if i == bad:
                raise ValueError(f"item {i} is bad")
            return i

        return await ctx.step("work", work)


@both_kinds
class Interval(BranchActor):
    """Records its step's start and end (and pid): for concurrency checks."""

    async def run(self, ctx: AsyncBranchContext, item: Any) -> int:
        i, path, seconds = item

        def hold() -> int:
            start = time.time()
            time.sleep(seconds)
            record(path, ctx.branch_id, os.getpid(), start, time.time())
            return i

        return await ctx.step("hold", hold)


@both_kinds
class Burn(BranchActor):
    """CPU-bound: hashes for ``rounds`` rounds; records pid and interval."""

    async def run(self, ctx: AsyncBranchContext, item: Any) -> str:
        rounds, path = item

        def burn() -> str:
            start = time.time()
            digest = b"x"
            for _ in range(rounds):
                digest = hashlib.sha256(digest).digest()
            record(path, ctx.branch_id, os.getpid(), start, time.time())
            return digest.hex()

        return await ctx.step("burn", burn)


@both_kinds
class Waits(BranchActor):
    """Waits ``seconds`` (a suspension), then returns its item."""

    async def run(self, ctx: AsyncBranchContext, item: Any) -> Any:
        value, seconds = item
        await ctx.wait("pause", seconds=seconds)
        return value


@both_kinds
class Flaky(BranchActor):
    """A step that fails on its first ``failures`` attempts, counted in a file."""

    async def run(self, ctx: AsyncBranchContext, item: Any) -> int:
        failures, path = item

        def attempt() -> int:
            record(path, ctx.branch_id, "attempt")
            if len(effects(path)) <= failures:
                raise ConnectionError("flaky service")
            return len(effects(path))

        # Each back-off outlasts its suspension's write, even to a server on a loaded
        # machine: it is written (and the branch evicted) before it comes due.
        return await ctx.step("call", attempt,  # type: ignore[no-any-return]
                              retry=Retry(attempts=5, backoff=2.0, initial=0.3))


@both_kinds
class Parent(BranchActor):
    """Fans out to ``Squares`` children and sums their results."""

    async def run(self, ctx: AsyncBranchContext, item: Any) -> int:
        n, path = item
        children = await ctx.map("kids", same_kind(self, Squares),
                                 [(i, path, 0.0) for i in range(n)], max_concurrency=2)
        return sum(children.values())


@both_kinds
class Unpicklable(BranchActor):
    async def run(self, ctx: AsyncBranchContext, item: Any) -> Any:
        import threading

        return threading.Lock()


@both_kinds
class Answer(BranchActor):
    async def run(self, ctx: AsyncBranchContext, item: Any) -> Any:
        return ("answer", item)


@both_kinds
class WaitsThenStamps(BranchActor):
    """Waits, then records (in a step) when it woke; returns that time."""

    async def run(self, ctx: AsyncBranchContext, item: Any) -> float:
        await ctx.wait("pause", seconds=item)
        woke: float = await ctx.step("woke", time.time)
        return woke


@both_kinds
class WavePart(BranchActor):
    """Waits until an absolute instant shared by the whole wave, then returns."""

    async def run(self, ctx: AsyncBranchContext, item: Any) -> int:
        index, target = item
        # Reading the clock here is replay-safe: a replay keeps the first logged due time.
        await ctx.wait("until", seconds=max(0.0, target - time.time()))
        return int(index)


def publish(path: str, callback_id: str) -> str:
    record(path, callback_id)
    return callback_id


@both_kinds
class Approval(BranchActor):
    """Creates a callback, publishes its id (in a step), waits for the outcome."""

    async def run(self, ctx: AsyncBranchContext, item: Any) -> Any:
        path, timeout = item
        callback = await ctx.create_callback("approval", timeout=timeout)
        await ctx.step("publish", publish, path, callback.id)
        return ("approved", await ctx.wait_for_callback(callback))


@both_kinds
class SlowChild(BranchActor):
    async def run(self, ctx: AsyncBranchContext, item: Any) -> float:
        seconds: float = await ctx.step("work", _pause, item)
        return seconds


def _pause(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@both_kinds
class WaitsOnOneChild(BranchActor):
    async def run(self, ctx: AsyncBranchContext, item: Any) -> float:
        batch = await ctx.map("child", same_kind(self, SlowChild), [item])
        return float(sum(batch.values()))


@both_kinds
class WaitsForFile(BranchActor):
    """A step that waits until a file appears (made by the test), up to a deadline."""

    async def run(self, ctx: AsyncBranchContext, item: Any) -> Any:
        from actors_for_tests import wait_for_file

        path, timeout = item
        return await ctx.step("watch", wait_for_file, path, timeout)


def lookup_missing() -> None:
    """Fails two frames down, as real code does: the traceback must show where."""
    catalogue: dict[str, int] = {}
    catalogue["missing"] += 1


def deep() -> None:
    lookup_missing()


class FailsDeep(BranchActor):
    """A step that calls ``deep()``, which raises ``KeyError('missing')``."""

    def run(self, ctx: BranchContext, item: Any) -> None:
        ctx.step("deep", deep)
