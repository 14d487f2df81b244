"""Copy-on-write snapshots: large values saved through a forked child, in one process."""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from actors import Ref
from actors.errors import SnapshotError
from actors.refs import ForkSnapshots, PendingDigest, estimated_bytes, save, using_backend

from conftest import DigestRig, digest_rig

pytestmark = pytest.mark.timeout(60)

THRESHOLD = 20_000  # estimated pickled bytes; the values below are well over it, or well under


def rows(seed: int, count: int = 1000) -> list[dict[str, Any]]:
    return [{"id": seed * 10_000 + i, "name": f"row-{i}", "tags": ["a", str(i % 7)]}
            for i in range(count)]


class Forked(DigestRig):
    """A ``DigestRig`` whose client forks for values over THRESHOLD."""

    def __init__(self) -> None:
        super().__init__(fork_snapshot_bytes=THRESHOLD)
        assert self.client.snapshots is not None
        self.snapshots: ForkSnapshots = self.client.snapshots
        # Pickling assumed slow: every value over THRESHOLD is worth a fork whatever one costs
        # here (the test that weighs the two sets its own figures).
        self.snapshots.pickle_rate = 1.0


@pytest.fixture
def forked() -> Iterator[Forked]:
    with digest_rig(Forked()) as rig:
        yield rig


class PicklesWhenSignalled:
    """Pickles (as a plain string) only once ``signal`` was called: the test orders the child."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()

    def signal(self) -> None:
        os.write(self._write, b"x")

    def __reduce__(self) -> tuple[Any, ...]:
        os.read(self._read, 1)  # in the child: blocks until the parent has signalled
        return (str, ("signalled",))


class DiesWhenPickled:
    def __reduce__(self) -> tuple[Any, ...]:
        os._exit(3)


class HangsWhenPickled:
    def __reduce__(self) -> tuple[Any, ...]:
        threading.Event().wait()  # a lock some other thread held at the fork, say
        raise AssertionError("unreachable")


def collect(snapshots: ForkSnapshots) -> tuple[list[Any], Any]:
    """A ``deliver`` for a bare ``ForkSnapshots`` that records what the child sent."""
    delivered: list[Any] = []

    def deliver(cell: PendingDigest, data: bytes, children: list[PendingDigest]) -> None:
        delivered.append((data, children))
        cell.resolve(b"\0" * 32)

    return delivered, deliver


def reaped(pid: int) -> bool:
    """Whether this process's child ``pid`` has exited *and* been waited for (no zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


# -- which path ---------------------------------------------------------------------------------


def test_a_large_value_is_snapshotted_by_a_forked_child(forked: Forked) -> None:
    value = rows(1)
    ref = save(value)
    assert forked.snapshots.forks == 1
    assert ref.get(timeout=10) == value
    assert ref.size == len(pickle.dumps(value))


def test_a_small_value_keeps_the_inline_snapshot(forked: Forked) -> None:
    ref = save(rows(1, count=10))
    assert ref._size is not None  # known at save: serialized on this thread
    assert ref.get(timeout=10) == rows(1, count=10)
    assert forked.snapshots.forks == 0


def test_bytes_never_fork_whatever_their_size(forked: Forked) -> None:
    ref = save(b"x" * (10 * THRESHOLD))
    assert ref.get(timeout=10) == b"x" * (10 * THRESHOLD)
    assert forked.snapshots.forks == 0


def test_where_forking_costs_more_than_pickling_large_values_stay_inline(
        forked: Forked) -> None:
    snapshots = forked.snapshots
    snapshots.pickle_rate = 60e6
    save(rows(1))  # the first large value forks: that is how the fork's cost is learned
    assert snapshots.forks == 1 and snapshots.fork_cost is not None
    snapshots.fork_cost = 1.0  # a process so big that a fork takes a second
    ref = save(rows(2))
    assert snapshots.forks == 1  # pickled here, as a fork would have cost more
    assert ref._size is not None and ref.get(timeout=10) == rows(2)


def test_the_pickling_rate_is_learned_from_inline_snapshots() -> None:
    snapshots = ForkSnapshots(min_bytes=THRESHOLD, pickle_rate=1e12)
    try:
        snapshots.fork_cost = 0.001
        assert not snapshots.worth_forking(10 * THRESHOLD)  # at 1 TB/s pickling is free
        for _ in range(100):
            snapshots.observe_inline(10 * THRESHOLD, 0.1)  # 10 × 256 KiB in 100 ms
        assert snapshots.pickle_rate == pytest.approx(10 * THRESHOLD / 0.1, rel=0.01)
        assert snapshots.worth_forking(10 * THRESHOLD)  # 100 ms inline against a 1 ms fork
    finally:
        snapshots.close()


