"""Durable-execution benchmarks, each beside a raw baseline measured in the same run.

* **Sequential step latency**: one branch calls ``ctx.step`` in a loop; each
  step is one sync checkpoint (branch thread → checkpoint process → SQLite
  commit → reply). Baseline: the two things it cannot avoid, measured raw here —
  one ``INSERT`` + ``COMMIT`` in WAL with ``synchronous=FULL`` and one raw
  ``multiprocess`` pipe round trip of cloudpickle bytes (sum of the medians).
  The branch itself alternates rounds of 50 steps with 50 raw commits to a file
  of its own in the same directory, so both sides meet the same disk: a FULL
  commit's fsync drifts by tens of percent within a minute.
* **Checkpoint throughput**: several producer processes (``system.spawn``) tell
  a ``StoreCheckpointActor`` — the class the runtime hosts, with the same
  config — sync ``Checkpoint`` messages, each with its own ``Future``, and wait
  for every acknowledgement. Baseline: raw ``executemany`` of 250 rows per
  transaction with ``FULL``. Also shown: the same store path driven end to end
  by branches (many concurrent branches, sequential steps each).
* **Raw pipeline**: the throughput floor with no framework at all, for updates
  that each travel as a message of their own (as a branch's step does): the
  same producer processes and count over raw ``multiprocess`` pipes of
  cloudpickle bytes into one process that commits ``executemany`` batches of
  250 and acknowledges each producer's share of a batch in one message.
* **Checkpoint throughput, in-process**: the same ``CheckpointActor`` and SQLite
  store told sync updates from a thread of its own process, so the gap to raw
  ``executemany`` splits into the actor and store's own cost and the transport's.
* **Resume wave**: N branches each ``ctx.wait`` until one shared wall-clock
  instant (the item). Counted between a ``metrics()`` taken once all are
  suspended and one taken when the execution has finished: store calls that
  answered the wave's empty checkpoints (``checkpoint.empty_batches``) and all
  store calls; and the time from the due instant to the last branch released
  (each branch returns ``time.time()`` read right after its wait returned).
  Baseline for the time: one raw SQLite read of N rows.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any

import pykka

from actors import BranchActor, BranchContext
from actors.checkpointing import BatchingPolicy, CheckpointActor
from actors.clock import SystemClock
from actors.protocol._checkpoint import Checkpoint
from actors.records._status import OpKind
from runtime.config import SystemConfig
from runtime.stores.sqlite import SqliteStore
from runtime.system import ActorSystem
from runtime.tools.bench.raw_baselines import (
    RAW_BATCH,
    raw_batch_rate,
    raw_commits,
    raw_connection,
    raw_pipe_round_trips,
    raw_pipeline_rate,
    raw_read_seconds,
)
from runtime.tools.bench.report import Figure, moved
from runtime.tools.bench.workloads import (
    SequentialSteps,
    actor_fence_round_trips,
    hosted_checkpoint,
    producer_throughput,
    step_succeeded,
    steps_beside_commits,
)

_SHOWN = ("checkpoint.", "branch.", "step.")  # counters the progress lines report


class StepsBesideRawCommits(BranchActor):
    """Rounds of ``ROUND`` steps alternating with as many raw commits, in the same process.

    ``item`` is ``(steps, raw_path)``. A FULL commit's fsync drifts by tens of
    percent within a minute; alternating puts both sides under the same disk.
    Returns ``{"steps": [...], "commits": [...]}`` in seconds.
    """

    ROUND = 50

    def run(self, ctx: BranchContext, item: Any) -> dict[str, list[float]]:
        steps, raw_path = item
        conn = raw_connection(raw_path)
        try:  # the warm-up's first commits grow the WAL file
            return steps_beside_commits(ctx, steps, self.ROUND,
                                        lambda ops, label: raw_commits(conn, ops, label))
        finally:
            conn.close()


class WaveBranch(BranchActor):
    """Waits until the wall-clock instant ``item``; returns when it was released.

    The due instant is the input, not a clock read: ``ctx.wait`` logs
    ``due_at = now + seconds`` on the first run and a replay keeps the logged
    one, so every branch's timer lands on ``item`` (up to the µs between the two
    clock reads, which the bench reports as the spread).
    """

    def run(self, ctx: BranchContext, item: Any) -> float:
        ctx.wait("wave", seconds=max(0.0, float(item) - time.time()))
        return time.time()


def _percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct))]


def _delta(after: dict[str, int], before: dict[str, int], name: str) -> int:
    return after.get(name, 0) - before.get(name, 0)


def step_latency(system: ActorSystem, steps: int, raw_path: str) -> dict[str, list[float]]:
    """One branch's per-step seconds, and raw commits' alternating with them (after a warm-up)."""
    system.map(SequentialSteps, [50]).result(timeout=120)
    run = system.map(StepsBesideRawCommits, [(steps, raw_path)])
    found: dict[str, list[float]] = run.result(timeout=600).values()[0]
    return found


def checkpoint_throughput(system: ActorSystem, store_path: str, producers: int,
                          per_producer: int) -> tuple[float, dict[str, int]]:
    """Acknowledged updates/s from ``producers`` processes into a hosted checkpoint actor."""
    checkpoint = hosted_checkpoint(system, f"sqlite:///{store_path}")
    try:
        return producer_throughput(system, checkpoint, producers, per_producer)
    finally:
        checkpoint.stop()


def lease_fence_cost(system: ActorSystem, directory: str, rounds: int
                     ) -> tuple[list[float], list[float]]:
    """Sync checkpoint round trips through a fenced and an unfenced checkpoint actor."""
    return actor_fence_round_trips(system, f"sqlite:///{directory}/fenced.db",
                      f"sqlite:///{directory}/plain.db", rounds)


def checkpoint_throughput_in_process(store_path: str, count: int) -> float:
    """Acknowledged updates/s of a ``CheckpointActor`` told from its own process (no transport).

    Beside the cross-process figure it splits the gap to raw ``executemany``: what
    the actor and the store cost per update, and what the messages around them do.
    """
    store = SqliteStore(store_path)
    actor = CheckpointActor.start(store=store, clock=SystemClock(),
                                  batching=BatchingPolicy(max_ops=RAW_BATCH))
    try:
        messages, replies = [], []
        for i in range(count):
            reply: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
            update = step_succeeded(f"in-{i % 32}", i)
            messages.append(Checkpoint(update.branch_id, update, reply_to=reply))
            replies.append(reply)
        started = time.perf_counter()
        for message in messages:
            actor.tell(message)
        for reply in replies:
            reply.get(timeout=300)
        return count / (time.perf_counter() - started)
    finally:
        actor.stop()
        store.close()


def branch_step_throughput(system: ActorSystem, branches: int, steps: int) -> float:
    """Steps/s of ``branches`` concurrent branches, each doing ``steps`` sequential steps."""
    started = time.perf_counter()
    system.map(SequentialSteps, [steps] * branches).result(timeout=600)
    return branches * steps / (time.perf_counter() - started)


def resume_wave(system: ActorSystem, store_path: str, n: int) -> dict[str, Any]:
    """One wave of ``n`` timers due at one instant; see the module docstring for what counts."""
    margin = 1.0 + n * 0.003
    for _ in range(4):
        due = time.time() + margin
        run = system.map(WaveBranch, [due] * n, execution_id=f"wave-{uuid.uuid4().hex[:8]}")
        suspended_at = _wait_all_suspended(run, n, deadline=due - 0.2)
        before = system.metrics() if suspended_at is not None else {}
        if suspended_at is None or time.time() >= due - 0.02:
            run.result(timeout=300)  # not all parked before the due instant: a larger margin
            margin *= 2
            continue
        released: list[float] = run.result(timeout=300).values()
        after = system.metrics()
        timers = _logged_due_times(store_path, run.id, n)
        counts = {name: _delta(after, before, name) for name in after}
        return {"due": due, "released": released, "counts": counts, "timers": timers,
                "parked_before_due_s": due - suspended_at}
    raise RuntimeError("the wave's branches never all suspended before their due instant")


def _wait_all_suspended(run: Any, n: int, deadline: float) -> float | None:
    while time.time() < deadline:
        if run.progress()["suspended"] == n:
            return time.time()
        time.sleep(0.01)
    return None


def _logged_due_times(store_path: str, execution_id: str, n: int) -> list[float]:
    """The ``due_at`` each wave branch's timer was logged with (read-only)."""
    store = SqliteStore(store_path, read_only=True)
    try:
        due: list[float] = []
        for i in range(n):
            ops = store.read_log(f"{execution_id}/{i}").operations
            due.extend(op.due_at for op in ops if op.kind is OpKind.WAIT and op.due_at is not None)
        return due
    finally:
        store.close()


