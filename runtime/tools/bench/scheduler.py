"""The scheduler: deferred checkpoints on the 90/10 workload, and timers across a restart.

Each parent branch fans out one child and suspends on it. 90% of the children
finish within milliseconds (inside the deferral delay: the parent's suspension is
cancelled, nothing is written, no replay); 10% take 0.5 s (the suspension is
written and the parent evicted, then replayed). The same workload runs with
``suspend_checkpoint_delay=0`` (every suspension written at once) in the same
run; suspension writes are the scheduler's ``scheduler.applied``.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from actors.branches._actor import BranchActor
from actors.branches._context import BranchContext
from runtime.config import SystemConfig
from runtime.stores import open_store
from runtime.system import ActorSystem
from runtime.tools.bench.report import Figure, moved


def _settle(seconds: float) -> float:
    time.sleep(seconds)  # the slow child's remote call
    return seconds


class Child(BranchActor):
    def run(self, ctx: BranchContext, item: Any) -> float:
        seconds: float = ctx.step("work", _settle, item)
        return seconds


class WaitThenStamp(BranchActor):
    def run(self, ctx: BranchContext, item: Any) -> float:
        ctx.wait("pause", seconds=item)
        woke: float = ctx.step("woke", time.time)
        return woke


class Parent(BranchActor):
    def run(self, ctx: BranchContext, item: Any) -> float:
        return float(sum(ctx.map("child", Child, [item]).values()))


def _workload(count: int) -> list[float]:
    return [0.5 if i % 10 == 9 else 0.0 for i in range(count)]  # every tenth is slow


def _run(delay: float, count: int, directory: str) -> tuple[float, dict[str, int]]:
    config = SystemConfig(workers=2, suspend_checkpoint_delay=delay)
    store = f"sqlite:///{Path(directory) / f'delay-{delay}.db'}"
    with ActorSystem(store=store, config=config) as system:
        system.map(Child, [0.0]).result(timeout=60)  # warm: processes up, store created
        before = system.metrics()
        started = time.perf_counter()
        system.map(Parent, _workload(count), max_concurrency=10).result(timeout=600)
        elapsed = time.perf_counter() - started
        after = system.metrics()
    return elapsed, {k: after.get(k, 0) - before.get(k, 0) for k in after}


def timer_lateness(count: int, pause: float, directory: str) -> list[float]:
    """Seconds past its due time that each of ``count`` timers fired, after a restart."""
    store = f"sqlite:///{Path(directory) / 'timers.db'}"
    config = SystemConfig(workers=2, suspend_checkpoint_delay=0)  # every wait is durable
    with ActorSystem(store=store, config=config) as first:
        run = first.map(WaitThenStamp, [pause] * count, execution_id="timers")
        deadline = time.monotonic() + 60
        while run.progress()["suspended"] < count and time.monotonic() < deadline:
            time.sleep(0.02)  # polling progress before stopping the system
    reader = open_store(store + "?mode=ro")
    due = {b.branch_id: reader.read_log(b.branch_id).operations[0].due_at
           for b in reader.read_branches("timers")}
    reader.close()
    with ActorSystem(store=store, config=config) as second:
        woke = second.map(WaitThenStamp, [pause] * count, execution_id="timers").result(120)
    return [w - (due[f"timers/{i}"] or 0.0) for i, w in enumerate(woke.values())]


def thread_lateness(count: int, pause: float) -> list[float]:
    """The floor: one Python thread waiting on a Condition until each due time."""
    late = []
    condition = threading.Condition()
    for _ in range(count):
        due = time.time() + pause / count
        with condition:
            condition.wait(max(0.0, due - time.time()))
        late.append(time.time() - due)
    return late


def run(quick: bool) -> list[Figure]:
    count = 50 if quick else 200
    with tempfile.TemporaryDirectory(prefix="durable-bench-") as directory:
        immediate_time, immediate = _run(0.0, count, directory)
        deferred_time, deferred = _run(SystemConfig().suspend_checkpoint_delay, count, directory)
        late = sorted(timer_lateness(100, 2.0, directory))
    floor = sorted(thread_lateness(100, 1.0))
    print(f"  scheduler: 90/10 workload, {count} parents: delay 0 -> {moved(immediate)}; "
          f"default delay -> {moved(deferred)}", file=sys.stderr)
    writes, baseline = deferred["scheduler.applied"], immediate["scheduler.applied"]
    return [
        Figure("suspension writes, 90/10 workload", "writes", writes, baseline,
               "suspend_checkpoint_delay=0", higher_is_better=False,
               target="≥ 90% fewer (ratio ≤ 0.10)",
               extra={"cancelled": deferred["scheduler.cancelled"],
                      "evictions": deferred["branch.evictions"],
                      "evictions_at_delay_0": immediate["branch.evictions"],
                      "replays": deferred["branch.replays"],
                      "replays_at_delay_0": immediate["branch.replays"]}),
        Figure("end-to-end time, 90/10 workload", "s", deferred_time, immediate_time,
               "suspend_checkpoint_delay=0", higher_is_better=False,
               target="no worse (ratio ≤ 1)"),
        Figure("100 timers after a restart: latest past due", "ms", late[-1] * 1e3,
               floor[-1] * 1e3, "a Python thread's Condition.wait, latest",
               higher_is_better=False, target="≤ 50 ms", absolute_target=50.0,
               extra={"p50_ms": late[len(late) // 2] * 1e3, "earliest_ms": late[0] * 1e3}),
    ]
