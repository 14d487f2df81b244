"""Leases on PostgreSQL where only a server can show them: races between connections,
the server's clock, and transactions whose COMMIT landed but whose answer was lost.

The rules themselves are pinned for every store in ``test_store_leases.py``.
"""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from actors.errors import ExecutorConflictError, LeaseLostError
from actors.records import (
    BranchInput,
    ExecutionStatus,
    ExecutorInfo,
    LeaseFence,
    NewExecution,
    OperationUpdate,
    OpKind,
    OpStatus,
    SignalKind,
)
from runtime.stores.postgres import LeaseClock, PostgresStore

from conftest import wait_until
from postgres_for_tests import CommitCutter, in_thread, store_backends

pytestmark = pytest.mark.timeout(120)

LEASE = 10.0
HOUR = 3600.0


def new_execution(eid: str = "e1", branches: int = 2) -> NewExecution:
    return NewExecution(eid, "map", "fp-1", b"spec",
                        tuple(BranchInput(f"{eid}/{i}", i, pickle.dumps(i))
                              for i in range(branches)))


def step(eid: str, op: str, branch: str = "/0") -> OperationUpdate:
    return OperationUpdate(eid, eid + branch, op, OpKind.STEP, "s", OpStatus.SUCCEEDED,
                           payload=b"v")


@pytest.fixture
def stores(postgres_url: str) -> Iterator[list[PostgresStore]]:
    """Stores opened by the test (each its own connection), closed after it."""
    opened: list[PostgresStore] = []
    yield opened
    for store in opened:
        store.close()