def _say(text: str) -> None:
    print(f"  durable: {text}", file=sys.stderr, flush=True)


def run(quick: bool) -> list[Figure]:
    steps = 300 if quick else 1_000
    producers, per_producer = (4, 2_500) if quick else (4, 10_000)
    raw_rows = 10_000 if quick else 40_000
    wave = 300 if quick else 1_000
    branches, branch_steps = (32, 20) if quick else (32, 60)
    directory = tempfile.mkdtemp(prefix="durable-actors-bench-")  # both sides: one filesystem
    try:
        rtts = raw_pipe_round_trips(steps)
        raw_rate = raw_batch_rate(os.path.join(directory, "raw-batch.db"), raw_rows)
        raw_read = raw_read_seconds(os.path.join(directory, "raw-read.db"), wave)
        pipeline = raw_pipeline_rate(os.path.join(directory, "raw-pipeline.db"), producers,
                                     per_producer)
        in_process = checkpoint_throughput_in_process(
            os.path.join(directory, "in-process.db"), producers * per_producer)
        store_path = os.path.join(directory, "state.db")
        with ActorSystem(store=f"sqlite:///{store_path}", config=SystemConfig(workers=2)) as system:
            stepped = step_latency(system, steps, os.path.join(directory, "raw-commit.db"))
            latencies, commits = stepped["steps"], stepped["commits"]
            _say(f"step latency: {len(latencies)} sequential steps in one branch, in rounds "
                 f"of {StepsBesideRawCommits.ROUND} alternating with raw commits")
            rate, rate_counts = checkpoint_throughput(
                system, os.path.join(directory, "throughput.db"), producers, per_producer)
            _say(f"checkpoint throughput: {producers} producers × {per_producer} sync updates; "
                 f"{moved(rate_counts, _SHOWN)}")
            branch_rate = branch_step_throughput(system, branches, branch_steps)
            _say(f"branch steps: {branches} branches × {branch_steps} steps")
            found = resume_wave(system, store_path, wave)
            _say(f"resume wave: {wave} branches; {moved(found['counts'], _SHOWN)}")
            fence = lease_fence_cost(system, directory, 6 if quick else 20)
            _say("lease fence: sync checkpoints alternating between a fenced and an unfenced "
                 "checkpoint actor")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return [*_figures(latencies, commits, rtts, rate, rate_counts, raw_rate, branch_rate,
                      (branches, branch_steps), found, raw_read, in_process, pipeline),
            _fence_figure(fence, statistics.median(latencies))]


