"""Refs in one process: snapshot, load, equality, the pending-digest walk, Merkle children."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Collection, Iterator
from typing import Any

import pytest

from actors import BranchActor, BranchContext, InlineHost, Ref
from actors.errors import DigestError, RefUnavailableError
from actors.records import BranchStatus, OpStatus
from actors.refs import (
    DIGEST_BYTES,
    DigestClient,
    InlineRefs,
    PendingDigest,
    current_backend,
    digest_of,
    new_token,
    patch,
    pending_refs,
    save,
    tokens_in,
    using_backend,
)

from conftest import DigestRig, digest_rig, wait_until


@pytest.fixture
def refs() -> Iterator[DigestRig]:
    """A digest actor over a memory store, and a client installed as this process's backend."""
    with digest_rig(DigestRig()) as rig:
        yield rig


class Recording:
    """A backend that keeps what it was asked to save, resolving nothing until told."""

    ref_threshold_bytes = None

    def __init__(self) -> None:
        self.saved: list[tuple[bytes, str, list[PendingDigest]]] = []

    def save(self, data: bytes, codec: str, children: Collection[PendingDigest]) -> PendingDigest:
        self.saved.append((data, codec, list(children)))
        return PendingDigest(new_token())

    def load(self, digest: str) -> bytes:
        raise AssertionError("not loaded in these tests")

    def locator(self) -> None:
        return None


# -- the Ref ------------------------------------------------------------------------------


def test_a_ref_pickles_into_a_small_record_equal_to_it(refs: DigestRig) -> None:
    ref = save(list(range(100_000)))
    data = pickle.dumps(ref)
    assert len(data) < 150
    assert pickle.loads(data) == ref
    assert pickle.loads(data).size == ref.size > 100_000


def test_save_returns_at_once_while_the_blob_store_is_held(refs: DigestRig) -> None:
    refs.blobs.hold()
    ref = save({"a": [1, 2, 3]})
    assert not ref.done
    refs.blobs.release()
    assert ref.digest == digest_of(pickle.dumps({"a": [1, 2, 3]}))


def test_digest_blocks_only_the_caller_who_asks(refs: DigestRig) -> None:
    refs.blobs.hold()
    ref = save({"a": 1})
    answered = threading.Event()
    asker = threading.Thread(target=lambda: (ref.digest, answered.set()))
    asker.start()
    also_saved = save({"b": 2})  # this thread goes on while the asker waits
    assert not answered.is_set() and not also_saved.done
    refs.blobs.release()
    assert answered.wait(5)
    asker.join(5)


def test_mutating_a_saved_object_does_not_change_what_is_stored(refs: DigestRig) -> None:
    value: dict[str, Any] = {"rows": [{"n": 1}], "tags": {"x"}}
    buffer = bytearray(b"abc")
    refs.blobs.hold()
    saved_value, saved_buffer = save(value), save(buffer)
    value["rows"][0]["n"] = 2
    value["rows"].append({"n": 3})
    value["tags"].add("y")
    buffer[0] = ord("X")
    refs.blobs.release()
    assert saved_value.get() == {"rows": [{"n": 1}], "tags": {"x"}}
    assert saved_buffer.get() == bytearray(b"abc")


def test_bytes_are_stored_as_they_are_without_a_copy() -> None:
    backend = Recording()
    payload = b"x" * 1000
    with using_backend(backend):
        ref = save(payload)
    data, codec, _ = backend.saved[0]
    assert data is payload and codec == "bytes" and ref.codec == "bytes"


def test_get_returns_an_equal_new_object_each_time(refs: DigestRig) -> None:
    ref = save({"rows": [1, 2]})
    first = ref.get()
    first["rows"].append(3)
    assert ref.get() == {"rows": [1, 2]}
    assert type(save(bytearray(b"q")).get()) is bytearray


def test_get_verifies_and_caches_the_bytes_it_reads(refs: DigestRig) -> None:
    ref = save({"k": "v"})
    ref.wait(5)
    reader = DigestClient(refs.actor, load_blob=refs.blobs.get)  # a process that never saved it
    try:
        with using_backend(reader):
            assert ref.get() == {"k": "v"} and ref.get() == {"k": "v"}
        assert refs.blobs.reads == 1
    finally:
        reader.close()


def test_equal_values_make_equal_refs(refs: DigestRig) -> None:
    first, second, other = save([1, 2, 3]), save([1, 2, 3]), save([1, 2, 4])
    assert first == second and hash(first) == hash(second)
    assert first != other


def test_a_ref_cannot_load_in_a_process_without_a_blob_store(refs: DigestRig) -> None:
    ref = save("v")
    ref.wait(5)
    with using_backend(None), pytest.raises(RefUnavailableError):  # type: ignore[arg-type]
        ref.get()


def test_a_failed_save_makes_its_ref_raise_digest_error() -> None:
    cell = PendingDigest(new_token())
    ref = Ref(cell, 10, "pickle")
    cell.fail(RuntimeError("disk gone"))
    with pytest.raises(DigestError):
        ref.get()
    with pytest.raises(DigestError):
        pickle.dumps(ref)


# -- nested refs: a Merkle tree --------------------------------------------------------------


def test_a_parent_is_stored_after_its_children_with_their_digests_inside(refs: DigestRig) -> None:
    refs.blobs.hold()
    child = save(["child"])
    parent = save({"child": child})
    assert not parent.done
    refs.blobs.release()
    assert refs.blobs.written == [child.digest, parent.digest]
    assert bytes.fromhex(child.digest) in refs.blobs.blobs[parent.digest]
    assert parent.get()["child"].get() == ["child"]


