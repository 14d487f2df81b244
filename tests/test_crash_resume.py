"""kill -9 of every process of a system mid-map, then a new system resumes it; on each store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from actors.errors import StoreError
from actors.records import OpStatus
from runtime import ActorSystem, SystemConfig
from runtime.stores import open_store, read_only_url

from branch_kinds import Kind
from branches_for_tests import Squares, effects, expected_squares
from conftest import pid_gone, wait_until

ITEMS = 24

SERVICE = textwrap.dedent(
    """
    import sys, time
    import branches_for_tests
    from runtime import ActorSystem, SystemConfig

    store, path, branch = sys.argv[1], sys.argv[2], sys.argv[3]
    with ActorSystem(store=store, config=SystemConfig(workers=2)) as system:
        run = system.map(getattr(branches_for_tests, branch),
                         [(i, path, 0.05) for i in range({items})],
                         max_concurrency=6, execution_id="crash-1")
        run.result(timeout=600)
    """
).format(items=ITEMS)


def durable_successes(url: str) -> set[tuple[str, str]]:
    """(branch, step) pairs whose success the store holds: acknowledged or about to be."""
    try:
        store = open_store(read_only_url(url))
    except StoreError:  # not created or not migrated yet
        return set()
    try:
        found = set()
        for branch in store.read_branches("crash-1"):
            for op in store.read_log(branch.branch_id).operations:
                if op.status is OpStatus.SUCCEEDED:
                    found.add((branch.branch_id, op.name))
        return found
    finally:
        store.close()


@pytest.mark.timeout(180)
def test_kill_9_of_every_process_mid_map_then_resume_loses_nothing(
    tmp_path: Path, store_url: str, kind: Kind
) -> None:
    path = str(tmp_path / "effects")
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    service = subprocess.Popen([sys.executable, str(script), store_url, path,
                                kind(Squares).__qualname__],
                               env=env, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        # Some steps durable, the execution far from finished: pull the plug on everything.
        wait_until(lambda: len(durable_successes(store_url)) >= 10, timeout=60)
    finally:  # also when the service never got there: it must not outlive the test
        group = [service.pid, *(p.pid for p in _descendants(service.pid))]
        os.killpg(service.pid, signal.SIGKILL)
        wait_until(lambda: all(pid_gone(p) for p in group), timeout=15)
        service.wait()
    acknowledged = durable_successes(store_url)
    assert len(acknowledged) < 3 * ITEMS, "the map finished before the kill; nothing to test"

    with ActorSystem(store=store_url, config=SystemConfig(workers=2)) as system:
        run = system.map(kind(Squares), [(i, path, 0.05) for i in range(ITEMS)],
                         execution_id="crash-1")
        assert run.started == "resumed"
        result = run.result(timeout=120)

    assert result.values() == [expected_squares(i) for i in range(ITEMS)]
    runs = Counter((e[0], e[1]) for e in effects(path))
    twice = [key for key in acknowledged if runs[key] != 1]
    assert twice == [], f"acknowledged steps that ran again: {twice}"
    assert all(runs[(f"crash-1/{i}", s)] >= 1 for i in range(ITEMS) for s in "abc")


def _descendants(pid: int) -> list[object]:
    import psutil

    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []
