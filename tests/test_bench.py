"""``durable-actors bench``: what it prints is a contract, not what it measures.

Timings are never asserted here (they flake on shared machines); what is pinned
down is the shape: ``--json`` prints one JSON document and nothing else on
stdout, and every figure comes with a baseline measured in the same run.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", "bench", "--quick", *args],
        capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL, check=False,
    )


@pytest.mark.timeout(300)
def test_bench_json_is_one_document_with_a_baseline_beside_every_figure() -> None:
    done = _bench("--json", "--only", "durable")

    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)  # nothing but the document: no log lines on stdout
    figures = report["suites"]["durable"]
    assert {f["name"].split(" (")[0] for f in figures} >= {
        "step latency p50", "checkpoint throughput", "resume wave"}
    for figure in figures:
        assert figure["baseline_name"], figure["name"]
        assert math.isfinite(figure["value"]) and figure["value"] >= 0, figure
        assert math.isfinite(figure["baseline"]) and figure["baseline"] > 0, figure
        assert figure["ratio"] == pytest.approx(figure["value"] / figure["baseline"])


@pytest.mark.timeout(300)
def test_bench_refuses_an_unknown_suite_by_name() -> None:
    done = _bench("--only", "nonesuch")

    assert done.returncode != 0
    assert "nonesuch" in done.stderr
    assert "messaging" in done.stderr  # it says which suites there are


@pytest.mark.timeout(300)
def test_bench_postgres_suite_reports_postgresql_beside_sqlite_each_with_its_baseline() -> None:
    done = _bench("--json", "--only", "postgres")

    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)["suites"]["postgres"]
    names = [f["name"] for f in figures]
    for store in ("PostgreSQL", "SQLite"):
        assert any(n.startswith(f"step latency p50 on {store}") for n in names), names
        assert any(n.startswith(f"checkpoint throughput on {store}") for n in names), names
    for figure in figures:
        assert figure["baseline_name"], figure["name"]
        assert math.isfinite(figure["value"]) and figure["value"] > 0, figure
        assert math.isfinite(figure["baseline"]) and figure["baseline"] > 0, figure
