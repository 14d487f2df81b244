"""OpenTelemetry: an execution's spans reach the application's provider as one trace.

Each scenario is an application of its own (``tests/otel_app.py``) in a fresh
process: it sets its tracer provider with the SDK's in-memory exporter, as an
application does, and the provider can be set only once per process. The spans
it exported come back as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the [otel] extra (also in [test])")

APP = Path(__file__).with_name("otel_app.py")


def run_app(scenario: str, tmp: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(APP.parent.parent),
                                                        os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(APP), scenario, str(tmp)], check=False,
                          capture_output=True,
                          text=True, timeout=110, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{scenario} failed:\n{done.stderr[-4000:]}"
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def by_id(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["span_id"]: s for s in spans}


def of_execution(spans: list[dict[str, Any]], eid: str) -> list[dict[str, Any]]:
    return [s for s in spans if s["attributes"].get("durable.execution.id") == eid]


def named(spans: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [s for s in spans if s["name"].startswith(prefix)]


@pytest.fixture(scope="module")
def orders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``system.map(Order, [1, 2])`` inside the application's span ``checkout``; item 2's
    ``charge`` step fails; each branch waits (written, evicted, replayed) in between."""
    return run_app("orders", tmp_path_factory.mktemp("orders"))


def test_one_execution_forms_one_tree_across_service_worker_and_checkpoint(
        orders: dict[str, Any]) -> None:
    spans = of_execution(orders["spans"], "orders-1")
    known = by_id(orders["spans"])
    assert len({s["trace_id"] for s in spans}) == 1
    roots = [s for s in spans if s["parent_id"] not in known or s["name"].startswith("map ")]
    assert [s["name"] for s in roots] == ["map Order"]  # every other span hangs off a known one
    roles = {s["attributes"].get("durable.process.role") for s in spans}
    assert {"service", "actor:worker-0", "actor:checkpoint", "actor:scheduler"} <= roles
    names = {s["name"] for s in spans}
    assert {"map Order", "branch Order", "step price", "step charge", "wait settle",
            "checkpoint batch"} <= names


def test_the_callers_current_span_is_the_parent_of_the_execution_span(
        orders: dict[str, Any]) -> None:
    (execution,) = named(orders["spans"], "map Order")
    checkout = by_id(orders["spans"])[orders["request_span_id"]]
    assert execution["parent_id"] == checkout["span_id"]
    assert execution["trace_id"] == checkout["trace_id"]
    assert checkout["end"] <= execution["end"]  # it outlives the request that started it


def test_runs_steps_waits_and_batches_hang_off_the_span_they_were_made_for(
        orders: dict[str, Any]) -> None:
    spans = of_execution(orders["spans"], "orders-1")
    known = by_id(orders["spans"])
    (execution,) = named(spans, "map Order")
    runs = named(spans, "branch Order")
    assert len(runs) == 4  # each branch: a run to the wait, a replay after it
    assert all(run["parent_id"] == execution["span_id"] for run in runs)
    for step in named(spans, "step "):
        run = known[step["parent_id"]]
        assert run["name"] == "branch Order"
        assert run["attributes"]["durable.branch.id"] == step["attributes"]["durable.branch.id"]
        assert run["start"] <= step["start"] <= step["end"] <= run["end"]
    for wait in named(spans, "wait settle"):
        assert known[wait["parent_id"]]["name"] == "branch Order"
        assert wait["attributes"]["durable.suspension.outcome"] == "replayed"
        assert wait["attributes"]["durable.suspension.applied"] is True
    parents = {known[b["parent_id"]]["name"].split()[0] for b in named(spans, "checkpoint batch")}
    assert {"map", "branch", "step", "wait"} <= parents


def test_spans_carry_execution_branch_operation_ids_step_name_attempt_and_epoch(
        orders: dict[str, Any]) -> None:
    spans = of_execution(orders["spans"], "orders-1")
    (step,) = [s for s in named(spans, "step price")
               if s["attributes"]["durable.branch.id"] == "orders-1/0"]
    assert step["attributes"] == step["attributes"] | {
        "durable.execution.id": "orders-1", "durable.branch.id": "orders-1/0",
        "durable.operation.id": "1", "durable.step.name": "price", "durable.step.attempt": 1}
    assert step["attributes"]["durable.run.epoch"] >= 1
    run = by_id(spans)[step["parent_id"]]
    assert run["attributes"]["durable.branch.class"] == "Order"
    assert run["attributes"]["durable.branch.outcome"] == "suspended"
    assert run["attributes"]["durable.run.epoch"] == step["attributes"]["durable.run.epoch"]
    (execution,) = named(spans, "map Order")
    assert execution["attributes"] == execution["attributes"] | {
        "durable.execution.kind": "map", "durable.execution.branches": 2,
        "durable.execution.status": "SUCCEEDED", "durable.execution.failed": 1}
    assert all(s["scope"] == "durable_actors" for s in spans)


