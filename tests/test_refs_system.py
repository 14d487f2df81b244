"""Refs on real processes: gating with a paused blob store, dedup, corruption, kill -9."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil
import pytest

from actors import Ref
from actors.errors import BlobCorruptedError
from actors.records import BranchStatus
from actors.refs import Spilled, using_backend
from runtime import ActorSystem, SystemConfig
from runtime.durable import BlobReader, FileBlobStore, blob_dir_for
from runtime.serialization import loads
from runtime.stores import open_store
from runtime.testing import TraceEvents

from ref_branches import (
    SAME_MEGABYTE,
    BigStepThenWait,
    LoadsRefs,
    MutatesAfterSave,
    PollsHoldingARef,
    ReturnsSameMegabyte,
    SavesBig,
    SavesNested,
    SavesUnpicklable,
    big_value,
    rows,
)

pytestmark = pytest.mark.timeout(180)


def start(tmp_path: Path, **options: Any) -> ActorSystem:
    config = SystemConfig(trace_path=str(tmp_path / "trace.jsonl"), **{"workers": 1, **options})
    return ActorSystem(store=f"sqlite:///{tmp_path / 'state.db'}", config=config)


def digest_process(system: ActorSystem) -> psutil.Process:
    """The digest actor's process (starting the system's durable services if needed)."""
    digest = system._services().refs.digest
    return psutil.Process(system.host.pid_of(digest.actor_id))


def stored_order(trace: TraceEvents) -> dict[str, int]:
    """Each digest -> the trace position where its blob was first durable."""
    order: dict[str, int] = {}
    for position, event in enumerate(trace.all()):
        if event.get("event") == "digest.stored":
            order.setdefault(event["digest"], position)
    return order


def refs_in(value: Any) -> list[Ref]:
    """The Refs in a loaded value (lists, tuples, dicts, Spilled wrappers)."""
    if isinstance(value, Ref):
        return [value]
    if isinstance(value, Spilled):
        return [value.ref]
    if isinstance(value, dict):
        return [r for v in value.values() for r in refs_in(v)]
    if isinstance(value, list | tuple):
        return [r for v in value for r in refs_in(v)]
    return []


def assert_every_logged_ref_is_durable(tmp_path: Path, execution_id: str) -> int:
    """Every Ref named by the store's logs loads from the blobs directory, verified."""
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}?mode=ro")
    blobs = FileBlobStore(blob_dir_for(f"sqlite:///{tmp_path / 'state.db'}"), read_only=True)
    named = 0
    try:
        for branch in store.read_branches(execution_id):
            payloads = [branch.result, *(op.payload for op in
                                          store.read_log(branch.branch_id).operations)]
            for payload in payloads:
                for ref in refs_in(loads(payload) if payload else None):
                    blobs.get(ref.digest)  # raises if missing or corrupted
                    named += 1
    finally:
        store.close()
    return named


def no_branch_ended_in_the_store(tmp_path: Path, execution_id: str) -> bool:
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}?mode=ro")
    try:
        return all(b.status not in (BranchStatus.SUCCEEDED, BranchStatus.FAILED)
                   for b in store.read_branches(execution_id))
    finally:
        store.close()


