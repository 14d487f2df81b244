"""Faults a service meets: every execution finishes, or its callers hear why, typed.

Real processes, a real SQLite file, real ``kill -9``; a store locked by another
program, a full disk (a tmpfs of a few MB) and store files that cannot be
written (``chattr +i`` as root, ``chmod`` otherwise) are real too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.errors import StoreFullError, StoreLockedError, StoreReadOnlyError
from runtime import ActorSystem, RestartPolicy, SystemConfig, Timeout
from runtime.errors import ProcessFaultError
from runtime.tools.ledger import LedgerBranch, LedgerItem, LedgerReport, expected_total, read_ledger

from branch_kinds import Kind
from conftest import pid_gone, wait_until
from ledger_branches import (
    CallbackAnswered,
    CallbackTimedOut,
    PolledCondition,
    RetriedAfterBackoff,
    TimerItem,
    ledger_branch,
    timer_total,
)

pytestmark = pytest.mark.timeout(150)


def pid_of(system: ActorSystem, name: str) -> int:
    """The pid of the system's process named ``name`` (restarted ones have a new pid)."""
    return system.processes()[name]


def kill(system: ActorSystem, name: str) -> int:
    pid = pid_of(system, name)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: pid_gone(pid), timeout=10)
    return pid


def restarted(system: ActorSystem, name: str, old: int) -> bool:
    try:
        return pid_of(system, name) != old
    except LookupError:
        return False


def items(ledger: Path, n: int, **fields: Any) -> list[LedgerItem]:
    return [LedgerItem(i, str(ledger), **fields) for i in range(n)]


@contextlib.contextmanager
def started(tmp_path: Path, store: Path, **config: Any) -> Iterator[ActorSystem]:
    options: dict[str, Any] = {"workers": 2, "trace_path": str(tmp_path / "trace.jsonl")}
    options.update(config)
    system = ActorSystem(store=f"sqlite:///{store}", config=SystemConfig(**options))
    try:
        yield system
    finally:
        system.shutdown()


def test_a_killed_scheduler_gives_back_the_timers_of_evicted_branches(
        tmp_path: Path, kind: Kind) -> None:
    ledger = tmp_path / "ledger"
    work = items(ledger, 6, steps=2, wait=2.0)
    with started(tmp_path, tmp_path / "state.db", suspend_checkpoint_delay=0) as system:
        run = system.map(ledger_branch(kind), work, execution_id="timers")
        kill_the_scheduler_once_all_are_evicted(system, run, len(work))
        assert run.result(timeout=60).values() == [expected_total(i) for i in work]
    report = read_ledger(ledger)
    assert report.started_after_ack == [] and report.completed_after_ack == []


def kill_the_scheduler_once_all_are_evicted(system: ActorSystem, run: Any, branches: int) -> None:
    """``kill -9`` of the scheduler while every branch is evicted; back once it restarted."""
    wait_until(lambda: run.progress()["suspended"] == branches, timeout=30)
    old = kill(system, "scheduler")
    wait_until(lambda: restarted(system, "scheduler", old), timeout=30)


TIMER = 4.0  # seconds: every branch is evicted on its timer well before the first is due


def timer_items(ledger: Path, n: int = 6, seconds: float = TIMER) -> list[TimerItem]:
    return [TimerItem(i, str(ledger), seconds) for i in range(n)]


def through_a_scheduler_kill(tmp_path: Path, branch_class: type[Any],
                             execution_id: str) -> LedgerReport:
    """Map ``branch_class`` over timer items, kill the scheduler once every branch is
    evicted on its timer; the execution must finish as without the kill."""
    ledger = tmp_path / "ledger"
    work = timer_items(ledger)
    with started(tmp_path, tmp_path / "state.db", suspend_checkpoint_delay=0) as system:
        run = system.map(branch_class, work, execution_id=execution_id)
        kill_the_scheduler_once_all_are_evicted(system, run, len(work))
        assert run.result(timeout=60).values() == [timer_total(i) for i in work]
    report = read_ledger(ledger)
    assert report.started_after_ack == [] and report.completed_after_ack == []
    return report


def test_a_killed_scheduler_gives_back_the_retry_backoffs_of_evicted_branches(
        tmp_path: Path, kind: Kind) -> None:
    report = through_a_scheduler_kill(tmp_path, kind(RetriedAfterBackoff), "backoffs")
    assert report.reruns == 0  # the failed first attempts completed no body


def test_a_killed_scheduler_gives_back_the_condition_intervals_of_evicted_branches(
        tmp_path: Path, kind: Kind) -> None:
    through_a_scheduler_kill(tmp_path, kind(PolledCondition), "conditions")


