"""Several service instances on one store: one owner per execution, takeover, fencing.

Real service processes (each its own process group, with its framework
processes), a real SQLite file or PostgreSQL database (``store_url``: each test
runs on both), real ``kill -9``, ``SIGSTOP`` and ``SIGCONT``; each test runs its
ledger branches as sync branches and as async ones (``kind``).
Every step's side effects go to a ledger (``runtime.tools.ledger``) that says whether
any step ran again after its acknowledgement.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from actors.errors import StoreError
from actors.records import ExecutionStatus
from runtime.stores import open_store, read_only_url
from runtime.tools.ledger import LedgerItem, expected_total, read_ledger

from branch_kinds import Kind
from conftest import pid_gone, wait_until

pytestmark = pytest.mark.timeout(180)
HERE = Path(__file__).parent
LEASE = 2.0


class Service:
    """One service process of the test, in a process group of its own."""

    def __init__(self, url: str, ledger: Path, *args: str, kind: Kind = Kind.SYNC) -> None:
        env = {**os.environ, "PYTHONPATH": str(HERE)}
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "ledger_service.py"), url, str(ledger),
             "--lease", str(LEASE), "--kind", kind.value, *args],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
        )
        self.lines: list[str] = []

    def wait_ready(self) -> None:
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        assert line.startswith("READY"), f"service did not start: {line!r}"

    def outcome(self, timeout: float = 120) -> dict[str, Any]:
        out, err = self.proc.communicate(timeout=timeout)
        found = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        finals = [f for f in found if "values" in f or "error" in f]
        assert finals, f"no outcome; stdout={out!r} stderr={err[-3000:]!r}"
        return finals[-1]

    def group(self) -> list[int]:
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        return [self.proc.pid, *(c.pid for c in children)]

    def signal_group(self, sig: int) -> None:
        os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        group = self.group()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        wait_until(lambda: all(pid_gone(p) for p in group), timeout=15)
        self.proc.wait(timeout=15)


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:  # whatever happened, none outlives its test
        if service.proc.poll() is None:
            for pid in service.group():  # a paused one takes SIGKILL too, but say go first
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            service.kill()


def stored(url: str, execution_id: str) -> Any:
    try:
        store = open_store(read_only_url(url))
    except StoreError:
        return None
    try:
        return store.read_execution(execution_id)
    finally:
        store.close()


def items(ledger: Path, n: int, steps: int = 3) -> list[LedgerItem]:
    return [LedgerItem(i, str(ledger), steps) for i in range(n)]


def test_two_services_starting_one_execution_run_each_step_once_and_both_get_its_result(
        tmp_path: Path, store_url: str, services: list[Service], kind: Kind) -> None:
    url, ledger = store_url, tmp_path / "ledger"
    args = ("--branches", "6", "--pause", "0.05")
    services += [Service(url, ledger, *args, kind=kind) for _ in range(2)]
    first, second = services
    expected = [expected_total(item) for item in items(ledger, 6)]
    assert first.outcome()["values"] == expected
    assert second.outcome()["values"] == expected
    report = read_ledger(ledger)
    assert set(report.bodies.values()) == {1}, f"steps that ran twice: {report.bodies}"
    assert len(report.bodies) == 6 * 3


def test_a_killed_owner_s_execution_is_taken_over_and_finished_by_another_service(
        tmp_path: Path, store_url: str, services: list[Service], kind: Kind) -> None:
    url, ledger = store_url, tmp_path / "ledger"
    args = ("--branches", "8", "--pause", "0.1", "--wait", "0.2")
    owner = Service(url, ledger, *args, "--executor", "owner", kind=kind)
    services.append(owner)
    wait_until(lambda: len(read_ledger(ledger).acknowledged) >= 4, timeout=60)
    observer = Service(url, ledger, *args, "--executor", "observer", kind=kind)
    services.append(observer)
    observer.wait_ready()
    owner.kill()
    killed_at = time.monotonic()
    wait_until(lambda: (stored(url, "shared-1") or _NONE).owner == "observer", timeout=30)
    took = time.monotonic() - killed_at
    assert took < LEASE + 2.0, f"takeover took {took:.1f}s"
    assert observer.outcome()["values"] == [expected_total(i) for i in items(ledger, 8)]
    report = read_ledger(ledger)
    assert report.started_after_ack == [] and report.completed_after_ack == []


class _None:
    owner = None


_NONE = _None()


def test_a_paused_owner_is_fenced_when_it_wakes_and_its_caller_is_told(
        tmp_path: Path, store_url: str, services: list[Service], kind: Kind) -> None:
    url, ledger = store_url, tmp_path / "ledger"
    args = ("--branches", "6", "--pause", "0.05", "--wait", "0.3", "--steps", "4")
    owner = Service(url, ledger, *args, "--executor", "owner", kind=kind)
    services.append(owner)
    wait_until(lambda: len(read_ledger(ledger).acknowledged) >= 3, timeout=60)
    owner.signal_group(signal.SIGSTOP)
    acked_before = set(read_ledger(ledger).acknowledged)
    other = Service(url, ledger, *args, "--executor", "other", kind=kind)
    services.append(other)
    assert other.outcome(timeout=120)["values"] == [expected_total(i) for i in
                                                    items(ledger, 6, 4)]
    record = stored(url, "shared-1")
    assert record.owner == "other" and record.status is ExecutionStatus.SUCCEEDED
    owner.signal_group(signal.SIGCONT)
    told = owner.outcome(timeout=60)
    assert told["error"] == "LeaseLostError", told
    report = read_ledger(ledger)
    assert acked_before <= report.acknowledged  # nothing acknowledged was lost
    # A paused process finishes a body it was in (nothing can preempt it), but starts nothing.
    assert report.started_after_ack == []
    final = stored(url, "shared-1")
    assert final.status is ExecutionStatus.SUCCEEDED and final.result == record.result


def test_a_restarted_service_finishes_an_execution_without_calling_map(
        tmp_path: Path, store_url: str, services: list[Service], kind: Kind) -> None:
    url, ledger = store_url, tmp_path / "ledger"
    first = Service(url, ledger, "--branches", "6", "--pause", "0.1", "--wait", "0.2",
                    kind=kind)
    services.append(first)
    wait_until(lambda: len(read_ledger(ledger).acknowledged) >= 3, timeout=60)
    first.kill()
    restarted = Service(url, ledger, "--mode", "idle")
    services.append(restarted)
    restarted.wait_ready()
    wait_until(lambda: (stored(url, "shared-1") or _NONE_STATUS).status
               is ExecutionStatus.SUCCEEDED, timeout=60)
    report = read_ledger(ledger)
    assert report.started_after_ack == [] and report.completed_after_ack == []
    assert len(report.acknowledged) == 6 * 3


class _NoneStatus:
    status = None


_NONE_STATUS = _NoneStatus()
