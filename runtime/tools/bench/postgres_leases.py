"""What leases cost and what NOTIFY saves on PostgreSQL; figures of the ``postgres`` suite.

* **Fence cost**: sync checkpoints through a hosted checkpoint actor that
  fences its batches by a held lease, beside one that does not (the durable
  suite's probe, on PostgreSQL). And at the store: ``PostgresStore.commit`` of
  one step fenced (``durable_actors_fence`` locks and checks the execution in
  the upsert's own statement) beside the same commit unfenced, and a batch of
  8 steps likewise. Rounds of 50 alternate so that both sides see the same
  server.
* **Callback resumed from another system**: system A runs a branch that waits
  on a callback; system B completes it. Measured from B's ``complete_callback``
  returning to A's ``result()`` returning, with A listening to the store's
  notifications (as the runtime does on PostgreSQL), beside A without the
  listener (it then learns of the callback at its next lease round, every
  ``lease_seconds / 3``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

from actors import BranchActor, BranchContext
from actors.records import LeaseFence, NewExecution, OperationUpdate, OpKind, OpStatus
from runtime.config import SystemConfig
from runtime.durable import _services as durable
from runtime.stores.postgres import PostgresStore
from runtime.system import ActorSystem
from runtime.testing import wait_until
from runtime.tools.bench.report import Figure
from runtime.tools.bench.workloads import actor_fence_round_trips

LEASE_SECONDS = 3.0  # rounds every second: the baseline's wait is half of that on average
_ROUND = 50


def _op(execution_id: str, branch: str, i: int) -> OperationUpdate:
    return OperationUpdate(execution_id, branch, str(i), OpKind.STEP, f"s{i}",
                           OpStatus.SUCCEEDED, attempt=1, payload=b"x" * 64)


def fence_cost(url: str, commits: int) -> dict[str, list[float]]:
    """Seconds per commit: one step or 8, fenced or not, alternating in rounds of 50."""
    store = PostgresStore(url)
    claim = store.create_execution(NewExecution("fenced", "map", "bench", b"", ()), "bench",
                                   3600.0, time.time())
    assert claim.lease is not None
    fence = LeaseFence("bench", {"fenced": claim.lease.epoch})
    found: dict[str, list[float]] = {k: [] for k in ("one", "one_fenced", "eight",
                                                     "eight_fenced")}
    sequence = iter(range(10 ** 9))
    try:
        for _ in range(0, commits, _ROUND):
            for kind, samples in found.items():
                size = 1 if kind.startswith("one") else 8
                fenced = fence if kind.endswith("fenced") else None
                for _ in range(_ROUND):
                    batch = [_op("fenced", f"b{i % 16}", next(sequence)) for i in range(size)]
                    started = time.perf_counter()
                    store.commit(batch, [], time.time(), fence=fenced)
                    samples.append(time.perf_counter() - started)
    finally:
        store.close()
    return found


def actor_fence_cost(system: ActorSystem, fenced_url: str, plain_url: str,
                     rounds: int) -> tuple[list[float], list[float]]:
    """Sync checkpoint round trips through a fenced and an unfenced PostgreSQL checkpoint
    actor, alternating rounds of 50 (the durable suite's probe, on this store)."""
    return actor_fence_round_trips(system, fenced_url, plain_url, rounds)


def publish(path: str, callback_id: str) -> str:
    with open(path, "a", encoding="utf-8") as out:
        out.write(callback_id + "\n")
    return callback_id


class AwaitsCallback(BranchActor):
    """Publishes a callback id (to the file ``item`` names) and returns its outcome."""

    def run(self, ctx: BranchContext, item: Any) -> Any:
        callback = ctx.create_callback("bench")
        ctx.step("publish", publish, item, callback.id)
        return ctx.wait_for_callback(callback)


@contextlib.contextmanager
def _without_store_notifications() -> Iterator[None]:
    """Systems started inside never listen to the store (the baseline)."""
    listen = durable.__dict__["listen_for_changes"]
    setattr(durable, "listen_for_changes", lambda url, on_change: None)  # noqa: B010
    try:
        yield
    finally:
        setattr(durable, "listen_for_changes", listen)  # noqa: B010


def callback_resume(url: str, rounds: int, notified: bool) -> list[float]:
    """Seconds from another system's ``complete_callback`` to the owner's ``result()``."""
    config = SystemConfig(workers=1, lease_seconds=LEASE_SECONDS)
    samples: list[float] = []
    directory = tempfile.mkdtemp(prefix="durable-actors-bench-callback-")
    quiet = contextlib.nullcontext() if notified else _without_store_notifications()
    with ActorSystem(store=url, config=config) as other, quiet, \
            ActorSystem(store=url, config=config) as owner:
        for i in range(rounds + 1):  # the first one warms both systems up
            path = os.path.join(directory, f"ids-{i}")
            run = owner.map(AwaitsCallback, [path],
                            execution_id=f"callback-{uuid.uuid4().hex[:8]}")
            wait_until(lambda path=path: os.path.exists(path), timeout=60)  # type: ignore[misc]
            wait_until(lambda run=run: run.progress()["suspended"] == 1,  # type: ignore[misc]
                       timeout=60)
            with open(path, encoding="utf-8") as ids:
                callback_id = ids.read().strip()
            other.complete_callback(callback_id, i)
            started = time.perf_counter()
            run.result(timeout=60)
            if i:
                samples.append(time.perf_counter() - started)
    shutil.rmtree(directory, ignore_errors=True)
    return samples


def figures(fence: dict[str, list[float]], actor: tuple[list[float], list[float]],
            resumed: dict[str, list[float]]) -> list[Figure]:
    p50 = statistics.median
    return [
        Figure("sync checkpoint p50 on PostgreSQL, lease-fenced (leases on)", "µs",
               p50(actor[0]) * 1e6, p50(actor[1]) * 1e6,
               "the same checkpoint actor unfenced (the path before leases)",
               higher_is_better=False, target="≤ 1.10× baseline",
               extra={"samples_each": len(actor[0])}),
        Figure("fenced 1-step commit p50 (PostgreSQL)", "µs", p50(fence["one_fenced"]) * 1e6,
               p50(fence["one"]) * 1e6, "the same commit unfenced", higher_is_better=False,
               extra={"commits_each": len(fence["one"]),
                      "note": "one statement either way: the fence is the upsert's FROM"}),
        Figure("fenced 8-step batch commit p50 (PostgreSQL)", "µs",
               p50(fence["eight_fenced"]) * 1e6, p50(fence["eight"]) * 1e6,
               "the same batch unfenced", higher_is_better=False,
               extra={"commits_each": len(fence["eight"])}),
        Figure(f"callback completed on another system → branch resumed p50 (PostgreSQL, "
               f"lease_seconds={LEASE_SECONDS:g})", "ms", p50(resumed["notified"]) * 1e3,
               p50(resumed["polled"]) * 1e3, "the owner without LISTEN/NOTIFY (next lease round)",
               higher_is_better=False,
               extra={"rounds_each": len(resumed["notified"]),
                      "max_notified_ms": max(resumed["notified"]) * 1e3,
                      "max_polled_ms": max(resumed["polled"]) * 1e3}),
    ]


__all__ = ["AwaitsCallback", "callback_resume", "fence_cost", "figures"]
