"""``durable-actors demo``: actors in processes doing real work, beside pykka threads.

A CPU-bound fan-out (hashing) over actors in processes of their own, and the
same work over pykka ThreadingActors in one process, with the time of each.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import pykka
from rich.console import Console
from rich.progress import Progress

from runtime.bench.messaging import Burner, rounds_for
from runtime.config import SystemConfig
from runtime.future import Future
from runtime.system import ActorSystem


def _fan_out(
    actors: Sequence[Any], calls: int, rounds: int, progress: Progress, label: str
) -> float:
    task = progress.add_task(label, total=calls)
    start = time.perf_counter()
    futures: list[Future[str]] = [
        actors[i % len(actors)].proxy().burn(rounds)
        for i in range(calls)
    ]
    for future in futures:
        future.get(timeout=300)
        progress.advance(task)
    return time.perf_counter() - start


def main(store: str | None = None, items: int | None = None) -> int:
    console = Console()
    workers = os.cpu_count() or 1
    calls = items or 32
    rounds = rounds_for(50.0)
    console.print(f"[bold]durable-actors demo[/]: {calls} CPU-bound calls of ~50 ms "
                  f"on {workers} actors (store {store or 'default'} is not used yet)")
    with Progress(console=console, transient=False) as progress:
        threads = [Burner.start() for _ in range(workers)]
        thread_time = _fan_out(threads, calls, rounds, progress, "pykka threads  ")
        for ref in threads:
            ref.stop()
        with ActorSystem(store=store, config=SystemConfig(workers=workers)) as system:
            actors = [system.spawn(Burner, name=f"burner-{i}") for i in range(workers)]
            process_time = _fan_out(actors, calls, rounds, progress, "actor processes")
    console.print(f"pykka threads:   {thread_time:6.2f} s")
    console.print(f"actor processes: {process_time:6.2f} s  "
                  f"([bold]{thread_time / process_time:.2f}×[/] faster)")
    pykka.ActorRegistry.stop_all()
    return 0