@pytest.mark.parametrize("fork_at", [None, 0], ids=["inline-snapshots", "forked-snapshots"])
@pytest.mark.parametrize("threads", [2, 1], ids=["2-threads", "1-thread"])
def test_a_paused_blob_store_holds_checkpoints_until_released_children_first(
        tmp_path: Path, threads: int, fork_at: int | None) -> None:
    branches = 3 * threads  # more branches than worker threads
    with start(tmp_path, worker_threads=threads, fork_snapshot_bytes=fork_at) as system:
        trace = TraceEvents(tmp_path / "trace.jsonl")
        digest = digest_process(system)
        digest.suspend()  # SIGSTOP: the digest actor stores nothing until SIGCONT
        run = system.map(SavesNested, range(branches), execution_id="paused")
        # Branches' final checkpoints name pending Refs: gated, so no end is durable yet.
        trace.wait_for_count(threads, "checkpoint.gated", timeout=30)
        assert no_branch_ended_in_the_store(tmp_path, "paused")
        digest.resume()
        result = run.result(timeout=60)
    assert result.succeeded == branches
    stored, events = stored_order(trace), trace.all()
    for seed, top in enumerate(result.values()):
        parent = top.get()["parent"]
        child = parent.get()["child"]
        assert child.get() == rows(seed)
        assert stored[child.digest] < stored[parent.digest] < stored[top.digest]
    released = [(i, e) for i, e in enumerate(events) if e.get("event") == "checkpoint.released"]
    assert len(released) >= branches
    for position, event in released:
        assert all(stored[d] < position for d in event["digests"])
    assert assert_every_logged_ref_is_durable(tmp_path, "paused") >= branches


def test_a_thousand_branches_returning_the_same_megabyte_store_it_once(tmp_path: Path) -> None:
    config = SystemConfig(workers=2)
    with ActorSystem(store=f"sqlite:///{tmp_path / 'state.db'}", config=config) as system:
        result = system.map(ReturnsSameMegabyte, range(1000), execution_id="same").result(240)
        metrics = system.metrics()
        refs = result.values()
        assert refs[0].get() == SAME_MEGABYTE
    assert len({ref.digest for ref in refs}) == 1
    assert metrics["digest.blobs_written"] == 1
    assert metrics["digest.dedup_hits"] == 999
    blob_files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert len(blob_files) == 1


def test_a_blob_corrupted_on_disk_raises_the_typed_error_when_read(tmp_path: Path) -> None:
    with start(tmp_path) as system:
        ref = system.map(SavesBig, [(1, 1, 4096)]).result(timeout=60).values()[0][0]
        path = FileBlobStore(tmp_path / "blobs", read_only=True).path_of(ref.digest)
        damaged = bytearray(path.read_bytes())
        damaged[100] ^= 0x01
        path.write_bytes(bytes(damaged))
        with pytest.raises(BlobCorruptedError) as raised:
            ref.get()
    assert raised.value.digest == ref.digest


def test_kill_9_of_the_digest_actor_mid_save_redoes_the_saves(tmp_path: Path) -> None:
    items = [(seed, 3, 256 * 1024) for seed in range(4)]
    with start(tmp_path, worker_threads=4) as system:
        trace = TraceEvents(tmp_path / "trace.jsonl")
        system.map(SavesBig, [(9, 1, 10)]).result(timeout=60)  # the worker is connected to it
        digest = digest_process(system)
        digest.suspend()
        run = system.map(SavesBig, items, execution_id="killed")
        trace.wait_for_count(len(items), "checkpoint.gated", timeout=30)  # saves unanswered
        digest.kill()
        result = run.result(timeout=120)
        assert trace.named("digest.resend")
        for (seed, count, size), saved in zip(items, result.values(), strict=True):
            assert [ref.get() for ref in saved] == [big_value(seed * 100 + i, size)
                                                    for i in range(count)]
        assert digest_process(system).pid != digest.pid  # restarted by its supervisor
    assert assert_every_logged_ref_is_durable(tmp_path, "killed") == 12


def test_a_large_step_result_is_stored_as_a_ref_and_the_replay_loads_it(tmp_path: Path) -> None:
    with start(tmp_path, ref_threshold_bytes=4096, suspend_checkpoint_delay=0.0) as system:
        result = system.map(BigStepThenWait, [(7, 400)], execution_id="spill").result(60)
        assert result.values() == [400]
        metrics = system.metrics()
    assert metrics["branch.replays"] >= 1 and metrics["step.executions"] == 1
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}?mode=ro")
    try:
        step = store.read_log("spill/0").operations[0]
        assert store.read_branches("spill")[0].status is BranchStatus.SUCCEEDED
    finally:
        store.close()
    spilled = loads(step.payload or b"")
    assert isinstance(spilled, Spilled) and len(step.payload or b"") < 300
    with using_backend(BlobReader(str(tmp_path / "blobs"))):  # read offline, system gone
        assert spilled.ref.get() == rows(7, 400)


