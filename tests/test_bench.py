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
        [sys.executable, "-m", "runtime.tools.cli", "bench", "--quick", *args],
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


@pytest.mark.timeout(300)
def test_the_async_suite_reports_each_figure_of_its_issue_beside_a_same_run_baseline() -> None:
    done = _bench("--json", "--only", "async")

    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)["suites"]["async"]
    names = [f["name"] for f in figures]
    assert any("awaited I/O step" in n for n in names)
    assert any("suspensions not written" in n for n in names)
    assert any("branches evicted" in n for n in names)
    assert any("threads per worker" in n for n in names)
    assert any("resident memory" in n for n in names)
    assert any("ticks kept" in n for n in names)
    assert any("loop stall" in n for n in names)
    for figure in figures:  # a baseline may be 0 (no sync branch evicted): the ratio is then inf
        assert figure["baseline_name"], figure["name"]
        assert math.isfinite(figure["value"]) and figure["value"] >= 0, figure
        assert math.isfinite(figure["baseline"]) and figure["baseline"] >= 0, figure


@pytest.mark.timeout(300)
def test_the_tracing_suite_puts_traced_steps_beside_the_same_steps_untraced() -> None:
    done = _bench("--json", "--only", "tracing")

    assert done.returncode == 0, done.stderr[-3000:]
    (figure,) = json.loads(done.stdout)["suites"]["tracing"]
    assert figure["name"] == "step latency p50, traced execution"
    assert figure["baseline_name"] == "the same steps, execution not sampled"
    assert figure["extra"]["spans_exported"] > figure["extra"]["steps_each"]  # it did trace


def test_the_ray_suite_prints_the_ray_backends_figures_beside_raw_ray_baselines() -> None:
    done = _bench("--json", "--only", "ray")

    assert done.returncode == 0, done.stderr[-3000:]
    figures = {f["name"]: f for f in json.loads(done.stdout)["suites"]["ray"]}
    for name in ("raw Ray one-way call", "raw Ray round trip p50", "raw Ray round trip p99",
                 "prototype ask p50 (pykka actor in a Ray actor)", "tell, Ray backend",
                 "ask p50, Ray backend", "sync step p50, Ray backend"):
        assert math.isfinite(figures[name]["value"]) and figures[name]["value"] > 0, name
    assert any(n.startswith("CPU-bound map") and n.endswith("raw Ray tasks") for n in figures)
    assert any(n.endswith("system.map on the Ray backend") for n in figures)
    assert [f["name"] for f in figures.values() if f["value"] is None] == []  # none pending
    for figure in figures.values():
        assert figure["baseline_name"], figure["name"]
        assert math.isfinite(figure["baseline"]) and figure["baseline"] > 0, figure
        assert figure["ratio"] == pytest.approx(figure["value"] / figure["baseline"]), figure


def test_what_a_suites_libraries_print_goes_to_stderr_not_into_the_json(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from runtime.tools import bench
    from runtime.tools.bench.report import Figure

    def noisy(quick: bool) -> list[Figure]:
        print("(raylet) Warning: More than 5000 tasks are pending")  # as Ray does
        return [Figure("x", "s", 1.0, 2.0, "y", higher_is_better=False, target="report")]

    monkeypatch.setattr(bench, "suites", lambda: {"noisy": noisy})
    assert bench.main(quick=True, as_json=True) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["suites"]["noisy"][0]["ratio"] == 0.5
    assert "(raylet) Warning" in err
