"""Branch classes the execution tests run (importable by worker processes).

Side effects are appended, one line each, to a file named in the item, so a
test can count exactly which step functions ran, in which process, when.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

from actors import BranchActor, BranchContext, Retry


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


class Squares(BranchActor):
    """Three side-effect-counted steps; result = i² + (i+1)² + (i+2)²."""

    def run(self, ctx: BranchContext, item: Any) -> int:
        i, path, pause = item
        a = ctx.step("a", square_step, path, ctx.branch_id, "a", i, pause)
        b = ctx.step("b", square_step, path, ctx.branch_id, "b", i + 1, pause)
        c = ctx.step("c", square_step, path, ctx.branch_id, "c", i + 2, pause)
        return a + b + c


def expected_squares(i: int) -> int:
    return i * i + (i + 1) ** 2 + (i + 2) ** 2


class FailsOn(BranchActor):
    """Records that it ran; fails when ``i == bad``."""

    def run(self, ctx: BranchContext, item: Any) -> int:
        i, bad, path = item

        def work() -> int:
            record(path, ctx.branch_id, "ran", i)
            if i == bad:
                raise ValueError(f"item {i} is bad")
            return i

        return ctx.step("work", work)


class Interval(BranchActor):
    """Records its step's start and end (and pid): for concurrency checks."""

    def run(self, ctx: BranchContext, item: Any) -> int:
        i, path, seconds = item

        def hold() -> int:
            start = time.time()
            time.sleep(seconds)
            record(path, ctx.branch_id, os.getpid(), start, time.time())
            return i

        return ctx.step("hold", hold)


class Burn(BranchActor):
    """CPU-bound: hashes for ``rounds`` rounds; records pid and interval."""

    def run(self, ctx: BranchContext, item: Any) -> str:
        rounds, path = item

        def burn() -> str:
            start = time.time()
            digest = b"x"
            for _ in range(rounds):
                digest = hashlib.sha256(digest).digest()
            record(path, ctx.branch_id, os.getpid(), start, time.time())
            return digest.hex()

        return ctx.step("burn", burn)


class Waits(BranchActor):
    """Waits ``seconds`` (a suspension), then returns its item."""

    def run(self, ctx: BranchContext, item: Any) -> Any:
        value, seconds = item
        ctx.wait("pause", seconds=seconds)
        return value


class Flaky(BranchActor):
    """A step that fails on its first ``failures`` attempts, counted in a file."""

    def run(self, ctx: BranchContext, item: Any) -> int:
        failures, path = item

        def attempt() -> int:
            record(path, ctx.branch_id, "attempt")
            if len(effects(path)) <= failures:
                raise ConnectionError("flaky service")
            return len(effects(path))

        return ctx.step("call", attempt, retry=Retry(attempts=5, backoff=2.0, initial=0.05))


class Parent(BranchActor):
    """Fans out to ``Squares`` children and sums their results."""

    def run(self, ctx: BranchContext, item: Any) -> int:
        n, path = item
        children = ctx.map("kids", Squares, [(i, path, 0.0) for i in range(n)], max_concurrency=2)
        return sum(children.values())


class Unpicklable(BranchActor):
    def run(self, ctx: BranchContext, item: Any) -> Any:
        import threading

        return threading.Lock()


class Answer(BranchActor):
    def run(self, ctx: BranchContext, item: Any) -> Any:
        return ("answer", item)


class WaitsThenStamps(BranchActor):
    """Waits, then records (in a step) when it woke; returns that time."""

    def run(self, ctx: BranchContext, item: Any) -> float:
        ctx.wait("pause", seconds=item)
        woke: float = ctx.step("woke", time.time)
        return woke


class WavePart(BranchActor):
    """Waits until an absolute instant shared by the whole wave, then returns."""

    def run(self, ctx: BranchContext, item: Any) -> int:
        index, target = item
        # Reading the clock here is replay-safe: a replay keeps the first logged due time.
        ctx.wait("until", seconds=max(0.0, target - time.time()))
        return int(index)


def publish(path: str, callback_id: str) -> str:
    record(path, callback_id)
    return callback_id


class Approval(BranchActor):
    """Creates a callback, publishes its id (in a step), waits for the outcome."""

    def run(self, ctx: BranchContext, item: Any) -> Any:
        path, timeout = item
        callback = ctx.create_callback("approval", timeout=timeout)
        ctx.step("publish", publish, path, callback.id)
        return ("approved", ctx.wait_for_callback(callback))


class SlowChild(BranchActor):
    def run(self, ctx: BranchContext, item: Any) -> float:
        seconds: float = ctx.step("work", _pause, item)
        return seconds


def _pause(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


class WaitsOnOneChild(BranchActor):
    def run(self, ctx: BranchContext, item: Any) -> float:
        return float(sum(ctx.map("child", SlowChild, [item]).values()))


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
