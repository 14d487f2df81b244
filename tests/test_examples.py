"""Every example in ``examples/`` runs to its end, by itself, and shows what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
