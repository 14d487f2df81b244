"""``durable-actors trace``: filters, the aligned timeline, and the Chrome trace-event export."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from runtime import ActorSystem, SystemConfig
from runtime.chrome_trace import chrome_trace
from runtime.demo import Fingerprint
from runtime.testing import TraceEvents
from runtime.trace_cmd import load_events
from runtime.trace_cmd import main as trace_main

from branch_kinds import Kind
from branches_for_tests import Waits

T0 = 1_700_000_000.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def ev(at: float, event: str, *, pid: int = 100, role: str = "service", thread: str = "MainThread",
       **fields: Any) -> dict[str, Any]:
    actor = role.removeprefix("actor:") if role.startswith("actor:") else None
    return {"event": event, "ts": T0 + at, "pid": pid, "role": role, "actor": actor,
            "thread": thread, "system": "sys-1", "level": "info", **fields}


WORKER = {"pid": 200, "role": "actor:worker-0", "thread": "worker-branch_0"}
CHECKPOINT = {"pid": 300, "role": "actor:checkpoint", "thread": "StoreCheckpointActor-0"}

SAMPLE = [
    ev(0.0, "system.started"),
    ev(0.1, "execution.created", execution_id="e", branches=11),
    ev(0.2, "branch.running", execution_id="e", branch_id="e/1", **WORKER),
    ev(0.3, "step.succeeded", execution_id="e", branch_id="e/1", op_id="1", step="fetch",
       duration_ms=50.0, checkpoint_ms=20.0, **WORKER),
    ev(0.35, "checkpoint.batch", ops=3, updates=3, empties=0, duration_ms=4.0, batch_ms=10.0,
       **CHECKPOINT),
    ev(0.4, "operation.suspending", execution_id="e", branch_id="e/1", op_id="2", kind="WAIT",
       **WORKER),
    ev(0.41, "branch.suspended", execution_id="e", branch_id="e/1", op_id="2", **WORKER),
    ev(0.5, "branch.running", execution_id="e", branch_id="e/10", **WORKER),
    ev(0.6, "branch.succeeded", execution_id="e", branch_id="e/10", **WORKER),
    ev(1.4, "branch.running", execution_id="e", branch_id="e/1", replay=True, **WORKER),
    ev(1.5, "branch.succeeded", execution_id="e", branch_id="e/1", **WORKER),
    ev(1.6, "branch.running", execution_id="other", branch_id="other/0", **WORKER),
    ev(1.7, "branch.succeeded", execution_id="other", branch_id="other/0", **WORKER),
    ev(2.0, "execution.finished", execution_id="e", status="SUCCEEDED"),
]


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "trace.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in SAMPLE))
    return path


def timeline(path: Path, **options: Any) -> list[str]:
    out = io.StringIO()
    assert trace_main(str(path), out=out, **options) == 0
    return out.getvalue().splitlines()


def events_of(lines: list[str]) -> list[str]:
    return [line.split()[4] for line in lines]


# -- the timeline ------------------------------------------------------------------------


def test_execution_filter_keeps_only_that_executions_events(sample: Path) -> None:
    lines = timeline(sample, execution="other")
    assert events_of(lines) == ["branch.running", "branch.succeeded"]
    assert all("other/0" in line for line in lines)


def test_branch_filter_keeps_the_branch_and_children_but_not_a_sibling_with_its_prefix(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.jsonl"
    rows = [ev(0, "x", branch_id="e/1"), ev(1, "x", branch_id="e/1/3/0"),
            ev(2, "x", branch_id="e/10"), ev(3, "x")]
    path.write_text("".join(json.dumps(e) + "\n" for e in rows))
    assert [line.split()[5] for line in timeline(path, branch="e/1")] == ["e/1", "e/1/3/0"]


def test_actor_filter_matches_an_actor_name_or_a_role(sample: Path) -> None:
    assert events_of(timeline(sample, actor="checkpoint")) == ["checkpoint.batch"]
    assert set(events_of(timeline(sample, actor="service"))) == {
        "system.started", "execution.created", "execution.finished"}


def test_since_takes_seconds_from_the_start_of_the_trace(sample: Path) -> None:
    assert events_of(timeline(sample, since="1.55")) == [
        "branch.running", "branch.succeeded", "execution.finished"]


def test_since_takes_an_iso_date_time(sample: Path) -> None:
    moment = datetime.fromtimestamp(T0 + 1.95).isoformat()
    assert events_of(timeline(sample, since=moment)) == ["execution.finished"]


def test_an_unusable_since_is_a_clear_error_with_exit_code_2(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert trace_main(str(sample), since="yesterday", out=io.StringIO()) == 2
    assert "--since 'yesterday' is neither seconds" in capsys.readouterr().err


def test_a_missing_trace_file_is_a_clear_error_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert trace_main(str(tmp_path / "nope.jsonl"), out=io.StringIO()) == 2
    assert "cannot read the trace" in capsys.readouterr().err


def test_the_timeline_is_one_aligned_line_per_event_in_time_order(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    shuffled = [SAMPLE[3], SAMPLE[0], SAMPLE[4], SAMPLE[1]]  # processes append out of order
    path.write_text("".join(json.dumps(e) + "\n" for e in shuffled))
    lines = timeline(path)
    assert events_of(lines) == ["system.started", "execution.created", "step.succeeded",
                                "checkpoint.batch"]
    assert lines[0].split()[0] == "0.000s" and lines[2].split()[0] == "0.300s"
    assert len({line.index(name) for line, name in zip(lines, events_of(lines),
                                                          strict=True)}) == 1


def test_colour_is_used_only_when_asked_or_on_a_terminal(sample: Path) -> None:
    assert not any(ANSI.search(line) for line in timeline(sample))  # a StringIO is no terminal
    coloured = timeline(sample, colour="always")
    assert all(ANSI.search(line) for line in coloured)
    assert [ANSI.sub("", line) for line in coloured] == timeline(sample)


def test_unreadable_lines_are_skipped_and_counted(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sample.open("a") as trace:
        trace.write('{"event": "cut sho\n')
    assert len(timeline(sample)) == len(SAMPLE)
    assert "skipped 1 unreadable line" in capsys.readouterr().err


# -- the Chrome trace-event format -------------------------------------------------------

# Keys each phase requires (the Trace Event Format document; "M" is metadata).
REQUIRED = {
    "X": {"name", "ph", "ts", "dur", "pid", "tid"},
    "B": {"name", "ph", "ts", "pid", "tid"},
    "E": {"ph", "ts", "pid", "tid"},
    "i": {"name", "ph", "ts", "pid", "tid", "s"},
    "b": {"name", "cat", "id", "ph", "ts", "pid", "tid"},
    "e": {"name", "cat", "id", "ph", "ts", "pid", "tid"},
    "M": {"name", "ph", "pid", "args"},
}
METADATA_NAMES = {"process_name", "process_sort_index", "thread_name", "thread_sort_index"}


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def assert_valid_trace_event_json(text: str) -> dict[str, Any]:
    """Fail unless ``text`` is trace-event JSON as Perfetto and chrome://tracing read it."""
    data = json.loads(text)
    assert isinstance(data, dict) and isinstance(data["traceEvents"], list)
    named_processes: Counter[int] = Counter()
    named_threads: set[tuple[int, int]] = set()
    used: set[tuple[int, int]] = set()
    open_async: Counter[tuple[str, object]] = Counter()
    for event in data["traceEvents"]:
        phase = event["ph"]
        assert phase in REQUIRED, event
        assert REQUIRED[phase] <= event.keys(), (phase, REQUIRED[phase] - event.keys())
        assert isinstance(event["pid"], int) and not isinstance(event["pid"], bool)
        if "tid" in event:
            assert isinstance(event["tid"], int) and not isinstance(event["tid"], bool)
        if "args" in event:
            assert isinstance(event["args"], dict)
        if phase == "M":
            assert event["name"] in METADATA_NAMES
            if event["name"] == "process_name":
                named_processes[event["pid"]] += 1
                assert isinstance(event["args"]["name"], str)
            if event["name"] == "thread_name":
                named_threads.add((event["pid"], event["tid"]))
            continue
        assert is_number(event["ts"]) and event["ts"] >= 0
        used.add((event["pid"], event["tid"]))
        if phase == "X":
            assert is_number(event["dur"]) and event["dur"] >= 0
        if phase == "i":
            assert event["s"] in {"g", "p", "t"}
        if phase in "be":
            open_async[(event["cat"], event["id"])] += 1 if phase == "b" else -1
    assert_complete_events_nest(data["traceEvents"])
    assert all(count == 1 for count in named_processes.values()), named_processes
    assert {pid for pid, _ in used} <= named_processes.keys()
    assert used <= named_threads
    assert not +open_async and not -open_async, "every async begin has its end"
    return dict(data)


