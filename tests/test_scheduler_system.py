"""Deferred checkpoints and durable timers, in a real system; timers that outlive a restart
and a wave of them, on each store (``store_url``)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from runtime import ActorSystem, SystemConfig
from runtime.stores import open_store, read_only_url

from branch_kinds import Kind
from branches_for_tests import WaitsThenStamps, WavePart
from conftest import wait_until

pytestmark = pytest.mark.timeout(120)


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def test_a_short_wait_resumes_in_place_without_write_eviction_or_replay(
    tmp_path: Path, kind: Kind
) -> None:
    config = SystemConfig(workers=1, suspend_checkpoint_delay=1.0)
    with ActorSystem(store=sqlite_url(tmp_path), config=config) as system:
        system.map(kind(WaitsThenStamps), [0.05]).result(timeout=60)
        metrics = system.metrics()
    assert metrics["scheduler.deferred"] == 1
    assert metrics["scheduler.cancelled"] == 1
    assert metrics["scheduler.applied"] == 0
    assert metrics["branch.evictions"] == 0
    assert metrics["branch.replays"] == 0


def test_a_long_wait_is_written_evicted_and_replayed_once(tmp_path: Path, kind: Kind) -> None:
    config = SystemConfig(workers=1, suspend_checkpoint_delay=0.05)
    with ActorSystem(store=sqlite_url(tmp_path), config=config) as system:
        system.map(kind(WaitsThenStamps), [0.6]).result(timeout=60)
        metrics = system.metrics()
    assert metrics["scheduler.applied"] == 1
    assert metrics["branch.evictions"] == 1
    assert metrics["branch.replays"] == 1


def test_timers_survive_a_restart_and_fire_at_their_due_times(
    store_url: str, kind: Kind
) -> None:
    count, pause = 100, 3.0
    config = SystemConfig(workers=2, suspend_checkpoint_delay=0)  # every wait is written
    with ActorSystem(store=store_url, config=config) as first:
        run = first.map(kind(WaitsThenStamps), [pause] * count, execution_id="timers-1")
        wait_until(lambda: run.progress()["suspended"] == count, timeout=60)
    reader = open_store(read_only_url(store_url))
    due = {b.branch_id: reader.read_log(b.branch_id).operations[0].due_at
           for b in reader.read_branches("timers-1")}
    reader.close()
    assert time.time() < min(d for d in due.values() if d is not None)  # stopped before any fired
    with ActorSystem(store=store_url, config=config) as second:
        run = second.map(kind(WaitsThenStamps), [pause] * count, execution_id="timers-1")
        assert run.started == "resumed"
        woke = run.result(timeout=60).values()
        replays = second.metrics()["branch.replays"]
    late = [w - due[f"timers-1/{i}"] for i, w in enumerate(woke)]  # type: ignore[operator]
    assert min(late) >= 0  # none resumed early
    assert max(late) < 1.0  # and none missed (the bench reports the figure in ms)
    assert replays == count  # each one replayed once, when due: not at the restart


def test_a_wave_of_timers_costs_one_store_call_for_its_empty_checkpoints(
    store_url: str, kind: Kind
) -> None:
    count = 300
    config = SystemConfig(workers=2, suspend_checkpoint_delay=0)
    with ActorSystem(store=store_url, config=config) as system:
        target = time.time() + 4.0
        run = system.map(kind(WavePart), [(i, target) for i in range(count)])
        wait_until(lambda: run.progress()["suspended"] == count, timeout=60)
        assert time.time() < target, "the wave came due before every branch had suspended"
        before = system.metrics()
        assert run.result(timeout=60).values() == list(range(count))
        after = system.metrics()
    empties = after["checkpoint.empty_requests"] - before["checkpoint.empty_requests"]
    answered_by = after["checkpoint.empty_batches"] - before["checkpoint.empty_batches"]
    assert empties == count
    assert answered_by <= 2  # one store call; two if the wave straddles a flush


def test_each_worker_parks_up_to_its_own_bound(tmp_path: Path, kind: Kind) -> None:
    from branches_for_tests import WaitsOnOneChild

    # Two workers, each may park 2: four parents whose children take a while all park.
    config = SystemConfig(workers=2, worker_threads=4, max_parked=2, max_parked_coroutines=2,
                          suspend_checkpoint_delay=5.0)
    with ActorSystem(store=sqlite_url(tmp_path), config=config) as system:
        system.map(kind(WaitsOnOneChild), [0.3] * 4, max_concurrency=4).result(timeout=60)
        metrics = system.metrics()
    assert metrics["scheduler.deferred"] == 4
    assert metrics["scheduler.applied"] == 0


def test_async_branches_park_as_coroutines_past_the_thread_bound(tmp_path: Path) -> None:
    # One worker of 2 threads that may park none on them: 60 async waits all park anyway.
    config = SystemConfig(workers=1, worker_threads=2, max_parked=0, suspend_checkpoint_delay=5.0)
    with ActorSystem(store=sqlite_url(tmp_path), config=config) as system:
        system.map(Kind.ASYNC(WaitsThenStamps), [0.2] * 60).result(timeout=60)
        metrics = system.metrics()
    assert (metrics["scheduler.deferred"], metrics["scheduler.cancelled"]) == (60, 60)
    assert (metrics["scheduler.applied"], metrics["branch.evictions"]) == (0, 0)


def test_past_the_coroutine_bound_an_async_suspension_is_applied_at_once(tmp_path: Path) -> None:
    config = SystemConfig(workers=1, max_parked_coroutines=0, suspend_checkpoint_delay=5.0)
    with ActorSystem(store=sqlite_url(tmp_path), config=config) as system:
        system.map(Kind.ASYNC(WaitsThenStamps), [0.2] * 3).result(timeout=60)
        metrics = system.metrics()
    assert (metrics["scheduler.applied"], metrics["branch.evictions"]) == (3, 3)
    assert metrics["scheduler.cancelled"] == 0
