"""Deferred suspension checkpoints: the 90/10 workload with the default delay beside delay 0.

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
import time
from pathlib import Path
from typing import Any

from actors.branch import BranchActor
from actors.context import BranchContext
from runtime.bench.report import Figure
from runtime.config import SystemConfig
from runtime.system import ActorSystem


def _settle(seconds: float) -> float:
    time.sleep(seconds)  # the slow child's remote call
    return seconds


class Child(BranchActor):
    def run(self, ctx: BranchContext, item: Any) -> float:
        seconds: float = ctx.step("work", _settle, item)
        return seconds


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


def run(quick: bool) -> list[Figure]:
    count = 50 if quick else 200
    with tempfile.TemporaryDirectory(prefix="durable-bench-") as directory:
        immediate_time, immediate = _run(0.0, count, directory)
        deferred_time, deferred = _run(SystemConfig().suspend_checkpoint_delay, count, directory)
    print(f"  90/10 workload, {count} parents: delay 0 -> {immediate}; "
          f"default delay -> {deferred}", file=sys.stderr)
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
    ]
