"""Async branches: fan-out of awaited I/O, deferral at any fan-out, parking cost, a free loop.

* 200 branches each awaiting one 1 s I/O call: async branches (the call awaited on
  the worker's loop) against sync branches (a thread each, 16 per worker);
* 1,000 branches each waiting 10 ms with ``suspend_checkpoint_delay=0.5``: how many
  suspensions are cancelled (nothing written) and how many branches are evicted,
  async against sync (sync parking is bounded by threads: ``max_parked``);
* 10,000 async branches parked at once: threads per worker and the resident memory
  of every process of the system, against the same system idle;
* an asyncio ticker (every 10 ms) while the service awaits a 1 s execution and a
  0.5 s ask, against the same ticker while the service awaits ``asyncio.sleep``;
  and the longest stall of that ticker during ``map`` and ``map_async``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pykka

from actors._compat.linux import threads_and_rss_kb
from actors.branches._actor import BranchActor
from actors.branches._async_context import AsyncBranchContext
from actors.branches._context import BranchContext
from runtime.config import SystemConfig
from runtime.system import ActorSystem
from runtime.tools.bench.report import Figure, moved

IO_SECONDS = 1.0
TICK = 0.01


async def _remote_call(seconds: float) -> float:
    await asyncio.sleep(seconds)  # stands for an awaited HTTP or database call
    return seconds


def _blocking_call(seconds: float) -> float:
    time.sleep(seconds)  # the same call made by a blocking client
    return seconds


class AwaitsIO(BranchActor):
    async def run(self, ctx: AsyncBranchContext, item: float) -> float:
        seconds: float = await ctx.step("call", _remote_call, item)
        return seconds


class BlocksOnIO(BranchActor):
    def run(self, ctx: BranchContext, item: float) -> float:
        seconds: float = ctx.step("call", _blocking_call, item)
        return seconds


class WaitsAsync(BranchActor):
    async def run(self, ctx: AsyncBranchContext, item: float) -> float:
        await ctx.wait("pause", seconds=item)
        return item


class WaitsSync(BranchActor):
    def run(self, ctx: BranchContext, item: float) -> float:
        ctx.wait("pause", seconds=item)
        return item


class Sleeper(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> Any:
        time.sleep(float(message))  # a slow actor: the ask's answer takes this long
        return message


def _system(directory: str, name: str, **options: Any) -> ActorSystem:
    config = SystemConfig(workers=2, **options)
    return ActorSystem(store=f"sqlite:///{Path(directory) / f'{name}.db'}", config=config)


def _timed_map(system: ActorSystem, branch: type[BranchActor], items: list[float],
               ) -> tuple[float, dict[str, int]]:
    system.map(branch, items[:1]).result(timeout=120)  # warm: processes up, store created
    before = system.metrics()
    started = time.perf_counter()
    system.map(branch, items).result(timeout=900)
    elapsed = time.perf_counter() - started
    after = system.metrics()
    return elapsed, {k: after.get(k, 0) - before.get(k, 0) for k in after}


# -- fan-out of awaited I/O --------------------------------------------------------------------


def io_fanout(directory: str, count: int) -> list[Figure]:
    with _system(directory, "io-async") as system:
        async_time, _ = _timed_map(system, AwaitsIO, [IO_SECONDS] * count)
    with _system(directory, "io-sync") as system:
        sync_time, _ = _timed_map(system, BlocksOnIO, [IO_SECONDS] * count)
    print(f"  async: {count} × {IO_SECONDS:.0f} s I/O: async {async_time:.2f} s, "
          f"sync {sync_time:.2f} s", file=sys.stderr)
    return [Figure(f"{count} branches × one {IO_SECONDS:.0f} s awaited I/O step", "s",
                   async_time, sync_time, "sync branches (16 threads per worker)",
                   higher_is_better=False, target="≤ 0.25× of sync (ratio ≤ 0.25)")]


# -- deferral at fan-out -------------------------------------------------------------------------


def deferral(directory: str, count: int) -> list[Figure]:
    wait, delay = 0.01, 0.5
    found: dict[str, dict[str, int]] = {}
    for name, branch in (("async", WaitsAsync), ("sync", WaitsSync)):
        with _system(directory, f"defer-{name}", suspend_checkpoint_delay=delay) as system:
            _, found[name] = _timed_map(system, branch, [wait] * count)
        print(f"  async: {count} × {wait * 1e3:.0f} ms wait, {name}: "
              f"{moved(found[name], ('scheduler.', 'branch.'))}", file=sys.stderr)

    def unwritten(counters: dict[str, int]) -> float:
        # Each branch suspends once. A suspension is written only when applied; the others
        # were cancelled by their resume, or came due before the scheduler heard of them.
        return 100.0 * (count - counters["scheduler.applied"]) / count

    return [
        Figure(f"{count} × {wait * 1e3:.0f} ms wait, delay {delay}: suspensions not written",
               "%", unwritten(found["async"]), unwritten(found["sync"]), "sync branches",
               higher_is_better=True, target="≥ 95% cancelled", absolute_target=95.0,
               extra={name: {k: found[name].get(k, 0) for k in (
                   "scheduler.deferred", "scheduler.cancelled", "scheduler.applied",
                   "branch.evictions", "branch.replays")} for name in found}),
        Figure(f"{count} × {wait * 1e3:.0f} ms wait, delay {delay}: branches evicted", "%",
               100.0 * found["async"]["branch.evictions"] / count,
               100.0 * found["sync"]["branch.evictions"] / count, "sync branches",
               higher_is_better=False, target="≤ 5%", absolute_target=5.0),
    ]


# -- what parking costs ------------------------------------------------------------------------


def _processes(system: ActorSystem) -> dict[str, int]:
    return {"service": os.getpid(), **system.processes()}


def _sample(system: ActorSystem) -> tuple[int, float]:
    """(most threads of a worker process, total resident MB of the system's processes)."""
    statuses = {name: threads_and_rss_kb(pid) for name, pid in _processes(system).items()}
    threads = max(s.get("Threads", 0) for name, s in statuses.items() if name.startswith("worker-"))
    return threads, sum(s.get("VmRSS", 0) for s in statuses.values()) / 1024


def parking(directory: str, count: int) -> list[Figure]:
    hold = 60.0  # the wait each branch parks on; far longer than filling the system takes
    with _system(directory, "parked", suspend_checkpoint_delay=hold * 2,
                 max_parked_coroutines=count) as system:
        # Warm: every process up, and a wave parked and resumed once, so that threads a
        # process starts on its first burst (its transport's writer) count as idle ones.
        system.map(WaitsAsync, [0.05] * 200).result(timeout=120)
        idle_threads, idle_mb = _sample(system)
        warm = system.metrics()["scheduler.deferred"]
        started = time.perf_counter()
        run = system.map(WaitsAsync, [hold] * count)
        deadline = time.monotonic() + 600
        while system.metrics()["scheduler.deferred"] < warm + count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{count} branches did not all park within 600 s")
            time.sleep(0.2)  # polling the counters, not synchronizing anything
        filled = time.perf_counter() - started
        parked_threads, parked_mb = _sample(system)
        counters = system.metrics()
        del run  # never awaited: the shutdown cancels the parked branches
    per_branch_kb = (parked_mb - idle_mb) * 1024 / count
    print(f"  async: {count} parked in {filled:.1f} s: {parked_threads} threads per worker "
          f"(idle {idle_threads}), {parked_mb:.0f} MB (idle {idle_mb:.0f} MB), "
          f"~{per_branch_kb:.1f} kB per parked branch; applied="
          f"{counters['scheduler.applied']}", file=sys.stderr)
    return [
        Figure(f"{count:,} async branches parked: threads per worker", "threads",
               parked_threads, idle_threads, "the same worker idle", higher_is_better=False,
               target="unchanged (ratio 1.00)"),
        Figure(f"{count:,} async branches parked: resident memory, all processes", "MB",
               parked_mb, idle_mb, "the same system idle", higher_is_better=False,
               target="< 1 GB", absolute_target=1024.0,
               extra={"kB_per_parked_branch": per_branch_kb, "seconds_to_park": filled,
                      "applied": counters["scheduler.applied"]}),
    ]


# -- the service's loop ----------------------------------------------------------------------------


async def _ticks_while(work: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """(share of 10 ms ticks kept, longest gap between ticks in ms) while ``work`` runs."""
    ticks: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(TICK)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    started = time.perf_counter()
    await work()
    ended = time.perf_counter()
    done.set()
    await task
    # The loop's stalls: from the work's start to its first tick, between ticks, to its end.
    during = [started, *(t for t in ticks if started < t < ended), ended]
    longest = max(b - a for a, b in itertools.pairwise(during))
    kept = min(1.0, (len(during) - 2) / max(1.0, (ended - started) / TICK))
    return 100.0 * kept, longest * 1e3


def loop_freedom(directory: str) -> list[Figure]:
    async def main() -> dict[str, tuple[float, float]]:
        found: dict[str, tuple[float, float]] = {}
        made: list[ActorSystem] = []

        async def construct() -> None:
            made.append(_system(directory, "loop"))

        found["ActorSystem(...)"] = await _ticks_while(construct)
        system = made[0]
        found["async with (services start)"] = await _ticks_while(system.__aenter__)
        sleeper = await asyncio.to_thread(system.spawn, Sleeper)

        async def awaited() -> None:
            run = await system.map_async(BlocksOnIO, [1.0])
            await run
            await sleeper.ask(0.5, block=False)

        async def slept() -> None:
            await asyncio.sleep(1.0 + 0.5)

        async def blocked() -> None:
            system.map(BlocksOnIO, [1.0]).result(timeout=60)
            sleeper.ask(0.5, block=False).get(timeout=60)

        found["awaited"] = await _ticks_while(awaited)
        found["asyncio.sleep"] = await _ticks_while(slept)
        found["blocking calls"] = await _ticks_while(blocked)

        async def map_sync() -> None:
            system.map(WaitsAsync, [0.0] * 100)

        async def map_async() -> None:
            await system.map_async(WaitsAsync, [0.0] * 100)

        found["map"] = await _ticks_while(map_sync)
        found["map_async"] = await _ticks_while(map_async)
        await system.__aexit__(None, None, None)
        cold = await asyncio.to_thread(_system, directory, "cold")

        async def first_map() -> None:
            cold.map(WaitsAsync, [0.0] * 100)

        found["first map, no async with"] = await _ticks_while(first_map)
        await asyncio.to_thread(cold.shutdown)
        return found

    found = asyncio.run(main())
    print("  async: ticker " + ", ".join(f"{k}: {v[0]:.0f}% kept, {v[1]:.0f} ms longest gap"
                                        for k, v in found.items()), file=sys.stderr)
    return [
        Figure("ticks kept while awaiting a 1 s execution and a 0.5 s ask", "%",
               found["awaited"][0], found["asyncio.sleep"][0],
               "awaiting asyncio.sleep as long", higher_is_better=True,
               target="≥ 90%", absolute_target=90.0,
               extra={"blocking_calls_kept_pct": found["blocking calls"][0],
                      "longest_gap_ms": found["awaited"][1]}),
        Figure("loop stall: starting the system, then a map of 100", "ms",
               max(found["async with (services start)"][1], found["map_async"][1]),
               found["first map, no async with"][1],
               "the first system.map of 100 in the coroutine, services not started",
               higher_is_better=False, target="no stall beyond a tick or two (10 ms ticks)",
               extra={"stall_ms": {k: v[1] for k, v in found.items()},
                      "ticks_kept_pct": {k: v[0] for k, v in found.items()}}),
    ]


def run(quick: bool) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="durable-bench-") as directory:
        figures = io_fanout(directory, 50 if quick else 200)
        figures += deferral(directory, 200 if quick else 1000)
        figures += parking(directory, 1000 if quick else 10_000)
        figures += loop_freedom(directory)
    return figures