def test_a_large_value_changed_right_after_save_is_stored_as_it_was_at_save(
        tmp_path: Path) -> None:
    with start(tmp_path, worker_threads=4) as system:
        ref, forks = system.map(MutatesAfterSave, [7]).result(timeout=60).values()[0]
    assert forks == 1  # taken by a forked child of the (threaded) worker process
    with using_backend(BlobReader(blob_dir_for(f"sqlite:///{tmp_path / 'state.db'}"))):
        assert ref.get(timeout=10) == {"seed": 7, "rows": rows(7, 20_000)}


def test_a_ref_loads_in_another_actors_process(tmp_path: Path) -> None:
    with start(tmp_path) as system:
        ref = system.map(SavesBig, [(3, 1, 1000)]).result(timeout=60).values()[0][0]
        reader = system.spawn(LoadsRefs, name="reader")
        assert reader.ask(ref, timeout=30) == big_value(300, 1000)


def test_a_suspension_naming_a_pending_ref_is_written_only_once_its_blob_is_durable(
        tmp_path: Path) -> None:
    with start(tmp_path, suspend_checkpoint_delay=0.05) as system:
        trace = TraceEvents(tmp_path / "trace.jsonl")
        digest = digest_process(system)
        digest.suspend()
        run = system.map(PollsHoldingARef, [5], execution_id="poll")
        trace.wait_for("checkpoint.gated", timeout=30)  # the suspension waits for the blob
        digest.resume()
        assert run.result(timeout=60).values() == [rows(5)]
    assert assert_every_logged_ref_is_durable(tmp_path, "poll") >= 1


@pytest.mark.parametrize("where", ["result", "step"])
def test_a_large_value_that_cannot_be_pickled_fails_its_branch_instead_of_replaying_it(
        tmp_path: Path, where: str) -> None:
    from actors.errors import UnserializableValueError

    with start(tmp_path, worker_threads=2) as system:
        result = system.map(SavesUnpicklable, [where]).result(timeout=60)
        runs = system.metrics()["branch.runs"]
    assert result.failed == 1
    error = result.errors[0]
    assert isinstance(error, UnserializableValueError)
    assert "lock" in str(error).lower()
    assert runs <= 1  # failed where it stood: no replay that would fail the same way


def test_a_memory_store_keeps_its_blobs_out_of_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with ActorSystem(store="memory://", config=SystemConfig(workers=1)) as system:
        ref = system.map(SavesBig, [(3, 1, 1000)]).result(timeout=60).values()[0][0]
        assert ref.get(timeout=10) == big_value(300, 1000)
        blob_dir = Path(system._services().refs.blob_dir)
        assert blob_dir.is_dir() and any(blob_dir.rglob("*"))
    assert list(tmp_path.iterdir()) == []  # no ./.durable/ (nor anything else) was written
    assert not blob_dir.exists()  # memory:// keeps nothing: its blobs went with the system


def test_systems_of_one_process_closed_in_the_order_they_started_leave_no_reader_behind(
    tmp_path: Path,
) -> None:
    from actors.refs import current_backend

    first = ActorSystem(store=f"sqlite:///{tmp_path / 'a.db'}", config=SystemConfig(workers=1))
    second = ActorSystem(store=f"sqlite:///{tmp_path / 'b.db'}", config=SystemConfig(workers=1))
    try:
        first.map(SavesBig, [(1, 1, 100)]).result(timeout=60)   # first's Ref services, then
        second.map(SavesBig, [(2, 1, 100)]).result(timeout=60)  # second's, over them
    finally:
        first.shutdown()
        assert isinstance(current_backend(), BlobReader)  # second's, still open
        second.shutdown()
    assert current_backend() is None  # not first's reader, which second had replaced
