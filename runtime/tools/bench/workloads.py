"""What the durable and PostgreSQL suites drive: branches that step, actors that checkpoint.

Both suites measure the same paths against different stores, so they share the
workloads and the measurement loops: ``steps_beside_commits`` (steps alternating
with a store's raw commits), ``hosted_checkpoint`` (the checkpoint actor the
runtime hosts, with the system's config) and ``producer_throughput``
(acknowledged updates/s from producer processes).

    checkpoint = hosted_checkpoint(system, "sqlite:///bench.db")
    rate, counts = producer_throughput(system, checkpoint, producers=4, per_producer=10_000)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pykka

from actors import BranchActor, BranchContext
from actors.checkpointing._actor import CheckpointActor
from actors.clock import SystemClock
from actors.protocol._checkpoint import Checkpoint, CreateExecution
from actors.records._leases import NewExecution
from actors.records._status import OpKind, OpStatus
from actors.records._updates import OperationUpdate
from runtime.durable._checkpoint_process import StoreCheckpointActor
from runtime.durable._liveness import this_executor
from runtime.stores import open_store
from runtime.system import ActorSystem
from runtime.transport._future import Future, get_all

PAYLOAD_BYTES = 64  # a small step result, on both sides of every throughput comparison
PAYLOAD = b"x" * PAYLOAD_BYTES


def _next(i: int) -> int:
    return i + 1


class SequentialSteps(BranchActor):
    """``item`` steps one after the other; returns each step's latency in seconds."""

    def run(self, ctx: BranchContext, item: Any) -> list[float]:
        samples = []
        for i in range(int(item)):
            started = time.perf_counter()
            ctx.step(f"s{i}", _next, i)
            samples.append(time.perf_counter() - started)
        return samples


def steps_beside_commits(ctx: BranchContext, steps: int, round_size: int,
                         commits: Callable[[int, str], list[float]]) -> dict[str, list[float]]:
    """``steps`` timed steps in rounds of ``round_size``, each round followed by as many raw
    commits (``commits(ops, label)`` gives their times), after 20 warm-up commits."""
    found: dict[str, list[float]] = {"steps": [], "commits": []}
    commits(20, "warm")
    for done in range(0, steps, round_size):
        for i in range(done, min(steps, done + round_size)):
            started = time.perf_counter()
            ctx.step(f"s{i}", _next, i)
            found["steps"].append(time.perf_counter() - started)
        found["commits"] += commits(round_size, f"round-{done}")
    return found


def step_succeeded(branch_id: str, i: int) -> OperationUpdate:
    """The ``i``-th step result of ``branch_id``, as every throughput figure writes it."""
    return OperationUpdate("bench", branch_id, str(i), OpKind.STEP, f"s{i}", OpStatus.SUCCEEDED,
                           attempt=1, payload=PAYLOAD)


class UnfencedCheckpointActor(CheckpointActor):
    """The hosted checkpoint actor as it was before leases: no executor, no fence."""

    def __init__(self, store_url: str) -> None:
        super().__init__(store=open_store(store_url), clock=SystemClock())


class FenceProbe(pykka.ThreadingActor):
    """Sync checkpoints one at a time, alternating rounds between two checkpoint actors."""

    def alternate(self, fenced: Any, plain: Any, rounds: int, per_round: int,
                  ) -> tuple[list[float], list[float]]:
        timings: tuple[list[float], list[float]] = ([], [])
        for r in range(rounds):
            for target in (fenced, plain) if r % 2 == 0 else (plain, fenced):
                side = timings[0] if target is fenced else timings[1]
                for i in range(per_round):
                    reply: Future[Any] = Future()
                    started = time.perf_counter()
                    target.tell(Checkpoint("b", step_succeeded("b", r * per_round + i),
                                           reply_to=reply))
                    reply.get(timeout=60)
                    side.append(time.perf_counter() - started)
        return timings


def hold_bench_execution(checkpoint: Any) -> None:
    """Create the execution the throughput updates belong to: the actor writes it fenced."""
    created: Future[Any] = Future()
    checkpoint.tell(CreateExecution(NewExecution("bench", "map", "bench", b"", ()), created))
    created.get(timeout=60)


class CheckpointProducer(pykka.ThreadingActor):
    """Tells a checkpoint actor ``count`` sync updates and waits for every acknowledgement."""

    def produce(self, checkpoint: Any, branch_id: str, count: int) -> int:
        replies: list[Future[Any]] = []
        for i in range(count):
            reply: Future[Any] = Future()
            checkpoint.tell(Checkpoint(branch_id, step_succeeded(branch_id, i), reply_to=reply))
            replies.append(reply)
        get_all(replies, timeout=300)
        return count


def hosted_checkpoint(system: ActorSystem, store_url: str) -> Any:
    """A ``StoreCheckpointActor`` on ``store_url`` with the system's batching config, fenced
    by a lease of its own and holding the ``bench`` execution every update belongs to."""
    config = system.config
    checkpoint = system.spawn(
        StoreCheckpointActor, store_url, synchronous=config.sqlite_synchronous,
        lock_timeout=config.store_lock_timeout, batching=config.checkpoint_batching,
        executor=this_executor(f"bench-{uuid.uuid4().hex[:6]}"), lease_seconds=60.0,
    )
    hold_bench_execution(checkpoint)
    return checkpoint


def actor_fence_round_trips(system: ActorSystem, fenced_url: str, plain_url: str,
                            rounds: int) -> tuple[list[float], list[float]]:
    """Sync checkpoint round trips through a fenced checkpoint actor on ``fenced_url`` and an
    unfenced one on ``plain_url``, alternating rounds of 50: (fenced, plain) seconds."""
    fenced = hosted_checkpoint(system, fenced_url)
    plain = system.spawn(UnfencedCheckpointActor, plain_url)
    probe = system.spawn(FenceProbe)
    try:
        timings: tuple[list[float], list[float]] = probe.proxy().alternate(
            fenced, plain, rounds, 50).get(timeout=600)
    finally:
        for ref in (probe, fenced, plain):
            ref.stop()
    return timings


def producer_throughput(system: ActorSystem, checkpoint: Any, producers: int,
                        per_producer: int) -> tuple[float, dict[str, int]]:
    """Acknowledged updates/s from ``producers`` processes into ``checkpoint`` (after a
    warm-up of 500 each), and how its counters moved meanwhile."""
    refs = [system.spawn(CheckpointProducer) for _ in range(producers)]
    proxies = [ref.proxy() for ref in refs]
    try:
        get_all([p.produce(checkpoint, f"warm-{i}", 500) for i, p in enumerate(proxies)])
        before: dict[str, int] = checkpoint.proxy().metrics().get(timeout=30)
        started = time.perf_counter()
        get_all([p.produce(checkpoint, f"rate-{i}", per_producer)
                 for i, p in enumerate(proxies)])
        elapsed = time.perf_counter() - started
        after: dict[str, int] = checkpoint.proxy().metrics().get(timeout=30)
    finally:
        for ref in refs:
            ref.stop()
    counts = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    counts["producers"] = producers
    return producers * per_producer / elapsed, counts


__all__ = ["PAYLOAD", "PAYLOAD_BYTES", "CheckpointProducer", "FenceProbe", "SequentialSteps",
           "UnfencedCheckpointActor", "actor_fence_round_trips", "hold_bench_execution",
           "hosted_checkpoint", "producer_throughput", "step_succeeded", "steps_beside_commits"]
