"""CPU-bound fan-out with ``map``: worker processes beside a thread pool, timed in one run.

    python examples/cpu_fanout.py                 # 8 items, a few seconds
    python examples/cpu_fanout.py --items 16 --rounds 600000

Each item is pure-Python work (it holds the interpreter lock the whole time), so
a thread pool runs one item at a time whatever its size, while ``map`` runs
branches on worker processes, one interpreter each. The durable system also
checkpoints every step; the speedup printed at the end is what is left after
paying for that. On a machine with one core there is no speedup to show.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from actors import BranchActor, BranchContext
from runtime import ActorSystem, SystemConfig
from runtime.progress import track


def collatz_steps(seed: int, rounds: int) -> int:
    """Pure-Python busy work: total Collatz steps of ``rounds`` numbers from ``seed``."""
    total = 0
    for start in range(seed, seed + rounds):
        n = start
        while n != 1:
            n = n // 2 if n % 2 == 0 else 3 * n + 1
            total += 1
    return total


class Crunch(BranchActor):
    """One item: one checkpointed step of CPU work."""

    def run(self, ctx: BranchContext, item: tuple[int, int]) -> int:
        seed, rounds = item
        return ctx.step("crunch", collatz_steps, seed, rounds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=15_000, help="work per item")
    args = parser.parse_args()
    items = [(1 + i * args.rounds, args.rounds) for i in range(args.items)]
    cores = os.cpu_count() or 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=cores) as pool:
        expected = list(pool.map(lambda item: collatz_steps(*item), items))
    threads = time.perf_counter() - started
    print(f"thread pool ({cores} threads): {threads:.2f} s")

    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{Path(tmp) / 'fanout.db'}"
        with ActorSystem(store=store, config=SystemConfig(workers=cores)) as system:
            system.metrics()  # starts the checkpoint actor and the workers: not part of the timing
            started = time.perf_counter()
            run = system.map(Crunch, items, execution_id="cpu-fanout")
            result = track(run, description=f"map on {cores} worker processes", timeout=300)
            processes = time.perf_counter() - started
    print(f"map on {cores} worker processes: {processes:.2f} s")

    if result.values() != expected:
        print("the results differ from the thread pool's!")
        return 1
    print(f"same {len(expected)} results; speedup over threads: {threads / processes:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