def _fence_figure(fence: tuple[list[float], list[float]], step_p50: float) -> Figure:
    fenced, plain = (statistics.median(side) for side in fence)
    return Figure("sync checkpoint p50, lease-fenced (leases on)", "µs", fenced * 1e6,
                  plain * 1e6, "the same checkpoint actor unfenced (the path before leases)",
                  higher_is_better=False, target="≤ 1.10× baseline",
                  extra={"samples_each": len(fence[0]),
                         "fence_cost_us": (fenced - plain) * 1e6,
                         "of_step_p50": (fenced - plain) / step_p50 if step_p50 else 0.0})


def _figures(latencies: list[float], commits: list[float], rtts: list[float], rate: float,
             rate_counts: dict[str, int], raw_rate: float, branch_rate: float,
             branch_shape: tuple[int, int], wave: dict[str, Any],
             raw_read: float, in_process: float, pipeline: float) -> list[Figure]:
    commit_p50, rtt_p50 = statistics.median(commits), statistics.median(rtts)
    latency_extra = {
        "steps": len(latencies), "mean_us": statistics.fmean(latencies) * 1e6,
        "p90_us": _percentile(latencies, 0.9) * 1e6,
        "over_5ms": sum(1 for s in latencies if s > 0.005),
        "raw_commit_p50_us": commit_p50 * 1e6, "raw_rtt_p50_us": rtt_p50 * 1e6,
        "raw_commits": len(commits), "raw_round_trips": len(rtts),
    }
    batches = rate_counts.get("checkpoint.batches", 0)
    updates = rate_counts.get("checkpoint.updates", 0)
    counts, released, due = wave["counts"], wave["released"], wave["due"]
    timers = wave["timers"]
    n = len(released)
    return [
        Figure("step latency p50 (1 branch, sequential)", "µs",
               statistics.median(latencies) * 1e6, (commit_p50 + rtt_p50) * 1e6,
               "raw FULL commit (alternating) + raw pipe RTT, p50s", higher_is_better=False,
               target="≤ 2× baseline", extra=latency_extra),
        Figure("step latency p99 (1 branch, sequential)", "µs",
               _percentile(latencies, 0.99) * 1e6,
               (_percentile(commits, 0.99) + _percentile(rtts, 0.99)) * 1e6,
               "raw FULL commit + raw pipe RTT, p99s", higher_is_better=False),
        Figure(f"checkpoint throughput ({rate_counts['producers']} producer procs)", "updates/s",
               rate, raw_rate, f"raw executemany {RAW_BATCH} rows/txn, FULL",
               higher_is_better=True, target="≥ 0.5× raw",
               extra={"updates": updates, "batches": batches,
                      "mean_batch": updates / batches if batches else 0.0,
                      "store_calls": rate_counts.get("checkpoint.store_calls", 0),
                      "raw_pipeline_updates_per_s": pipeline,
                      "of_raw_pipeline": rate / pipeline}),
        Figure(f"raw pipeline, one update per message ({rate_counts['producers']} procs)",
               "updates/s", pipeline, raw_rate, f"raw executemany {RAW_BATCH} rows/txn, FULL",
               higher_is_better=True,
               extra={"note": "no framework: raw pipes of cloudpickled updates into one "
                              "process committing executemany batches, acks grouped; the "
                              "floor for a design that sends each update as a message"}),
        Figure("checkpoint throughput, actor in-process", "updates/s", in_process, raw_rate,
               f"raw executemany {RAW_BATCH} rows/txn, FULL", higher_is_better=True,
               extra={"note": "the same actor and store told from its own process: "
                              "no pickling, sockets or reply frames"}),
        Figure(f"branch steps/s ({branch_shape[0]} branches × {branch_shape[1]})", "steps/s",
               branch_rate, raw_rate, f"raw executemany {RAW_BATCH} rows/txn, FULL",
               higher_is_better=True,
               extra={"branches": branch_shape[0], "steps_each": branch_shape[1]}),
        Figure(f"resume wave ({n}): store calls answering empties", "calls",
               float(counts.get("checkpoint.empty_batches", 0)), 1.0, "one store call",
               higher_is_better=False, target="1 (≤ 2 if it straddles a flush)",
               absolute_target=2.0,
               extra={"empty_requests": counts.get("checkpoint.empty_requests", 0),
                      "store_calls_total": counts.get("checkpoint.store_calls", 0),
                      "batches_total": counts.get("checkpoint.batches", 0),
                      "updates": counts.get("checkpoint.updates", 0),
                      "replays": counts.get("branch.replays", 0),
                      "due_spread_us": (max(timers) - min(timers)) * 1e6,
                      "timers_over_1ms_late": sum(1 for t in timers if t - due > 0.001)}),
        Figure(f"resume wave ({n}): due → last released", "ms", (max(released) - due) * 1e3,
               raw_read * 1e3, f"raw SQLite read of {n} rows", higher_is_better=False,
               target="≤ 100 ms", absolute_target=100.0,
               extra={"first_released_ms": (min(released) - due) * 1e3,
                      "p50_released_ms": (statistics.median(released) - due) * 1e3,
                      "last_timer_after_due_us": (max(timers) - due) * 1e6,
                      "parked_before_due_s": wave["parked_before_due_s"]}),
    ]


__all__ = ["StepsBesideRawCommits", "WaveBranch", "run", "step_latency"]
