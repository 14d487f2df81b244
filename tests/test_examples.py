"""Every example in ``examples/`` runs to its end, by itself, and shows what it promises."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

pytestmark = pytest.mark.timeout(180)


def run_example(name: str, *args: str, cwd: Path, timeout: float = 150) -> str:
    """Run ``python examples/NAME.py`` as a user would; its output. Fails on a non-zero exit."""
    done = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args], cwd=cwd,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, f"{name} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_every_example_has_a_test() -> None:
    tested = {"http_service", "cpu_fanout", "crash_resume", "large_results"}
    assert {path.stem for path in EXAMPLES.glob("*.py")} == tested


def test_http_service_starts_an_execution_reports_it_and_stops_with_the_system(
    tmp_path: Path,
) -> None:
    out = run_example("http_service", cwd=tmp_path)
    assert "started: 202 {'id': 'orders-1', 'started': 'created'}" in out
    assert "status: SUCCEEDED" in out
    assert "'reservation': 'reservation-fig-2'" in out
    assert "waiting for approval: [{'callback_id': 'cb:orders-1/2:" in out
    assert "approved pear: 200" in out
    assert "'status': 'reserved', 'reservation': 'reservation-pear-90'" in out
    assert "an unknown callback: 404" in out
    assert "the same id again: 202 {'id': 'orders-1', 'started': 'finished'}" in out
    assert "an unknown execution: 404" in out
    assert out.rstrip().endswith("the server and the actor system are stopped")


def test_cpu_fanout_matches_the_thread_pool_and_prints_the_speedup(tmp_path: Path) -> None:
    out = run_example("cpu_fanout", "--items", "4", "--rounds", "3000", cwd=tmp_path)
    assert "thread pool (" in out
    assert "same 4 results; speedup over threads: " in out


def test_crash_resume_finishes_after_a_kill_9_without_rerunning_acknowledged_steps(
    tmp_path: Path,
) -> None:
    out = run_example("crash_resume", cwd=tmp_path)
    assert "processes left: 0" in out
    assert "[second] execution crash-resume: resumed" in out
    assert "every one of the 24 steps ran: True" in out
    assert "acknowledged steps that ran again: []" in out


def test_large_results_are_refs_nested_ones_included_and_equal_bytes_are_stored_once(
    tmp_path: Path,
) -> None:
    out = run_example("large_results", cwd=tmp_path)
    assert "north: report " in out and "-> 4 chunk refs, 20000 rows" in out
    assert "one blob for the attachment of all 3 reports: True" in out
    assert "dedup hits: 2" in out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _serve(store: str, cwd: Path) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    service = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "http_service.py"), "--serve", "--port", str(port),
         "--store", store], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert service.stdout is not None
    line = service.stdout.readline()
    assert line.startswith("serving on"), line
    return service, f"http://127.0.0.1:{port}"


def _kill_group(service: subprocess.Popen[str]) -> None:
    import os
    import signal

    import psutil

    from conftest import pid_gone, wait_until

    try:
        group = [service.pid, *(p.pid for p in psutil.Process(service.pid).children(True))]
    except psutil.NoSuchProcess:
        group = [service.pid]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(service.pid, signal.SIGKILL)
    wait_until(lambda: all(pid_gone(p) for p in group), timeout=20)
    service.wait(timeout=20)


def test_http_service_lets_a_pending_approval_go_on_after_a_restart(tmp_path: Path) -> None:
    import httpx

    from conftest import wait_until

    store = f"sqlite:///{tmp_path / 'orders.db'}"
    first, base = _serve(store, tmp_path)
    try:
        orders = {"orders": [{"sku": "fig", "qty": 3, "approval": True}], "id": "o-1"}
        assert httpx.post(f"{base}/orders", json=orders, timeout=30).status_code == 202
        pending = wait_until(lambda: httpx.get(f"{base}/approvals", timeout=10)
                             .json()["pending"], timeout=60)
        callback_id = pending[0]["callback_id"]
    finally:
        _kill_group(first)  # the service dies while the order waits for a person
    second, base = _serve(store, tmp_path)
    try:
        quoted = urllib.parse.quote(callback_id, safe="")
        done = httpx.post(f"{base}/callbacks/{quoted}", json={"value": "approve"}, timeout=30)
        assert (done.status_code, done.json()) == (200, {"completed": True})
        def finished() -> dict[str, Any] | None:
            found: dict[str, Any] = httpx.get(f"{base}/executions/o-1", timeout=10).json()
            return found if found.get("status") == "SUCCEEDED" else None

        assert wait_until(finished, timeout=60)["results"][0]["status"] == "reserved"
    finally:
        _kill_group(second)