def assert_complete_events_nest(events: list[dict[str, Any]], slack_us: float = 5.0) -> None:
    """On each thread, "X" spans nest or follow each other; viewers draw overlaps wrongly."""
    by_track: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for event in events:
        if event["ph"] == "X":
            by_track.setdefault((event["pid"], event["tid"]), []).append(event)
    for track in by_track.values():
        open_ends: list[float] = []
        for span in sorted(track, key=lambda e: (e["ts"], -e["dur"])):
            while open_ends and open_ends[-1] <= span["ts"] + slack_us:
                open_ends.pop()
            end = span["ts"] + span["dur"]
            assert not open_ends or end <= open_ends[-1] + slack_us, f"{span} overlaps its parent"
            open_ends.append(end)


def spans(data: Mapping[str, Any], cat: str) -> list[dict[str, Any]]:
    return [e for e in data["traceEvents"] if e.get("cat") == cat and e["ph"] in "Xb"]


def test_export_of_a_sample_is_valid_trace_event_json() -> None:
    assert_valid_trace_event_json(json.dumps(chrome_trace(SAMPLE)))


def test_export_has_one_named_track_per_process_and_thread() -> None:
    data = chrome_trace(SAMPLE)
    names = {e["pid"]: e["args"]["name"] for e in data["traceEvents"]
             if e["name"] == "process_name"}
    assert names == {100: "service (pid 100)", 200: "worker-0 (pid 200)",
                     300: "checkpoint (pid 300)"}
    threads = {(e["pid"], e["args"]["name"]) for e in data["traceEvents"]
               if e["name"] == "thread_name"}
    assert (200, "worker-branch_0") in threads


