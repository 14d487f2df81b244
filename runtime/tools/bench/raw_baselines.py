"""The raw baselines of the durable figures: SQLite and pipes with no framework at all.

Every durable figure stands beside what it cannot avoid, measured in the same
run: a FULL commit in WAL mode (``raw_commits``), ``executemany`` batches of
``RAW_BATCH`` rows (``raw_batch_rate``), a cloudpickled round trip over a raw
``multiprocess`` pipe (``raw_pipe_round_trips``), the same producers and count
over raw pipes into one committing process (``raw_pipeline_rate``), and one
read of a wave's rows (``raw_read_seconds``).

    conn = raw_connection("/tmp/raw.db")
    raw_commits(conn, 50, "round-0")        # seconds per one-row transaction
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections.abc import Callable
from typing import Any

import cloudpickle
import multiprocess
import multiprocess.connection

from runtime.tools.bench.workloads import PAYLOAD, PAYLOAD_BYTES

RAW_BATCH = 250  # rows per raw transaction: SystemConfig.checkpoint_max_ops
PIPELINE_WINDOW = 1_000  # unacknowledged updates per producer of the raw pipeline


def raw_connection(path: str) -> sqlite3.Connection:
    """A connection in WAL mode with ``synchronous=FULL`` to a table of one row per update."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS ops (branch_id TEXT NOT NULL, op_id TEXT NOT NULL, "
                 "status TEXT NOT NULL, payload BLOB, due_at REAL, updated_at REAL NOT NULL, "
                 "UNIQUE (branch_id, op_id))")
    return conn


def raw_commits(conn: sqlite3.Connection, ops: int, label: str) -> list[float]:
    """Seconds per ``BEGIN IMMEDIATE; INSERT one row; COMMIT`` (WAL, FULL)."""
    payload = b"x" * PAYLOAD_BYTES
    samples = []
    for i in range(ops):
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO ops VALUES (?, ?, 'SUCCEEDED', ?, NULL, ?)",
                     (label, str(i), payload, time.time()))
        conn.execute("COMMIT")
        samples.append(time.perf_counter() - started)
    return samples


