"""Branch classes the Ref tests run (importable by worker processes)."""

from __future__ import annotations

from typing import Any

import pykka

from actors import BranchActor, BranchContext, Ref

MEGABYTE = 1 << 20
SAME_MEGABYTE = bytes(range(256)) * (MEGABYTE // 256)  # one value, built alike in every process


def rows(seed: int, count: int = 50) -> list[dict[str, Any]]:
    """A nested value of small parts: dicts and lists of ints and short strings."""
    return [{"id": seed * 1000 + i, "name": f"row-{seed}-{i}", "tags": ["a", "b", str(i % 7)]}
            for i in range(count)]


def big_value(seed: int, size: int) -> bytes:
    return seed.to_bytes(8, "big") * (size // 8)


class SavesNested(BranchActor):
    """Saves a child, then a parent holding the child, both still pending; returns the parent."""

    def run(self, ctx: BranchContext, item: Any) -> Ref:
        child = ctx.save(rows(item))
        parent = ctx.save({"child": child, "seed": item, "more": [child]})
        return ctx.save({"parent": parent, "seed": item})


class MutatesAfterSave(BranchActor):
    """Saves a large nested value, then changes it at once; returns the Ref and the fork count."""

    def run(self, ctx: BranchContext, item: Any) -> tuple[Ref, int]:
        from actors.refs import current_backend

        value = {"seed": item, "rows": rows(item, 20_000)}  # ~1 MB pickled: over the threshold
        ref = ctx.save(value)
        value["rows"][0]["name"] = "changed"
        value["rows"].clear()
        value["seed"] = -1
        snapshots = getattr(current_backend(), "_snapshots", None)
        return ref, snapshots.forks if snapshots is not None else 0


class ReturnsSameMegabyte(BranchActor):
    """Every branch saves the same 1 MB value and returns its Ref."""

    def run(self, ctx: BranchContext, item: Any) -> Ref:
        return ctx.save(SAME_MEGABYTE)


class SavesBig(BranchActor):
    """Saves ``count`` distinct values of ``size`` bytes; returns their Refs."""

    def run(self, ctx: BranchContext, item: Any) -> list[Ref]:
        seed, count, size = item
        return [ctx.save(big_value(seed * 100 + i, size)) for i in range(count)]


class BigStepThenWait(BranchActor):
    """A step whose result is over the Ref threshold, then a suspension: the replay loads it."""

    def run(self, ctx: BranchContext, item: Any) -> int:
        seed, size = item
        value = ctx.step("make", rows, seed, size)
        ctx.wait("pause", seconds=0.2)
        if value != rows(seed, size):
            raise AssertionError("the replayed step result differs from the first run's")
        return len(value)


class LoadsRefs(pykka.ThreadingActor):
    """A user actor in a process of its own: answers the value of the Ref it is sent."""

    def on_receive(self, message: Any) -> Any:
        return message.get(timeout=10)


def _poll_once(state: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    return state["polls"] >= 1, {**state, "polls": state["polls"] + 1}


class PollsHoldingARef(BranchActor):
    """A condition whose state holds a Ref saved just before: its suspension names the Ref."""

    def run(self, ctx: BranchContext, item: Any) -> Any:
        state = {"polls": 0, "ref": ctx.save(rows(item))}
        final = ctx.wait_for_condition("poll", _poll_once, initial_state=state, interval=0.5)
        return final["ref"].get()


class SavesUnpicklable(BranchActor):
    """Saves a large value with a lock at its end: only its forked child finds out.

    ``item`` says where the Ref goes: "result" returns it, "step" returns it from a step.
    """

    def run(self, ctx: BranchContext, item: Any) -> Any:
        import threading

        value = [*range(200_000), threading.Lock()]  # estimated ~600 KB: forked
        if item == "step":
            return ctx.step("keep", lambda: ctx.save(value))
        return ctx.save(value)