def test_the_size_estimate_is_within_a_factor_of_two_for_nested_rows() -> None:
    value = {"meta": {"seed": 1}, "rows": rows(1, count=5000)}
    actual = len(pickle.dumps(value))
    assert actual / 2 < estimated_bytes(value) < actual * 2


# -- what is stored -----------------------------------------------------------------------------


def test_mutating_a_large_value_after_save_does_not_change_what_is_stored(
        forked: Forked) -> None:
    gate = PicklesWhenSignalled()
    value: dict[str, Any] = {"rows": rows(2), "gate": gate, "tags": {"x"}}
    ref = save(value)
    value["rows"][0]["name"] = "changed"  # all of this happens before the child pickles
    value["rows"].append({"id": -1})
    value["tags"].add("y")
    del value["gate"]
    gate.signal()
    assert ref.get(timeout=10) == {"rows": rows(2), "gate": "signalled", "tags": {"x"}}
    assert forked.snapshots.forks == 1


def test_a_pending_ref_inside_a_forked_snapshot_is_patched_in_before_it_is_stored(
        forked: Forked) -> None:
    forked.blobs.hold()
    child = save(rows(3, count=5))  # small: inline, and pending while the store is held
    parent = save({"child": child, "rows": rows(4)})
    assert parent.size > 0  # the child has serialized it; the store is still held
    assert not child.done and not parent.done
    forked.blobs.release()
    loaded = parent.get(timeout=10)
    assert loaded["child"] == child
    assert loaded["child"].get(timeout=10) == rows(3, count=5)
    assert forked.snapshots.forks == 1


def test_a_ref_from_a_forked_snapshot_pickles_with_its_size_once_taken(forked: Forked) -> None:
    ref = save(rows(5))
    copy = pickle.loads(pickle.dumps(ref))  # a message: waits for the digest, size included
    assert copy == ref
    assert copy.size == ref.size == len(pickle.dumps(rows(5)))


# -- when the child fails -----------------------------------------------------------------------


def test_a_value_the_child_cannot_pickle_fails_its_ref_with_snapshot_error(
        forked: Forked) -> None:
    ref = save({"rows": rows(6), "lock": threading.Lock()})
    with pytest.raises(SnapshotError, match="could not be serialized: TypeError"):
        ref.wait(10)
    with pytest.raises(SnapshotError):
        assert ref.size  # the size is never known either


def test_a_child_that_dies_fails_its_ref_and_is_reaped() -> None:
    snapshots = ForkSnapshots(min_bytes=THRESHOLD)
    _, deliver = collect(snapshots)
    try:
        cell = snapshots.take({"rows": rows(7), "x": DiesWhenPickled()}, pickle.dumps, deliver)
        assert cell is not None
        pid = snapshots.last_pid
        with pytest.raises(SnapshotError, match="exit status 3"):
            cell.wait(10)
        assert snapshots.failures == 1
        assert reaped(pid)
    finally:
        snapshots.close()


def test_a_child_that_hangs_past_its_deadline_is_killed_and_its_ref_fails() -> None:
    snapshots = ForkSnapshots(min_bytes=THRESHOLD, deadline=0.5)
    _, deliver = collect(snapshots)
    try:
        cell = snapshots.take({"rows": rows(8), "x": HangsWhenPickled()}, pickle.dumps, deliver)
        assert cell is not None
        pid = snapshots.last_pid
        with pytest.raises(SnapshotError, match=r"did not finish within 0\.5 s"):
            cell.wait(10)
        assert reaped(pid)
    finally:
        snapshots.close()


def test_a_failed_snapshot_leaves_the_next_save_working(forked: Forked) -> None:
    broken = save({"rows": rows(9), "x": DiesWhenPickled()})
    with pytest.raises(SnapshotError):
        broken.wait(10)
    assert save(rows(10)).get(timeout=10) == rows(10)
    assert forked.snapshots.forks == 2


def test_closing_the_client_kills_a_child_still_serializing() -> None:
    forked = Forked()
    gate = PicklesWhenSignalled()  # never signalled: the child waits until it is killed
    try:
        with using_backend(forked.client):
            ref = save({"rows": rows(11), "gate": gate})
        assert isinstance(ref, Ref)
        forked.client.close()
        with pytest.raises(SnapshotError, match="died"):
            ref.wait(10)
    finally:
        forked.client.close()
        forked.actor.stop()