def batched_rows_rate(rows: int, payload: bytes,
                      write: Callable[[list[tuple[Any, ...]]], None]) -> float:
    """Rows/s of ``write`` given batches of ``RAW_BATCH`` rows, after two batches of warm-up.

    Each row is ``(branch, op_id, payload, updated_at)``; ``write`` commits one batch in
    one transaction. The SQLite and PostgreSQL raw baselines both measure through this.
    """
    batches = [[(f"rate-{b % 8}", f"{b}-{i}", payload, 0.0) for i in range(RAW_BATCH)]
               for b in range(max(1, rows // RAW_BATCH) + 2)]
    for batch in batches[:2]:  # warm up
        write(batch)
    started = time.perf_counter()
    for batch in batches[2:]:
        write(batch)
    elapsed = time.perf_counter() - started
    return (len(batches) - 2) * RAW_BATCH / elapsed


def raw_batch_rate(path: str, rows: int) -> float:
    """Rows/s of ``executemany`` batches of ``RAW_BATCH`` rows, one transaction each (FULL)."""
    conn = raw_connection(path)

    def write(batch: list[tuple[Any, ...]]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO ops VALUES (?, ?, 'SUCCEEDED', ?, NULL, ?)", batch)
        conn.execute("COMMIT")

    try:
        return batched_rows_rate(rows, b"x" * PAYLOAD_BYTES, write)
    finally:
        conn.close()


def _pipeline_producer(conn: Any, name: str, count: int, ready: Any, go: Any) -> None:
    """One update per message, at most ``PIPELINE_WINDOW`` unacknowledged (a mailbox's bound)."""
    ready.release()
    go.wait()
    sent = acked = 0
    while acked < count:
        while sent < count and sent - acked < PIPELINE_WINDOW:
            conn.send_bytes(cloudpickle.dumps((name, str(sent), PAYLOAD)))
            sent += 1
        acked += len(cloudpickle.loads(conn.recv_bytes()))


def _pipeline_consumer(conns: list[Any], path: str, total: int, ready: Any) -> None:
    """Decode what waits, commit ``RAW_BATCH`` rows a transaction, ack each producer once."""
    db = raw_connection(path)
    ready.release()
    pending: list[tuple[Any, tuple[str, str, bytes]]] = []
    written = 0
    while written < total:
        for conn in multiprocess.connection.wait(conns):
            while len(pending) < RAW_BATCH and conn.poll():
                pending.append((conn, cloudpickle.loads(conn.recv_bytes())))
        if not pending:
            continue
        db.execute("BEGIN IMMEDIATE")  # the reads above stop at RAW_BATCH: one transaction
        db.executemany("INSERT INTO ops VALUES (?, ?, 'SUCCEEDED', ?, NULL, 0.0)",
                       [row for _, row in pending])
        db.execute("COMMIT")
        acks: dict[Any, list[str]] = {}
        for conn, row in pending:
            acks.setdefault(conn, []).append(row[1])
        for conn, ids in acks.items():
            conn.send_bytes(cloudpickle.dumps(ids))
        written += len(pending)
        pending = []
    db.close()


def raw_pipeline_rate(path: str, producers: int, per_producer: int) -> float:
    """Acknowledged updates/s with no framework: the floor of one message per update.

    ``producers`` processes each send ``per_producer`` cloudpickled updates over a
    raw ``multiprocess`` pipe, one per message (at most ``PIPELINE_WINDOW``
    unacknowledged); one consumer process decodes them, commits ``RAW_BATCH`` rows
    per ``executemany`` transaction (FULL) and acknowledges each producer's share
    of a batch in one message. What a checkpoint actor must do at the least when every update
    arrives as a message of its own, as a branch's step does; timed from a start
    signal, once every process is up.
    """
    ctx = multiprocess.get_context("spawn")
    pipes = [ctx.Pipe() for _ in range(producers)]
    ready, go = ctx.Semaphore(0), ctx.Event()
    consumer = ctx.Process(target=_pipeline_consumer, args=(
        [there for _, there in pipes], path, producers * per_producer, ready))
    sources = [ctx.Process(target=_pipeline_producer,
                           args=(here, f"p{i}", per_producer, ready, go))
               for i, (here, _) in enumerate(pipes)]
    for process in (consumer, *sources):
        process.start()
    for _ in range(1 + producers):
        if not ready.acquire(timeout=120):
            raise RuntimeError("a raw pipeline process did not start within 120 s")
    started = time.perf_counter()
    go.set()
    for source in sources:
        source.join()
    elapsed = time.perf_counter() - started
    consumer.join()
    return producers * per_producer / elapsed


def raw_read_seconds(path: str, rows: int) -> float:
    """Median seconds of one ``SELECT`` of ``rows`` small rows (what a wave's logs need)."""
    conn = raw_connection(path)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO ops VALUES (?, ?, 'SUSPENDED', ?, ?, ?)",
                     [(f"wave/{i}", "1", b"x" * 16, 0.0, 0.0) for i in range(rows)])
    conn.execute("COMMIT")
    samples = []
    for _ in range(7):
        started = time.perf_counter()
        found = conn.execute("SELECT * FROM ops WHERE branch_id LIKE 'wave/%'").fetchall()
        samples.append(time.perf_counter() - started)
        assert len(found) == rows
    conn.close()
    return statistics.median(samples)


def _echo(conn: Any) -> None:
    while True:
        message = cloudpickle.loads(conn.recv_bytes())
        if message is None:
            return
        conn.send_bytes(cloudpickle.dumps(message))


def raw_pipe_round_trips(asks: int) -> list[float]:
    """Seconds per round trip of a small cloudpickled message over a raw ``multiprocess`` pipe."""
    ctx = multiprocess.get_context("spawn")
    here, there = ctx.Pipe()
    process = ctx.Process(target=_echo, args=(there,))
    process.start()
    samples = []
    for i in range(asks + 200):
        started = time.perf_counter()
        here.send_bytes(cloudpickle.dumps(("step", i, b"x" * PAYLOAD_BYTES)))
        cloudpickle.loads(here.recv_bytes())
        if i >= 200:
            samples.append(time.perf_counter() - started)
    here.send_bytes(cloudpickle.dumps(None))
    process.join()
    return samples


__all__ = ["PIPELINE_WINDOW", "RAW_BATCH", "batched_rows_rate", "raw_batch_rate", "raw_commits",
           "raw_connection", "raw_pipe_round_trips", "raw_pipeline_rate", "raw_read_seconds"]
