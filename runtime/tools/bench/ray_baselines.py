"""The "ray" suite: raw Ray's figures, the baselines of the Ray backend, all in one run.

Runs on a local one-node Ray with 2 CPUs that it starts itself
(``runtime.raybackend.local``: loopback only, no dashboard, no usage stats):

* raw Ray actor calls: one-way throughput (``actor.m.remote()``, not waited on),
  round trip p50/p99 (``ray.get(actor.m.remote())``), beside the local backend's
  tell and ask measured in the same run, taken in turn;
* an async Ray actor's round trip, beside a threaded one's: why the backend's
  host is a threaded actor;
* the phase 1 prototype (``runtime.raybackend``: a pykka actor hosted in a Ray
  actor) beside raw Ray: what the backend costs before any tuning;
* a Ray actor that asks another to commit one row to SQLite: the raw equivalent
  of a sync step on Ray;
* a CPU-bound map on raw Ray tasks and raw Ray actors, beside ``system.map`` on the
  local backend (2 workers), same items;
* the Ray backend's own tell, ask, sync step and map (``ActorSystem(backend="ray")``
  on the same Ray), each beside its raw Ray baseline from the same run.

Needs ``pip install 'durable-actors[ray]'``.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from actors import BranchActor, BranchContext
from runtime.config import SystemConfig
from runtime.system import ActorSystem
from runtime.tools.bench.messaging import Sink, burn, interleaved_round_trips, rounds_for
from runtime.tools.bench.report import Figure
from runtime.tools.bench.workloads import SequentialSteps


class RawSink:
    """A plain Ray actor: counts what it is told, echoes what it is asked."""

    def __init__(self) -> None:
        self.count = 0

    def add(self, amount: int) -> None:
        self.count += amount

    def total(self) -> int:
        return self.count

    def echo(self, value: Any) -> Any:
        return value


class RawAsyncEcho:
    """A plain async Ray actor (every call runs on its event loop)."""

    async def echo(self, value: Any) -> Any:
        return value


class RawCheckpoint:
    """A Ray actor that commits one row per call to SQLite (WAL, synchronous=FULL)."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS ops (op_id TEXT PRIMARY KEY, payload BLOB)")
        self.count = 0

    def commit(self, payload: bytes) -> int:
        self.count += 1
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute("INSERT INTO ops VALUES (?, ?)", (str(self.count), payload))
        self.conn.execute("COMMIT")
        return self.count


class RawStepper:
    """A Ray actor that waits on a commit by another, as a branch waits on its checkpoint."""

    def __init__(self, checkpoint: Any) -> None:
        self.checkpoint = checkpoint

    def steps(self, count: int, payload: bytes) -> list[float]:
        import ray  # noqa: PLC0415 - ray: the optional [ray] extra

        samples = []
        for _ in range(count):
            started = time.perf_counter()
            ray.get(self.checkpoint.commit.remote(payload))
            samples.append(time.perf_counter() - started)
        return samples


class RawBurner:
    def burn(self, rounds: int) -> str:
        return burn(rounds)


class BurnBranch(BranchActor):
    """One CPU-bound step per item."""

    def run(self, ctx: BranchContext, item: Any) -> str:
        result: str = ctx.step("burn", burn, int(item))
        return result


def _percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct))]


def _timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run(quick: bool) -> list[Figure]:
    try:
        from runtime.raybackend.local import LocalRay, prepare_process  # noqa: PLC0415 - ray: the optional [ray] extra
        prepare_process()  # before ``import ray``: loopback node address, authentication
        import ray  # noqa: PLC0415 - ray: the optional [ray] extra
    except ImportError as exc:
        print(f"the ray suite needs Ray: pip install 'durable-actors[ray]' ({exc})",
              file=sys.stderr)
        return []
    local = LocalRay()
    try:
        running = local.one_node()
        return _measure(quick, ray, running.start_seconds)
    finally:
        local.stop()


