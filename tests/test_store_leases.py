"""The lease half of the store contract: executors, claims, fencing, renewals, signals.

Every store implements the same rules (``actors.records``); each test runs on
each store: memory, SQLite and PostgreSQL (``conftest.contract_store``).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.errors import ExecutorConflictError, LeaseLostError, UnknownExecutionError
from actors.policies import BatchResult, BatchStatus
from actors.records import (
    BranchInput,
    BranchStatus,
    BranchUpdate,
    ExecutionStatus,
    ExecutionUpdate,
    ExecutorInfo,
    LeaseFence,
    NewExecution,
    OperationUpdate,
    OpKind,
    OpStatus,
    SignalKind,
)
from actors.store import Store

from conftest import STORE_KINDS, contract_store

LEASE = 10.0
T0 = 1_000.0


@pytest.fixture(params=["memory", *STORE_KINDS])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    found = contract_store(request.param, request, tmp_path)
    yield found
    found.close()


def new_execution(eid: str = "e1", branches: int = 2, spec: bytes | None = b"spec",
                  deadline_at: float | None = None) -> NewExecution:
    return NewExecution(eid, "map", "fp-1", spec or b"",
                        tuple(BranchInput(f"{eid}/{i}", i, pickle.dumps(i))
                              for i in range(branches)), deadline_at)


def step(eid: str, branch: str, op: str = "1", status: OpStatus = OpStatus.SUCCEEDED,
         payload: bytes | None = b"v", kind: OpKind = OpKind.STEP) -> OperationUpdate:
    return OperationUpdate(eid, branch, op, kind, "s", status, payload=payload)


def test_creating_an_execution_leases_it_to_its_creator_with_its_branches(store: Store) -> None:
    claim = store.create_execution(new_execution(deadline_at=T0 + 60), "a", LEASE, T0)
    assert claim.created and claim.lease is not None
    assert (claim.lease.owner, claim.lease.epoch, claim.lease.expires_at) == ("a", 1, T0 + LEASE)
    record = store.read_execution("e1")
    assert record is not None
    assert (record.status, record.owner, record.lease_epoch, record.fingerprint,
            record.deadline_at, record.branch_count) == (
        ExecutionStatus.RUNNING, "a", 1, "fp-1", T0 + 60, 2)
    branches = store.read_branches("e1")
    assert [(b.branch_id, b.index, b.status) for b in branches] == [
        ("e1/0", 0, BranchStatus.PENDING), ("e1/1", 1, BranchStatus.PENDING)]
    assert pickle.loads(branches[1].input or b"") == 1


def test_creating_an_existing_id_writes_nothing_and_says_what_is_stored(store: Store) -> None:
    store.create_execution(new_execution(), "a", LEASE, T0)
    claim = store.create_execution(new_execution(branches=5), "b", LEASE, T0 + 1)
    assert not claim.created and claim.lease is None
    assert (claim.record.owner, claim.record.branch_count) == ("a", 2)
    assert len(store.read_branches("e1")) == 2


def test_a_live_lease_of_another_executor_cannot_be_claimed(store: Store) -> None:
    store.create_execution(new_execution(), "a", LEASE, T0)
    claim = store.claim_execution("e1", "b", LEASE, T0 + LEASE - 0.1)
    assert claim.lease is None and claim.record.owner == "a"


def test_an_expired_lease_is_claimed_at_the_next_epoch(store: Store) -> None:
    store.create_execution(new_execution(), "a", LEASE, T0)
    claim = store.claim_execution("e1", "b", LEASE, T0 + LEASE + 0.1)
    assert claim.lease is not None and (claim.lease.owner, claim.lease.epoch) == ("b", 2)
    record = store.read_execution("e1")
    assert record is not None and (record.owner, record.lease_epoch) == ("b", 2)


def test_an_executor_claims_its_own_earlier_lease_at_once_fencing_its_earlier_life(
        store: Store) -> None:
    store.create_execution(new_execution(), "a", LEASE, T0)
    claim = store.claim_execution("e1", "a", LEASE, T0 + 1)
    assert claim.lease is not None and claim.lease.epoch == 2


def test_a_finished_execution_is_never_claimed(store: Store) -> None:
    store.create_execution(new_execution(), "a", LEASE, T0)
    store.commit([ExecutionUpdate("e1", ExecutionStatus.SUCCEEDED, result=b"r")], [], T0)
    assert store.claim_execution("e1", "b", LEASE, T0 + 2 * LEASE).lease is None


def test_claiming_an_unknown_execution_raises(store: Store) -> None:
    with pytest.raises(UnknownExecutionError):
        store.claim_execution("nope", "a", LEASE, T0)


def test_a_fenced_commit_of_the_holder_writes(store: Store) -> None:
    store.create_execution(new_execution(), "a", LEASE, T0)
    store.commit([step("e1", "e1/0")], [], T0, fence=LeaseFence("a", {"e1": 1}))
    assert [op.op_id for op in store.read_log("e1/0").operations] == ["1"]


def test_a_stale_owner_s_batch_is_refused_whole_in_its_own_transaction(store: Store) -> None:
    store.create_execution(new_execution(), "a", LEASE, T0)
    store.create_execution(new_execution("e2"), "a", LEASE, T0)
    store.claim_execution("e1", "b", LEASE, T0 + LEASE + 1)
    with pytest.raises(LeaseLostError) as caught:
        store.commit([step("e2", "e2/0"), step("e1", "e1/0")], [], T0,
                     fence=LeaseFence("a", {"e1": 1, "e2": 1}))
    assert caught.value.execution_ids == ("e1",)
    assert store.read_log("e1/0").operations == ()
    assert store.read_log("e2/0").operations == ()  # nothing of the batch was written


def test_a_fence_that_does_not_name_an_execution_refuses_its_writes(store: Store) -> None:
    store.create_execution(new_execution(), "a", LEASE, T0)
    with pytest.raises(LeaseLostError):
        store.commit([step("e1", "e1/0")], [], T0, fence=LeaseFence("a", {}))


def test_renewing_extends_held_leases_and_reports_the_lost_ones(store: Store) -> None:
    store.create_execution(new_execution(), "a", LEASE, T0)
    store.create_execution(new_execution("e2"), "a", LEASE, T0)
    store.claim_execution("e2", "b", LEASE, T0 + LEASE + 1)
    found = store.renew_leases("a", {"e1": 1, "e2": 1}, LEASE, T0 + LEASE + 2)
    assert [(lease.execution_id, lease.expires_at) for lease in found.renewed] == [
        ("e1", T0 + 2 * LEASE + 2)]
    assert [(eid, record.owner if record else None) for eid, record in found.lost] == [
        ("e2", "b")]
    record = store.read_execution("e1")
    assert record is not None and record.lease_expires_at == T0 + 2 * LEASE + 2


def test_renewing_claims_orphans_with_a_spec_up_to_the_limit(store: Store) -> None:
    for eid in ("e1", "e2", "e3"):
        store.create_execution(new_execution(eid), "dead", LEASE, T0)
    store.commit([ExecutionUpdate("legacy", ExecutionStatus.RUNNING, kind="map")], [], T0)
    found = store.renew_leases("b", {}, LEASE, T0 + LEASE + 1, claim_orphans=2)
    assert [c.record.execution_id for c in found.claimed] == ["e1", "e2"]
    assert all(c.lease is not None and c.lease.epoch == 2 for c in found.claimed)
    again = store.renew_leases("b", {"e1": 2, "e2": 2}, LEASE, T0 + LEASE + 2, claim_orphans=5)
    assert [c.record.execution_id for c in again.claimed] == ["e3"]  # never the legacy one


def test_renewing_never_claims_the_executions_it_is_told_to_skip(store: Store) -> None:
    for eid in ("e1", "e2"):
        store.create_execution(new_execution(eid), "dead", LEASE, T0)
    found = store.renew_leases("b", {}, LEASE, T0 + LEASE + 1, claim_orphans=5, skip=("e1",))
    assert [c.record.execution_id for c in found.claimed] == ["e2"]


def test_renewing_tells_when_the_next_foreign_lease_expires(store: Store) -> None:
    store.create_execution(new_execution("e1"), "x", LEASE, T0)
    store.create_execution(new_execution("e2"), "y", LEASE, T0 + 3)
    store.create_execution(new_execution("e3"), "b", LEASE, T0 + 1)
    found = store.renew_leases("b", {"e3": 1}, LEASE, T0 + 4)
    assert found.next_expiry == T0 + LEASE


def test_signals_reach_the_owner_once(store: Store) -> None:
    store.create_execution(new_execution(), "a", LEASE, T0)
    store.commit([step("e1", "e1/0", "2", OpStatus.STARTED, None, OpKind.CALLBACK)], [], T0,
                 fence=LeaseFence("a", {"e1": 1}))
    stored = store.settle_operation(step("e1", "e1/0", "2", OpStatus.SUCCEEDED, b"ok",
                                         OpKind.CALLBACK), T0 + 1)
    assert (stored.status, stored.payload) == (OpStatus.SUCCEEDED, b"ok")
    first = store.renew_leases("a", {"e1": 1}, LEASE, T0 + 2)
    assert [(s.kind, s.branch_id, s.op_id) for s in first.signals] == [
        (SignalKind.CALLBACK, "e1/0", "2")]
    assert store.renew_leases("a", {"e1": 1}, LEASE, T0 + 3).signals == ()


def test_a_second_settle_with_another_outcome_changes_nothing_and_signals_nothing(
        store: Store) -> None:
    store.create_execution(new_execution(), "a", LEASE, T0)
    store.settle_operation(step("e1", "e1/0", "2", OpStatus.SUCCEEDED, b"ok", OpKind.CALLBACK),
                           T0)
    store.renew_leases("a", {"e1": 1}, LEASE, T0 + 1)
    stored = store.settle_operation(step("e1", "e1/0", "2", OpStatus.FAILED, None,
                                         OpKind.CALLBACK), T0 + 2)
    assert stored.status is OpStatus.SUCCEEDED
    assert store.renew_leases("a", {"e1": 1}, LEASE, T0 + 3).signals == ()


def test_cancelling_marks_an_active_execution_and_signals_its_owner(store: Store) -> None:
    store.create_execution(new_execution(), "a", LEASE, T0)
    record = store.cancel_execution("e1", T0 + 1)
    assert record.status is ExecutionStatus.CANCELLED
    found = store.renew_leases("a", {"e1": 1}, LEASE, T0 + 2)
    assert [s.kind for s in found.signals] == [SignalKind.CANCEL]


def test_cancelling_a_finished_execution_leaves_it_as_it_is(store: Store) -> None:
    store.create_execution(new_execution(), "a", LEASE, T0)
    store.commit([ExecutionUpdate("e1", ExecutionStatus.SUCCEEDED, result=b"r")], [], T0)
    assert store.cancel_execution("e1", T0 + 1).status is ExecutionStatus.SUCCEEDED


def test_a_commit_never_overwrites_a_finished_execution(store: Store) -> None:
    store.create_execution(new_execution(), "a", LEASE, T0)
    store.cancel_execution("e1", T0 + 1)
    store.commit([ExecutionUpdate("e1", ExecutionStatus.SUCCEEDED, result=b"r")], [], T0 + 2,
                 fence=LeaseFence("a", {"e1": 1}))
    record = store.read_execution("e1")
    assert record is not None and (record.status, record.result) == (
        ExecutionStatus.CANCELLED, None)


def test_reopening_reruns_failed_branches_and_failed_batches_only(store: Store) -> None:
    store.create_execution(new_execution(branches=3), "a", LEASE, T0)
    failed_batch = pickle.dumps(BatchResult((None,), (None,), (BranchStatus.FAILED,),
                                            BatchStatus.FAILURE_TOLERANCE_EXCEEDED))
    fine_batch = pickle.dumps(BatchResult((1,), (None,), (BranchStatus.SUCCEEDED,),
                                          BatchStatus.ALL_COMPLETED))
    store.commit([
        step("e1", "e1/0"),
        step("e1", "e1/0", "2", OpStatus.FAILED, None),
        BranchUpdate("e1", "e1/0", BranchStatus.FAILED, error=b"boom"),
        step("e1", "e1/1", "1", OpStatus.SUCCEEDED, failed_batch, OpKind.CHILDREN),
        step("e1", "e1/1", "2", OpStatus.SUCCEEDED, fine_batch, OpKind.CHILDREN),
        BranchUpdate("e1", "e1/1/1/0", BranchStatus.FAILED, parent_branch_id="e1/1",
                     parent_op_id="1", error=b"child"),
        BranchUpdate("e1", "e1/2", BranchStatus.SUCCEEDED, result=b"r2"),
        ExecutionUpdate("e1", ExecutionStatus.FAILED, result=b"res"),
    ], [], T0)
    claim = store.reopen_execution("e1", "b", LEASE, T0 + 1, deadline_at=T0 + 99)
    assert claim.lease is not None and (claim.lease.owner, claim.lease.epoch) == ("b", 2)
    assert (claim.record.status, claim.record.result, claim.record.deadline_at) == (
        ExecutionStatus.RUNNING, None, T0 + 99)
    assert [op.op_id for op in store.read_log("e1/0").operations] == ["1"]
    assert [op.op_id for op in store.read_log("e1/1").operations] == ["2"]
    statuses = {b.branch_id: b.status for b in store.read_branches("e1")}
    assert statuses == {"e1/0": BranchStatus.PENDING, "e1/1": BranchStatus.PENDING,
                        "e1/2": BranchStatus.SUCCEEDED, "e1/1/1/0": BranchStatus.PENDING}


def test_reopening_an_active_execution_takes_nothing(store: Store) -> None:
    store.create_execution(new_execution(), "a", LEASE, T0)
    claim = store.reopen_execution("e1", "b", LEASE, T0 + 1, None)
    assert claim.lease is None and claim.record.owner == "a"


def test_deleting_removes_a_finished_execution_and_refuses_an_active_one(store: Store) -> None:
    store.create_execution(new_execution(), "a", LEASE, T0)
    store.commit([step("e1", "e1/0")], [], T0)
    with pytest.raises(ValueError, match="cancel it first"):
        store.delete_execution("e1")
    store.cancel_execution("e1", T0)
    assert store.delete_execution("e1") is True
    assert store.read_execution("e1") is None
    assert store.read_branches("e1") == [] and store.read_log("e1/0").operations == ()
    assert store.delete_execution("e1") is False


def test_payloads_are_read_per_execution_or_for_all_others(store: Store) -> None:
    store.create_execution(new_execution("e1", branches=1), "a", LEASE, T0)
    store.create_execution(new_execution("e2", branches=1), "a", LEASE, T0)
    store.commit([step("e1", "e1/0", payload=b"p1"), step("e2", "e2/0", payload=b"p2")], [], T0)
    assert b"p1" in set(store.read_payloads("e1")) and b"p2" not in set(store.read_payloads("e1"))
    others = set(store.read_payloads(exclude="e1"))
    assert b"p2" in others and b"p1" not in others


def test_an_executor_id_held_by_a_live_incarnation_is_refused(store: Store) -> None:
    store.register_executor(ExecutorInfo("svc", "host-1", 10), LEASE, T0, alive=True)
    with pytest.raises(ExecutorConflictError, match="in use by pid 10"):
        store.register_executor(ExecutorInfo("svc", "host-2", 20), LEASE, T0 + 1, alive=True)
    store.register_executor(ExecutorInfo("svc", "host-2", 20), LEASE, T0 + 1, alive=False)
    store.register_executor(ExecutorInfo("svc", "host-3", 30), LEASE, T0 + 1 + LEASE, alive=True)
    found = store.read_executor("svc")
    assert found is not None and found[0].pid == 30


def test_released_leases_can_be_claimed_at_once(store: Store) -> None:
    store.create_execution(new_execution(), "a", LEASE, T0)
    store.release_leases("a", {"e1": 1}, T0 + 1)
    assert store.claim_execution("e1", "b", LEASE, T0 + 1.5).lease is not None


def test_executions_are_listed_by_status(store: Store) -> None:
    store.create_execution(new_execution("e1"), "a", LEASE, T0)
    store.create_execution(new_execution("e2"), "a", LEASE, T0 + 1)
    store.cancel_execution("e1", T0 + 2)
    assert [e.execution_id for e in store.read_executions(ExecutionStatus.RUNNING)] == ["e2"]
    assert [e.execution_id for e in store.read_executions()] == ["e1", "e2"]