def test_a_callback_timeout_fires_after_the_scheduler_was_killed(
        tmp_path: Path, kind: Kind) -> None:
    through_a_scheduler_kill(tmp_path, kind(CallbackTimedOut), "timeouts")


def test_a_callback_completed_after_the_scheduler_was_killed_resumes_its_branch(
        tmp_path: Path, kind: Kind) -> None:
    ledger = tmp_path / "ledger"
    work = timer_items(ledger, seconds=600)  # a timeout that never comes in this test
    with started(tmp_path, tmp_path / "state.db", suspend_checkpoint_delay=0) as system:
        run = system.map(kind(CallbackAnswered), work, execution_id="answers")
        kill_the_scheduler_once_all_are_evicted(system, run, len(work))
        ids = wait_until(lambda: published(ledger, len(work)), timeout=30)
        for callback_id in ids:
            system.complete_callback(callback_id, "yes")
        assert run.result(timeout=60).values() == [(timer_total(i), "yes") for i in work]
    report = read_ledger(ledger)
    assert report.started_after_ack == [] and report.completed_after_ack == []


def published(ledger: Path, n: int) -> set[str] | None:
    """The callback ids the branches published beside ``ledger``, once there are ``n``."""
    where = Path(f"{ledger}.ids")
    ids = set(where.read_text().split()) if where.exists() else set()
    return ids if len(ids) == n else None


def test_a_checkpoint_process_that_keeps_crashing_tells_every_waiting_caller_why(
        tmp_path: Path) -> None:
    budget = RestartPolicy(max_restarts=2, backoff=0.05, within=60.0, then_every=30.0)
    ledger = tmp_path / "ledger"
    with started(tmp_path, tmp_path / "state.db", service_restart=budget) as system:
        run = system.map(LedgerBranch, items(ledger, 4, steps=3, wait=1.0), execution_id="doomed")
        for _ in range(3):  # the third crash is past the budget of two restarts
            old = kill(system, "checkpoint")
            if _ < 2:
                wait_until(lambda old=old: restarted(system, "checkpoint", old), timeout=30)
        started_waiting = time.monotonic()
        with pytest.raises(ProcessFaultError, match="crashed 3 times") as caught:
            run.result(timeout=60)
        assert time.monotonic() - started_waiting < 10  # told at once, not after its timeout
        assert "SIGKILL" in str(caught.value) and caught.value.process == "checkpoint"
        assert "crashed 3 times" in run.progress()["fault"]
        with pytest.raises(ProcessFaultError):  # a new call is told at once too
            system.map(LedgerBranch, items(ledger, 1), execution_id="next")