def _measure(quick: bool, ray: Any, ray_start: float) -> list[Figure]:
    from runtime.raybackend.starting import start_host  # noqa: PLC0415 - ray: the optional [ray] extra

    tells = 5_000 if quick else 20_000
    asks = 1_000 if quick else 3_000
    items = 8 if quick else 16
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="da-bench-ray-") as tmp:
        started = time.perf_counter()
        system = ActorSystem(store=f"sqlite:///{os.path.join(tmp, 'state.db')}",
                             config=SystemConfig(workers=2, recover=False))
        with system:
            system.start_durable()
            system_start = time.perf_counter() - started
            figures.append(Figure(
                "local Ray start (ray.init, one node)", "s", ray_start, system_start,
                "ActorSystem start with its durable services", higher_is_better=False,
                target="report: what a test or a local run pays once"))
            sink = system.spawn(Sink, name="sink")
            raw = ray.remote(RawSink).remote()
            raw_async = ray.remote(RawAsyncEcho).remote()
            hosted = start_host(Sink, name="hosted-sink")
            ray.get([raw.total.remote(), raw_async.echo.remote(0)])
            on_ray = ActorSystem(store=f"sqlite:///{os.path.join(tmp, 'ray-backend.db')}",
                                 config=SystemConfig(workers=2, recover=False), backend="ray")
            with on_ray:
                backend_sink = on_ray.spawn(Sink, name="sink")
                figures += _one_way(ray, raw, sink, hosted, backend_sink, tells)
                figures += _round_trips(ray, raw, raw_async, sink, hosted, backend_sink, asks)
                figures += _sync_step(ray, tmp, on_ray, 200 if quick else 500)
                on_ray_map = _backend_map(on_ray, items)
            # After the Ray backend's workers have given their CPUs back: raw tasks need them.
            figures += _cpu_map(ray, system, on_ray_map, items)
            hosted.stop()
    return figures


_TELL_ROUND = 2_000  # calls sent before waiting for them to be handled


def _one_way(ray: Any, raw: Any, sink: Any, hosted: Any, backend_sink: Any,
             tells: int) -> list[Figure]:
    def raw_burst() -> None:
        # In rounds: past 5,000 calls pending on one actor Ray warns and slows down.
        for start in range(0, tells, _TELL_ROUND):
            for _ in range(min(_TELL_ROUND, tells - start)):
                raw.add.remote(1)
            ray.get(raw.total.remote())  # every one handled: same order, one caller

    def local_burst() -> None:
        for _ in range(tells):
            sink.tell(1)
        sink.ask("count")

    def hosted_burst() -> None:
        for start in range(0, tells, _TELL_ROUND):  # in the same rounds as the raw calls
            for _ in range(min(_TELL_ROUND, tells - start)):
                hosted.tell(1)
            hosted.ask("count", timeout=300)

    def backend_burst() -> None:
        for start in range(0, tells, _TELL_ROUND):  # in the same rounds as the raw calls
            for _ in range(min(_TELL_ROUND, tells - start)):
                backend_sink.tell(1)
            backend_sink.ask("count", timeout=300)

    raw_rate = tells / _timed(raw_burst)
    local_rate = tells / _timed(local_burst)
    hosted_rate = tells / _timed(hosted_burst)
    backend_rate = tells / _timed(backend_burst)
    return [
        Figure("raw Ray one-way call", "calls/s", raw_rate, local_rate,
               "local backend one-way tell, same run", higher_is_better=True,
               target="report: Ray's floor for a tell"),
        Figure("prototype tell (pykka actor in a Ray actor)", "msgs/s", hosted_rate, raw_rate,
               "raw Ray one-way call", higher_is_better=True, target="report"),
        Figure("tell, Ray backend", "msgs/s", backend_rate, raw_rate, "raw Ray one-way call",
               higher_is_better=True, target="≥ 0.7× raw Ray"),
    ]


def _round_trips(ray: Any, raw: Any, raw_async: Any, sink: Any, hosted: Any,
                 backend_sink: Any, asks: int) -> list[Figure]:
    calls = [lambda i: ray.get(raw.echo.remote(i)), lambda i: sink.ask("count"),
             lambda i: ray.get(raw_async.echo.remote(i)), lambda i: hosted.ask("count"),
             lambda i: backend_sink.ask("count")]
    interleaved_round_trips(calls, 100)  # warm up
    raw_rtt, local_rtt, async_rtt, hosted_rtt, backend_rtt = interleaved_round_trips(calls, asks)
    raw_p50, raw_p99 = _percentile(raw_rtt, 0.5) * 1e6, _percentile(raw_rtt, 0.99) * 1e6
    interleaved = "raw Ray round trip (threaded actor), interleaved"
    return [
        Figure("raw Ray round trip p50", "µs", raw_p50, _percentile(local_rtt, 0.5) * 1e6,
               "local backend ask p50, interleaved", higher_is_better=False,
               target="report: Ray's floor for an ask"),
        Figure("raw Ray round trip p99", "µs", raw_p99, _percentile(local_rtt, 0.99) * 1e6,
               "local backend ask p99, interleaved", higher_is_better=False, target="report"),
        Figure("raw Ray round trip p50, async actor", "µs", _percentile(async_rtt, 0.5) * 1e6,
               raw_p50, interleaved, higher_is_better=False,
               target="report: why the host is a threaded actor"),
        Figure("prototype ask p50 (pykka actor in a Ray actor)", "µs",
               _percentile(hosted_rtt, 0.5) * 1e6, raw_p50, interleaved,
               higher_is_better=False, target="≤ 1.3× raw Ray (the issue's goal)"),
        Figure("prototype ask p99 (pykka actor in a Ray actor)", "µs",
               _percentile(hosted_rtt, 0.99) * 1e6, raw_p99,
               "raw Ray round trip p99 (threaded actor), interleaved", higher_is_better=False,
               target="report"),
        Figure("ask p50, Ray backend", "µs", _percentile(backend_rtt, 0.5) * 1e6, raw_p50,
               interleaved, higher_is_better=False, target="≤ 1.3× raw Ray"),
        Figure("ask p99, Ray backend", "µs", _percentile(backend_rtt, 0.99) * 1e6, raw_p99,
               "raw Ray round trip p99 (threaded actor), interleaved", higher_is_better=False,
               target="report"),
    ]