@pytest.fixture
def admin(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        yield conn


def opened(stores: list[PostgresStore], url: str, **options: Any) -> PostgresStore:
    stores.append(PostgresStore(url, lock_timeout=60, **options))
    return stores[-1]


# -- races between systems ------------------------------------------------------------------


def test_two_systems_racing_to_claim_one_execution_never_both_win(
    postgres_url: str, stores: list[PostgresStore], admin: psycopg.Connection[Any],
) -> None:
    creator = opened(stores, postgres_url, lease_clock=LeaseClock.CALLER)
    creator.create_execution(new_execution(), "dead", LEASE, 1_000.0)
    a, b = opened(stores, postgres_url), opened(stores, postgres_url)
    holder = psycopg.connect(postgres_url)  # both claims wait on the row, then go at once
    holder.execute("SELECT 1 FROM executions WHERE execution_id = 'e1' FOR UPDATE")
    first, got_a = in_thread(lambda: a.claim_execution("e1", "a", LEASE, time.time()))
    second, got_b = in_thread(lambda: b.claim_execution("e1", "b", LEASE, time.time()))
    wait_until(lambda: len(store_backends(admin, waiting_on_a_lock=True)) == 2, timeout=30)
    holder.commit()
    holder.close()
    first.join(timeout=30)
    second.join(timeout=30)
    winners = [claim.lease.owner for claim in (*got_a, *got_b) if claim.lease is not None]
    assert len(winners) == 1
    record = creator.read_execution("e1")
    assert record is not None and (record.owner, record.lease_epoch) == (winners[0], 2)


def test_a_fenced_batch_waiting_on_a_claim_in_flight_is_refused_when_the_claim_commits(
    postgres_url: str, stores: list[PostgresStore], admin: psycopg.Connection[Any],
) -> None:
    owner = opened(stores, postgres_url)
    owner.create_execution(new_execution(), "a", LEASE, time.time())
    claimer = psycopg.connect(postgres_url)  # another system's claim, not committed yet
    claimer.execute("UPDATE executions SET owner = 'b', lease_epoch = 2 WHERE execution_id = 'e1'")
    thread, outcome = in_thread(lambda: owner.commit(
        [step("e1", "1"), step("e1", "2", "/1")], [], time.time(),
        fence=LeaseFence("a", {"e1": 1})))
    wait_until(lambda: store_backends(admin, waiting_on_a_lock=True), timeout=30)
    claimer.commit()
    claimer.close()
    thread.join(timeout=30)
    assert isinstance(outcome[0], LeaseLostError) and outcome[0].execution_ids == ("e1",)
    assert owner.read_log("e1/0").operations == () == owner.read_log("e1/1").operations


def test_no_batch_of_a_stale_owner_lands_after_the_claim_that_took_its_execution(
    postgres_url: str, stores: list[PostgresStore],
) -> None:
    stale = opened(stores, postgres_url)
    stale.create_execution(new_execution(), "a", LEASE, time.time())
    taker = opened(stores, postgres_url)
    acknowledged: list[str] = []
    refused = threading.Event()

    def write_until_refused() -> None:
        for n in range(100_000):
            try:
                stale.commit([step("e1", f"a{n}")], [], time.time(),
                             fence=LeaseFence("a", {"e1": 1}))
            except LeaseLostError:
                refused.set()
                return
            acknowledged.append(f"a{n}")

    writer, _ = in_thread(write_until_refused)
    wait_until(lambda: len(acknowledged) >= 20, timeout=30)
    claim = taker.claim_execution("e1", "b", LEASE, time.time(), dead_owners=("a",))
    assert claim.lease is not None
    taker.commit([step("e1", "b-first")], [], time.time(),
                 fence=LeaseFence("b", {"e1": claim.lease.epoch}))
    writer.join(timeout=30)
    assert refused.is_set()
    ops = [op.op_id for op in taker.read_log("e1/0").operations]  # in the order they landed
    assert ops == [*acknowledged, "b-first"]


# -- the server's clock ------------------------------------------------------------------


def test_a_live_lease_is_not_claimed_by_a_host_whose_clock_runs_an_hour_ahead(
    postgres_url: str, stores: list[PostgresStore],
) -> None:
    behind, ahead = opened(stores, postgres_url), opened(stores, postgres_url)
    behind.create_execution(new_execution(), "a", LEASE, time.time() - HOUR)
    claim = ahead.claim_execution("e1", "b", LEASE, time.time() + HOUR)
    assert claim.lease is None and claim.record.owner == "a"
    found = ahead.renew_leases("b", {}, LEASE, time.time() + HOUR, claim_orphans=5)
    assert found.claimed == ()


def test_a_lease_expires_by_the_server_s_clock_whatever_the_claimer_s_clock_says(
    postgres_url: str, stores: list[PostgresStore],
) -> None:
    owner, claimer = opened(stores, postgres_url), opened(stores, postgres_url)
    owner.create_execution(new_execution(), "a", 0.5, time.time() + HOUR)
    claim = wait_until(lambda: claimer.claim_execution(
        "e1", "b", LEASE, time.time() - HOUR).lease, timeout=30, interval=0.05)
    assert claim.owner == "b" and claim.epoch == 2


def test_leases_are_answered_on_the_caller_s_clock(
    postgres_url: str, stores: list[PostgresStore],
) -> None:
    skewed = time.time() - HOUR
    owner, other = opened(stores, postgres_url), opened(stores, postgres_url)
    created = owner.create_execution(new_execution("e1"), "a", LEASE, skewed)
    assert created.lease is not None
    assert created.lease.expires_at == pytest.approx(skewed + LEASE, abs=1.0)
    other.create_execution(new_execution("e2"), "x", LEASE, time.time() + HOUR)
    found = owner.renew_leases("a", {"e1": 1}, LEASE, skewed)
    assert found.renewed[0].expires_at == skewed + LEASE
    assert found.next_expiry == pytest.approx(skewed + LEASE, abs=1.0)  # e2's, on a's clock


def test_an_executor_id_in_use_is_judged_by_the_server_s_clock(
    postgres_url: str, stores: list[PostgresStore],
) -> None:
    first, second = opened(stores, postgres_url), opened(stores, postgres_url)
    first.register_executor(ExecutorInfo("svc", "host-1", 10), LEASE, time.time() - HOUR,
                            alive=True)
    with pytest.raises(ExecutorConflictError, match="in use by pid 10"):
        second.register_executor(ExecutorInfo("svc", "host-2", 20), LEASE, time.time() + HOUR,
                                 alive=True)


# -- a COMMIT that landed, and an answer that did not -----------------------------------


@pytest.fixture
def cutter(postgres_url: str) -> Iterator[CommitCutter]:
    with CommitCutter(postgres_url) as proxy:
        yield proxy


def test_a_round_whose_answer_was_lost_hands_its_signals_out_again(
    postgres_url: str, stores: list[PostgresStore], cutter: CommitCutter,
) -> None:
    owner = opened(stores, cutter.url, lease_clock=LeaseClock.CALLER)
    other = opened(stores, postgres_url, lease_clock=LeaseClock.CALLER)
    owner.create_execution(new_execution(), "a", LEASE, 1_000.0)
    other.cancel_execution("e1", 1_001.0)
    cutter.cut_next_commit()
    found = owner.renew_leases("a", {"e1": 1}, LEASE, 1_002.0)
    assert cutter.cuts == 1
    assert [s.kind for s in found.signals] == [SignalKind.CANCEL]
    assert owner.renew_leases("a", {"e1": 1}, LEASE, 1_003.0).signals == ()


def test_a_creation_whose_answer_was_lost_is_answered_created_with_its_lease(
    stores: list[PostgresStore], cutter: CommitCutter,
) -> None:
    store = opened(stores, cutter.url)
    cutter.cut_next_commit()
    claim = store.create_execution(new_execution(), "a", LEASE, time.time())
    assert cutter.cuts == 1
    assert claim.created and claim.lease is not None and claim.lease.epoch == 1
    assert len(store.read_branches("e1")) == 2


def test_a_reopening_whose_answer_was_lost_is_answered_with_its_lease(
    stores: list[PostgresStore], cutter: CommitCutter,
) -> None:
    store = opened(stores, cutter.url)
    store.create_execution(new_execution(), "a", LEASE, time.time())
    store.cancel_execution("e1", time.time())
    cutter.cut_next_commit()
    claim = store.reopen_execution("e1", "a", LEASE, time.time(), None)
    assert cutter.cuts == 1
    assert claim.lease is not None and claim.lease.epoch == 2
    assert claim.record.status is ExecutionStatus.RUNNING


def test_a_claim_whose_answer_was_lost_is_answered_with_the_epoch_stored(
    stores: list[PostgresStore], cutter: CommitCutter,
) -> None:
    store = opened(stores, cutter.url)
    store.create_execution(new_execution(), "a", LEASE, time.time())
    cutter.cut_next_commit()
    claim = store.claim_execution("e1", "a", LEASE, time.time())
    assert cutter.cuts == 1
    record = store.read_execution("e1")
    assert claim.lease is not None and record is not None
    assert claim.lease.epoch == record.lease_epoch


# -- who hears of it ---------------------------------------------------------------------


NOTIFYING: dict[str, Any] = {  # what each write notifies: its execution
    "claim": lambda s: s.claim_execution("e1", "b", LEASE, time.time(), dead_owners=("a",)),
    "orphan claim": lambda s: s.renew_leases("b", {}, LEASE, time.time(), claim_orphans=1,
                                             dead_owners=("a",)),
    "cancel": lambda s: s.cancel_execution("e1", time.time()),
    "callback settled": lambda s: s.settle_operation(OperationUpdate(
        "e1", "e1/0", "1", OpKind.CALLBACK, "approval", OpStatus.SUCCEEDED, payload=b"ok"),
        time.time()),
}


@pytest.mark.parametrize("write", list(NOTIFYING), ids=list(NOTIFYING))
def test_a_write_that_an_owner_or_observer_must_hear_of_notifies_its_execution(
    postgres_url: str, stores: list[PostgresStore], write: str,
) -> None:
    from runtime.stores.postgres_changes import ExecutionChanges

    store = opened(stores, postgres_url)
    store.create_execution(new_execution(), "a", LEASE, time.time())
    changes = ExecutionChanges(postgres_url)
    try:
        NOTIFYING[write](store)
        assert changes.wait(timeout=10) == {"e1"}
    finally:
        changes.close()


def test_released_leases_notify_every_system_that_orphans_may_be_there(
    postgres_url: str, stores: list[PostgresStore],
) -> None:
    from runtime.stores.postgres_changes import RELEASED, ExecutionChanges

    store = opened(stores, postgres_url)
    store.create_execution(new_execution("e1"), "a", LEASE, time.time())
    store.create_execution(new_execution("e2"), "a", LEASE, time.time())
    changes = ExecutionChanges(postgres_url)
    try:
        store.release_leases("a", {"e1": 1, "e2": 1}, time.time())
        assert changes.wait(timeout=10) == {RELEASED}
        store.release_leases("b", {"e1": 1}, time.time())  # not b's: nothing released
        assert changes.wait(timeout=0.3) == set()
    finally:
        changes.close()


def test_renewing_and_a_refused_claim_notify_nobody(
    postgres_url: str, stores: list[PostgresStore],
) -> None:
    from runtime.stores.postgres_changes import ExecutionChanges

    store = opened(stores, postgres_url)
    store.create_execution(new_execution(), "a", LEASE, time.time())
    changes = ExecutionChanges(postgres_url)
    try:
        store.renew_leases("a", {"e1": 1}, LEASE, time.time(), claim_orphans=5)
        store.claim_execution("e1", "b", LEASE, time.time())
        assert changes.wait(timeout=0.3) == set()
    finally:
        changes.close()


def test_a_listener_that_lost_its_server_says_anything_may_have_changed_then_hears_again(
    tmp_path: Any,
) -> None:
    from runtime.stores.postgres_changes import ChangeListener
    from runtime.stores.postgres_server import EmbeddedPostgres

    heard: list[tuple[str, ...]] = []
    with EmbeddedPostgres(durable=False) as server:
        url = server.create_database("app")
        store = PostgresStore(url)
        listener = ChangeListener(url, heard.append)
        try:
            assert listener.listening.wait(timeout=30)
            store.create_execution(new_execution("e1"), "a", LEASE, time.time())
            store.cancel_execution("e1", time.time())
            wait_until(lambda: ("e1",) in heard, timeout=30)
            assert heard[0] == ()  # told once connected: what changed before was not heard
            heard.clear()
            server.restart()
            wait_until(lambda: () in heard, timeout=60)
            store.create_execution(new_execution("e2"), "a", LEASE, time.time())
            store.cancel_execution("e2", time.time())
            wait_until(lambda: ("e2",) in heard, timeout=30)
        finally:
            listener.close()
            store.close()