def test_a_step_is_a_span_ending_at_its_event_with_its_checkpoint_wait_inside() -> None:
    data = chrome_trace(SAMPLE)
    (step,) = spans(data, "step")
    assert step["name"] == "step fetch"
    assert step["ts"] == pytest.approx(0.25e6) and step["dur"] == pytest.approx(50_000)
    (ack,) = [e for e in spans(data, "checkpoint") if e["name"] == "checkpoint ack"]
    assert (ack["pid"], ack["tid"]) == (step["pid"], step["tid"])
    assert ack["ts"] + ack["dur"] == pytest.approx(step["ts"] + step["dur"])
    assert ack["dur"] == pytest.approx(20_000)


def test_a_checkpoint_batch_is_a_span_around_its_store_call() -> None:
    data = chrome_trace(SAMPLE)
    (batch,) = [e for e in spans(data, "checkpoint") if e["name"] == "checkpoint.batch"]
    (store,) = spans(data, "store")
    assert batch["dur"] == pytest.approx(10_000) and store["dur"] == pytest.approx(4_000)
    assert batch["ts"] <= store["ts"] and store["ts"] + store["dur"] == pytest.approx(
        batch["ts"] + batch["dur"])


def test_branch_runs_and_suspensions_are_spans() -> None:
    data = chrome_trace(SAMPLE)
    runs = {(e["name"], e["args"]["outcome"]) for e in spans(data, "branch")}
    assert ("branch e/1", "branch.suspended") in runs and ("branch e/1", "branch.succeeded") in runs
    (begin,) = spans(data, "suspension")
    (end,) = [e for e in data["traceEvents"] if e["ph"] == "e" and e["cat"] == "suspension"]
    assert begin["name"] == "suspended e/1" and begin["args"]["evicted"] is True
    assert begin["ts"] == pytest.approx(0.4e6) and end["ts"] == pytest.approx(1.4e6)