@pytest.fixture
def locked_store(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    store = tmp_path / "state.db"
    yield store, sqlite3.connect(store, isolation_level=None, timeout=30)


def test_a_store_locked_by_another_program_is_reported_and_the_execution_goes_on_after(
        tmp_path: Path, locked_store: tuple[Path, sqlite3.Connection]) -> None:
    store, other = locked_store
    ledger = tmp_path / "ledger"
    work = items(ledger, 3, steps=3, wait=0.3)
    with started(tmp_path, store, store_lock_timeout=0.2) as system:
        run = system.map(LedgerBranch, work, execution_id="locked")
        wait_until(lambda: len(read_ledger(ledger).acknowledged) >= 1, timeout=30)
        other.execute("BEGIN EXCLUSIVE")  # another program holds the write lock
        try:
            wait_until(lambda: "StoreLockedError" in run.progress().get("fault", ""), timeout=30)
            with pytest.raises(Timeout) as caught:
                run.result(timeout=1.0)
            assert isinstance(caught.value.__cause__, StoreLockedError)
            assert run.status() in ("RUNNING", "SUSPENDED")  # not failed: it waits for the lock
        finally:
            other.execute("ROLLBACK")
        assert run.result(timeout=90).values() == [expected_total(i) for i in work]
        assert "fault" not in run.progress()
    other.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs: a full disk that freeing a file fixes."""
    where = tmp_path / "disk"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with contextlib.suppress(OSError), open(filler, "wb") as out:  # ENOSPC, even at close
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    return filler


def test_a_full_disk_is_reported_and_the_execution_finishes_once_space_is_freed(
        tmp_path: Path, small_disk: Path) -> None:
    ledger = tmp_path / "ledger"
    work = items(ledger, 3, steps=4, wait=0.2)
    with started(tmp_path, small_disk / "state.db") as system:
        run = system.map(LedgerBranch, work, execution_id="full")
        wait_until(lambda: len(read_ledger(ledger).acknowledged) >= 1, timeout=30)
        filler = fill(small_disk)
        wait_until(lambda: "StoreFullError" in run.progress().get("fault", ""), timeout=60)
        with pytest.raises(Timeout) as caught:
            run.result(timeout=1.0)
        assert isinstance(caught.value.__cause__, StoreFullError)
        filler.unlink()
        assert run.result(timeout=90).values() == [expected_total(i) for i in work]
    report = read_ledger(ledger)
    assert report.started_after_ack == [] and report.completed_after_ack == []


def make_unwritable(*paths: Path) -> None:
    for path in paths:
        if path.exists():
            if os.geteuid() == 0:  # root writes through permissions: make it immutable
                subprocess.run(["chattr", "+i", str(path)], check=True)
            else:
                path.chmod(0o444)


def make_writable(*paths: Path) -> None:
    for path in paths:
        if path.exists():
            if os.geteuid() == 0:
                subprocess.run(["chattr", "-i", str(path)], check=False)
            path.chmod(0o644)


def test_an_unwritable_shm_file_is_refused_when_the_store_opens(tmp_path: Path) -> None:
    from runtime.stores.sqlite import SqliteStore

    db = tmp_path / "state.db"
    keep = SqliteStore(db)  # holds the -wal and -shm files open, as a running writer does
    shm = Path(f"{db}-shm")
    make_unwritable(shm)
    try:
        with pytest.raises(StoreReadOnlyError, match="-shm"):
            SqliteStore(db)
    finally:
        make_writable(shm)
        keep.close()


def test_a_store_that_became_unwritable_tells_waiting_callers_at_once(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    ledger = tmp_path / "ledger"
    files = (db, Path(f"{db}-wal"), Path(f"{db}-shm"))
    with started(tmp_path, db) as system:
        run = system.map(LedgerBranch, items(ledger, 3, steps=3, wait=1.0), execution_id="ro")
        wait_until(lambda: len(read_ledger(ledger).acknowledged) >= 2, timeout=30)
        make_unwritable(*files)
        try:
            # Its writer dies of it (SIGBUS on the -shm mapping) or is killed; its restart
            # finds the store unwritable and says so: the caller hears it, typed, at once.
            with contextlib.suppress(LookupError, ProcessLookupError):
                kill(system, "checkpoint")
            with pytest.raises(StoreReadOnlyError, match="read-only"):
                run.result(timeout=60)
        finally:
            make_writable(*files)


def started_steps(ledger: Path) -> set[tuple[str, str]]:
    """The (branch, step) pairs whose body has started, as the ledger says now."""
    lines = (line.split() for line in ledger.read_text().splitlines())
    return {(f[1], f[2]) for f in lines if len(f) >= 3 and f[0] == "start"}


def test_one_checkpoint_crash_reruns_only_the_steps_that_were_in_flight(
        tmp_path: Path, kind: Kind) -> None:
    ledger = tmp_path / "ledger"
    work = items(ledger, 60, steps=3, pause=0.02)
    with started(tmp_path, tmp_path / "state.db", worker_threads=4) as system:
        run = system.map(ledger_branch(kind), work, execution_id="busy")
        wait_until(lambda: len(read_ledger(ledger).acknowledged) >= 30, timeout=60)
        kill(system, "checkpoint")
        in_flight = started_steps(ledger) - read_ledger(ledger).acknowledged
        assert run.result(timeout=90).values() == [expected_total(i) for i in work]
    report = read_ledger(ledger)
    assert report.started_after_ack == [] and report.completed_after_ack == []
    threads = 2 * 4  # two workers of four branch threads
    ran_again = {step for step, bodies in report.bodies.items() if bodies > 1}
    # Steps in flight at the crash may run again (an async branch's finished body too, while
    # it awaits its acknowledgement); one started later was taken before its worker heard.
    late = ran_again - in_flight
    assert len(late) <= threads, f"{len(late)} steps started after the crash ran again: {late}"
    if kind is Kind.SYNC:  # a branch thread waits for its step's acknowledgement
        assert len(ran_again) <= threads, f"{len(ran_again)} steps ran again"


def test_a_failed_coordinator_is_restarted_and_takes_its_executions_back(
        tmp_path: Path, kind: Kind) -> None:
    from actors.coordinator._continuations import Created
    from actors.protocol import Answered

    ledger = tmp_path / "ledger"
    work = items(ledger, 4, steps=3, wait=0.5)
    with started(tmp_path, tmp_path / "state.db") as system:
        run = system.map(ledger_branch(kind), work, execution_id="survivor")
        wait_until(lambda: len(read_ledger(ledger).acknowledged) >= 2, timeout=30)
        services = system._services()
        services.coordinator.tell(Answered((Created("survivor"),), value=42))  # a bug, say
        wait_until(lambda: services.coordinator_generation == 1, timeout=30)
        assert run.result(timeout=90).values() == [expected_total(i) for i in work]
    report = read_ledger(ledger)
    assert report.started_after_ack == [] and report.completed_after_ack == []