def _sync_step(ray: Any, tmp: str, on_ray: ActorSystem, steps: int) -> list[Figure]:
    checkpoint = ray.remote(RawCheckpoint).remote(os.path.join(tmp, "raw-ray.db"))
    stepper = ray.remote(RawStepper).remote(checkpoint)
    payload = b"x" * 64
    ray.get(stepper.steps.remote(20, payload))  # warm: the first commits grow the WAL file
    on_ray.map(SequentialSteps, [20]).result(timeout=300)  # warm: workers, store, WAL
    # Taken in turn, in halves: both sides under the same disk and load.
    raw: list[float] = []
    backend: list[float] = []
    for _ in range(2):
        raw += ray.get(stepper.steps.remote(steps // 2, payload))
        backend += on_ray.map(SequentialSteps, [steps // 2]).result(timeout=600).values()[0]
    raw_p50 = _percentile(raw, 0.5) * 1e6
    return [Figure("sync step p50, Ray backend", "µs", _percentile(backend, 0.5) * 1e6, raw_p50,
                   "raw Ray: an actor asks another to commit one SQLite row (WAL, FULL)",
                   higher_is_better=False, target="≤ 2.5× raw")]


def _backend_map(on_ray: ActorSystem, items: int) -> float:
    """Seconds of the CPU-bound map on the Ray backend (its 2 workers, 1 CPU each)."""
    work = [rounds_for(50)] * items
    on_ray.map(BurnBranch, [1, 1]).result(timeout=120)  # warm: workers and store are up
    return _timed(lambda: on_ray.map(BurnBranch, work).result(timeout=600))


def _cpu_map(ray: Any, system: ActorSystem, backend: float, items: int) -> list[Figure]:
    rounds = rounds_for(50)
    work = [rounds] * items
    system.map(BurnBranch, [1, 1]).result(timeout=120)  # warm: workers and store are up
    local = _timed(lambda: system.map(BurnBranch, work).result(timeout=600))
    task = ray.remote(num_cpus=1)(burn)
    ray.get([task.remote(1) for _ in range(2)])  # warm: Ray's two workers have the function
    tasks = _timed(lambda: ray.get([task.remote(r) for r in work]))
    burners = [ray.remote(num_cpus=1)(RawBurner).remote() for _ in range(2)]
    ray.get([b.burn.remote(1) for b in burners])
    actors = _timed(lambda: ray.get([burners[i % 2].burn.remote(r)
                                     for i, r in enumerate(work)]))
    for burner in burners:
        ray.kill(burner)
    serial = _timed(lambda: burn(rounds)) * items
    name = f"CPU-bound map {items}×50 ms"
    extra = {"serial_seconds": serial, "cpus": 2}
    baseline = "local backend system.map, 2 workers, same items"
    return [
        Figure(f"{name}, raw Ray tasks", "s", tasks, local, baseline,
               higher_is_better=False, target="report", extra=extra),
        Figure(f"{name}, raw Ray actors (2)", "s", actors, local, baseline,
               higher_is_better=False, target="report", extra=extra),
        Figure(f"{name}, system.map on the Ray backend", "s", backend, local, baseline,
               higher_is_better=False, target="report", extra=extra),
        Figure(f"{name}, system.map on the Ray backend vs raw tasks", "s", backend, tasks,
               "raw Ray tasks, same items", higher_is_better=False, target="report",
               extra=extra),
    ]