def test_a_suspension_resumed_in_place_ends_at_its_next_operation_and_was_not_evicted() -> None:
    parked = [
        ev(0.0, "branch.running", branch_id="e/0", **WORKER),
        ev(0.1, "operation.suspending", branch_id="e/0", op_id="1", kind="WAIT", **WORKER),
        ev(0.15, "suspension.deferred", branch_id="e/0", pid=400, role="actor:scheduler"),
        ev(0.2, "step.succeeded", branch_id="e/0", op_id="2", step="s", duration_ms=1.0,
           **WORKER),
    ]
    (begin,) = spans(chrome_trace(parked), "suspension")
    (end,) = [e for e in chrome_trace(parked)["traceEvents"] if e["ph"] == "e"]
    assert begin["args"]["evicted"] is False
    assert end["ts"] == pytest.approx(0.2e6)  # not at the scheduler's event


def test_an_execution_is_an_async_span_from_creation_to_its_end() -> None:
    data = chrome_trace(SAMPLE)
    (begin,) = spans(data, "execution")
    (end,) = [e for e in data["traceEvents"] if e["ph"] == "e" and e["cat"] == "execution"]
    assert begin["ts"] == pytest.approx(0.1e6) and end["ts"] == pytest.approx(2.0e6)


def test_spans_left_open_by_a_crash_end_with_the_trace() -> None:
    cut = SAMPLE[:6]  # e/1 is suspended, the execution unfinished
    data = assert_valid_trace_event_json(json.dumps(chrome_trace(cut)))
    (suspension,) = spans(data, "suspension")
    assert suspension["args"]["outcome"] == "still suspended at the end"


# -- on a real system --------------------------------------------------------------------


@pytest.fixture
def actor_system_config(tmp_path: Path) -> SystemConfig:
    return SystemConfig(workers=2, trace_path=str(tmp_path / "trace.jsonl"))


@pytest.mark.timeout(120)
def test_a_trace_of_the_demo_job_exports_one_track_per_process_and_filters_by_execution(
    actor_system: ActorSystem, trace_events: TraceEvents, tmp_path: Path
) -> None:
    actor_system.map(Fingerprint, range(12), execution_id="demo-12").result(timeout=60)
    actor_system.map(Kind.SYNC(Waits), [("w", 0.0)], execution_id="other").result(timeout=60)
    trace_events.wait_for("execution.finished", execution_id="other")
    trace = Path(trace_events.path)
    out = tmp_path / "trace.json"

    exported = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "trace", str(trace), "--perfetto", str(out)],
        capture_output=True, text=True, timeout=60, check=True)
    assert "Chrome trace-event JSON" in exported.stdout
    data = assert_valid_trace_event_json(out.read_text())
    events = load_events(trace)[0]
    tracks = {e["pid"]: e["args"]["name"] for e in data["traceEvents"]
              if e["name"] == "process_name"}
    assert sorted(tracks) == sorted({e["pid"] for e in events})  # one track per process
    roles = {name.split(" (pid")[0] for name in tracks.values()}
    assert {"service", "checkpoint", "worker-0", "worker-1"} <= roles
    assert {e["name"] for e in spans(data, "step")} >= {
        "step fingerprint", "step publish", "step confirm"}
    assert spans(data, "store") and spans(data, "branch") and spans(data, "suspension")

    shown = timeline(trace, execution="other")
    assert shown and all(" other" in line for line in shown)
    assert not any("demo-12" in line for line in shown)