def test_a_parent_digest_changes_when_a_child_does(refs: DigestRig) -> None:
    one = save({"child": save(["a"])})
    two = save({"child": save(["b"])})
    assert one.digest != two.digest


def test_a_parent_of_a_failed_child_fails_too() -> None:
    failing = PendingDigest(new_token())
    child = Ref(failing, 3, "pickle")
    with digest_rig(DigestRig()) as rig:
        parent = save([child])
        failing.fail(RuntimeError("never stored"))
        with pytest.raises(DigestError):
            parent.wait(5)
        assert rig.blobs.written == []


# -- the pending-digest walk -------------------------------------------------------------------


def test_the_walk_lists_each_unresolved_digest_once() -> None:
    backend = Recording()
    with using_backend(backend):
        a, b = save("a"), save("b")
    copy = Ref(a._cell, a.size, a.codec)  # type: ignore[arg-type]  # another Ref, same save
    found = pending_refs({"x": [a, b, a], "y": (copy, {"z": b})})
    assert [r._cell for r in found] == [a._cell, b._cell]


def test_the_walk_skips_resolved_refs(refs: DigestRig) -> None:
    resolved = save("done")
    resolved.wait(5)
    refs.blobs.hold()
    pending = save("pending")
    assert pending_refs([resolved, pending, resolved]) == [pending]


def test_the_walk_treats_a_ref_as_a_leaf() -> None:
    backend = Recording()
    with using_backend(backend):
        child = save("child")
        parent = save({"child": child})
    assert pending_refs({"p": parent}) == [parent]  # the child is inside the parent's blob


class Node:
    """An object that refers to itself."""

    def __init__(self, ref: Ref) -> None:
        self.me = self
        self.ref = ref


def test_the_walk_terminates_on_self_referencing_values() -> None:
    backend = Recording()
    with using_backend(backend):
        ref = save("x")
    loop: list[Any] = [ref]
    loop.append(loop)
    cycle: dict[str, Any] = {"ref": ref}
    cycle["self"] = cycle
    assert pending_refs(loop) == [ref]
    assert pending_refs(cycle) == [ref]
    assert pending_refs(Node(ref)) == [ref]


def test_placeholders_are_replaced_by_digests_in_one_pass() -> None:
    one, two = new_token(), new_token()
    digests = {one: b"\x01" * DIGEST_BYTES, two: b"\x02" * DIGEST_BYTES}
    data = b"head" + one + b"mid" + two + one + b"tail"
    patched = patch(data, digests)
    assert patched == b"head" + digests[one] + b"mid" + digests[two] + digests[one] + b"tail"
    assert tokens_in(patched) == [] and tokens_in(data) == [one, two, one]


# -- ctx.save and step results in a branch (InlineHost) -------------------------------------


def make_rows(count: int) -> list[dict[str, int]]:
    return [{"i": i, "sq": i * i} for i in range(count)]


class BigStep(BranchActor):
    def run(self, ctx: BranchContext, item: Any) -> int:
        value = ctx.step("make", make_rows, item)
        ctx.wait("pause", seconds=5)
        assert value == make_rows(item)
        return len(value)


class SavesAndReturns(BranchActor):
    def run(self, ctx: BranchContext, item: Any) -> Any:
        return {"ref": ctx.save(make_rows(item))}


def test_a_step_result_over_the_threshold_is_stored_as_a_ref_and_replayed(
        inline_host: InlineHost) -> None:
    with using_backend(InlineRefs(ref_threshold_bytes=1024)) as backend:
        inline_host.start(BigStep, 500, branch_id="b")
        inline_host.run_until_idle()
        logged = inline_host.store.read_log("b").operations[0]
        assert logged.status is OpStatus.SUCCEEDED and len(logged.payload or b"") < 300
        inline_host.advance(5)  # the replay loads the step's value from its Ref
    assert inline_host.outcomes["b"].status is BranchStatus.SUCCEEDED
    assert inline_host.outcomes["b"].result == 500 and inline_host.step_executions == 1
    assert len(backend.blobs.blobs) == 1  # type: ignore[attr-defined]


def test_a_step_result_under_the_threshold_stays_in_the_log(inline_host: InlineHost) -> None:
    with using_backend(InlineRefs(ref_threshold_bytes=1 << 20)) as backend:
        inline_host.start(BigStep, 5, branch_id="b")
        inline_host.run_until_idle()
        inline_host.advance(5)
    assert inline_host.outcomes["b"].result == 5
    assert backend.blobs.blobs == {}  # type: ignore[attr-defined]


def test_ctx_save_in_a_branch_returns_a_ref_to_an_equal_value(inline_host: InlineHost) -> None:
    with using_backend(InlineRefs()):
        inline_host.start(SavesAndReturns, 3, branch_id="b")
        inline_host.run_until_idle()
        ref = inline_host.outcomes["b"].result["ref"]
        assert isinstance(ref, Ref) and ref.get() == make_rows(3)


def test_ctx_save_without_a_digest_actor_says_so(inline_host: InlineHost) -> None:
    assert current_backend() is None
    inline_host.start(SavesAndReturns, 3, branch_id="b")
    inline_host.run_until_idle()
    error = inline_host.outcomes["b"].error
    assert isinstance(error, RefUnavailableError) and "ctx.save" in str(error)


def test_a_ref_resolves_through_the_digest_actor(refs: DigestRig) -> None:
    ref = save({"x": 1})
    wait_until(lambda: ref.done, timeout=5)
    assert refs.metrics()["digest.blobs_written"] == 1


def test_a_failed_save_is_a_checkpoint_error_so_the_run_is_replayed_not_failed() -> None:
    from actors.errors import CheckpointError

    assert issubclass(DigestError, CheckpointError)