def test_a_failed_step_span_records_the_exception(orders: dict[str, Any]) -> None:
    spans = of_execution(orders["spans"], "orders-1")
    (failed,) = [s for s in named(spans, "step charge") if s["status"] == "ERROR"]
    assert failed["attributes"]["durable.branch.id"] == "orders-1/1"
    (event,) = failed["events"]
    assert event["name"] == "exception"
    assert event["attributes"]["exception.type"] == "KeyError"
    assert "card declined for order 2" in event["attributes"]["exception.message"]
    stacktrace = event["attributes"]["exception.stacktrace"]
    assert "in charge\n" in stacktrace  # the worker's frames, where it was raised
    assert stacktrace.rstrip().endswith("KeyError: 'card declined for order 2'")
    run = by_id(spans)[failed["parent_id"]]
    assert run["status"] == "ERROR" and run["attributes"]["durable.branch.outcome"] == "failed"


def test_an_async_branch_traces_like_a_sync_one(orders: dict[str, Any]) -> None:
    spans = of_execution(orders["spans"], "refunds-1")
    (execution,) = named(spans, "map Refund")
    (run,) = named(spans, "branch Refund")
    (step,) = named(spans, "step refund")
    assert (step["parent_id"], run["parent_id"]) == (run["span_id"], execution["span_id"])
    assert execution["parent_id"] == orders["request_span_id"]


def test_child_branch_runs_hang_off_the_run_that_started_them(orders: dict[str, Any]) -> None:
    spans = of_execution(orders["spans"], "invoices-1")
    known = by_id(spans)
    lines = named(spans, "branch Line")
    assert len(lines) == 2
    for line in lines:
        parent = known[line["parent_id"]]
        assert parent["name"] == "branch Invoice"
        assert line["attributes"]["durable.branch.parent_id"] == "invoices-1/0"
        assert parent["attributes"]["durable.branch.id"] == "invoices-1/0"


def test_the_applications_provider_is_used_and_none_is_installed(
        orders: dict[str, Any]) -> None:
    assert orders["provider_kept"]  # still the application's: the framework set none
    assert of_execution(orders["spans"], "orders-1")  # and its exporter got the spans


def test_nothing_is_recorded_without_a_provider(tmp_path: Path) -> None:
    found = run_app("unconfigured", tmp_path)
    assert found["provider_before"] == "ProxyTracerProvider"
    # Without a provider no run carried a trace context (its log lines would carry its ids)...
    assert found["before"]["events"] > 0 and found["before"]["with_trace_id"] == 0
    assert not of_execution(found["spans"], "before")
    # ... and once the application sets one, the next execution is traced, lines and spans.
    assert found["after"]["with_trace_id"] == found["after"]["events"] > 0
    assert named(of_execution(found["spans"], "after"), "step charge")


def test_an_execution_taken_over_after_a_restart_continues_its_trace(tmp_path: Path) -> None:
    first = run_app("interrupted", tmp_path)["spans"]  # stopped while its branch waits
    second = run_app("recovered", tmp_path)["spans"]  # a new service finishes it
    assert not named(first, "map ")  # the execution had not ended: its span was not emitted
    (execution,) = named(second, "map SlowOrder")
    (nightly,) = named(first, "nightly")
    assert execution["parent_id"] == nightly["span_id"]
    assert execution["start"] < nightly["end"]  # its start is the first service's
    assert [e["name"] for e in execution["events"]] == ["execution.resumed"]
    runs = named(first, "branch SlowOrder") + named(second, "branch SlowOrder")
    assert len(runs) == 2
    assert {r["parent_id"] for r in runs} == {execution["span_id"]}
    assert {s["trace_id"] for s in first + second} == {execution["trace_id"]}
    (wait,) = named(first, "wait settle")
    assert wait["attributes"]["durable.suspension.outcome"] == "stopped"
