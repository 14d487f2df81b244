"""Turn a durable-actors trace into the Chrome trace-event format that Perfetto opens.

The output is the JSON object form of the format (``{"traceEvents": [...]}``):

* one track per process (``pid``, named by a ``process_name`` metadata event
  after its role, e.g. ``worker-0 (pid 6385)``) and per thread (``tid``, named
  by a ``thread_name`` metadata event);
* complete spans (``"ph": "X"``, ``ts``/``dur`` in µs) for branch runs, steps
  (with the wait for their checkpoint's acknowledgement nested inside),
  checkpoint batches (with their store transaction nested inside);
* async spans (``"ph": "b"``/``"e"``) for suspensions, from the moment a branch
  suspends until it runs again (``evicted`` says whether it left its thread or
  stayed parked), and for executions, from creation to their end;
* every other event as an instant (``"ph": "i"``) on its thread, its fields as args.

``ts`` counts microseconds from the first event of the trace.

    data = chrome_trace(read_trace("trace.jsonl"))
    Path("trace.json").write_text(json.dumps(data))   # open it in ui.perfetto.dev
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Event = Mapping[str, Any]

# Fields every event has; they become the track, not the args.
_TRACK_FIELDS = frozenset({"system", "pid", "role", "actor", "thread", "ts", "level", "event"})
# Events that start and end a branch's run on a worker thread.
_RUN_START = "branch.running"
_RUN_ENDS = frozenset({"branch.succeeded", "branch.failed", "branch.suspended",
                       "branch.aborted", "branch.crashed"})
_STEP_ENDS = frozenset({"step.succeeded", "step.retrying"})  # they carry the step's duration
_SUSPEND_EVENTS = frozenset({"operation.suspending", "branch.suspended"})
_EXECUTION_STARTS = frozenset({"execution.created", "execution.resumed"})
_EXECUTION_END = "execution.finished"


def branch_of(event: Event) -> str | None:
    """The branch an event is about (``branch_id``, or ``branch`` as bound by hand)."""
    value = event.get("branch_id", event.get("branch"))
    return None if value is None else str(value)


def execution_of(event: Event) -> str | None:
    """The execution an event is about (``execution_id``, or ``execution`` as bound by hand)."""
    value = event.get("execution_id", event.get("execution"))
    return None if value is None else str(value)


def role_label(role: object) -> str:
    """``actor:worker-0`` → ``worker-0``; ``service`` stays ``service``."""
    text = str(role or "?")
    return text.removeprefix("actor:")


def _sort_index(role: str) -> int:
    order = {"service": 0, "checkpoint": 1, "scheduler": 2, "digest": 3}
    label = role_label(role)
    if label in order:
        return order[label]
    return 10 if label.startswith("worker") else 100


def _args(event: Event) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in _TRACK_FIELDS and v is not None}


def _ms(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and value >= 0 else None


@dataclass
class _Builder:
    t0: float
    out: list[dict[str, Any]] = field(default_factory=list)
    roles: dict[int, str] = field(default_factory=dict)
    threads: dict[int, dict[str, int]] = field(default_factory=dict)
    last_us: dict[int, float] = field(default_factory=dict)
    next_id: int = 1

    def us(self, ts: float) -> float:
        return round((ts - self.t0) * 1e6, 3)

    def track(self, event: Event) -> tuple[int, int]:
        pid = int(event["pid"])
        self.roles.setdefault(pid, str(event.get("role") or "?"))
        names = self.threads.setdefault(pid, {})
        tid = names.setdefault(str(event.get("thread") or "main"), len(names) + 1)
        self.last_us[pid] = max(self.last_us.get(pid, 0.0), self.us(float(event["ts"])))
        return pid, tid

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def complete(self, name: str, cat: str, pid: int, tid: int, end_us: float, dur_us: float,
                 args: dict[str, Any]) -> None:
        dur = max(0.0, round(dur_us, 3))
        self.out.append({"name": name, "cat": cat, "ph": "X", "ts": round(end_us - dur, 3),
                         "dur": dur, "pid": pid, "tid": tid, "args": args})

    def instant(self, event: Event, pid: int, tid: int) -> None:
        self.out.append({"name": str(event["event"]), "cat": str(event.get("level") or "event"),
                         "ph": "i", "s": "t", "ts": self.us(float(event["ts"])), "pid": pid,
                         "tid": tid, "args": _args(event)})

    def async_span(self, name: str, cat: str, pid: int, tid: int, start_us: float, end_us: float,
                   args: dict[str, Any]) -> None:
        ident = self.new_id()
        common = {"name": name, "cat": cat, "id": ident, "pid": pid, "tid": tid}
        self.out.append({**common, "ph": "b", "ts": start_us, "args": args})
        self.out.append({**common, "ph": "e", "ts": max(start_us, end_us)})

    def metadata(self) -> list[dict[str, Any]]:
        meta: list[dict[str, Any]] = []
        for pid, role in sorted(self.roles.items()):
            meta.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                         "args": {"name": f"{role_label(role)} (pid {pid})"}})
            meta.append({"name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0,
                         "args": {"sort_index": _sort_index(role)}})
            for thread, tid in self.threads[pid].items():
                meta.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                             "args": {"name": thread}})
        return meta


def chrome_trace(events: Sequence[Event]) -> dict[str, Any]:
    """The Chrome trace-event JSON object for ``events`` (dicts as ``read_trace`` gives them).

    Events without a numeric ``ts`` or an integer ``pid`` are left out.

        data = chrome_trace(read_trace("trace.jsonl"))
        assert {e["ph"] for e in data["traceEvents"]} <= {"M", "X", "b", "e", "i"}
    """
    usable = sorted((e for e in events if _is_usable(e)), key=lambda e: float(e["ts"]))
    builder = _Builder(t0=float(usable[0]["ts"]) if usable else 0.0)
    runs: dict[tuple[int, int, str], tuple[float, Event]] = {}
    suspended: dict[str, tuple[float, int, int, Event]] = {}
    executions: dict[str, tuple[float, int, int, Event]] = {}
    evicted: set[str] = set()
    branch_pids = {int(e["pid"]) for e in usable if e.get("event") == _RUN_START}

    for event in usable:
        pid, tid = builder.track(event)
        name = str(event.get("event"))
        now = builder.us(float(event["ts"]))
        branch = branch_of(event)

        if branch is not None and branch in suspended and pid in branch_pids \
                and name not in _SUSPEND_EVENTS:
            start, s_pid, s_tid, opened = suspended.pop(branch)
            builder.async_span(f"suspended {branch}", "suspension", s_pid, s_tid, start, now,
                               {**_args(opened), "evicted": branch in evicted})
            evicted.discard(branch)

        if name in _STEP_ENDS and _ms(event.get("duration_ms")) is not None:
            duration = float(event["duration_ms"]) * 1e3
            builder.complete(f"step {event.get('step', '?')}", "step", pid, tid, now, duration,
                             _args(event))
            acked = _ms(event.get("checkpoint_ms"))
            if acked is not None:
                builder.complete("checkpoint ack", "checkpoint", pid, tid, now,
                                 min(acked * 1e3, duration), {"op_id": event.get("op_id")})
            continue
        if name == "checkpoint.batch" and _ms(event.get("duration_ms")) is not None:
            store = float(event["duration_ms"]) * 1e3
            whole = _ms(event.get("batch_ms"))
            args = _args(event)
            if whole is not None:
                builder.complete("checkpoint.batch", "checkpoint", pid, tid, now,
                                 max(whole * 1e3, store), args)
            builder.complete("store.commit", "store", pid, tid, now, store, args)
            continue
        if name == _RUN_START and branch is not None:
            runs[(pid, tid, branch)] = (now, event)
            continue
        if name in _RUN_ENDS and branch is not None and (pid, tid, branch) in runs:
            start, opened = runs.pop((pid, tid, branch))
            builder.complete(f"branch {branch}", "branch", pid, tid, now, now - start,
                             {**_args(opened), "outcome": name, **_args(event)})
            if name != "branch.suspended":
                continue
        if name == "operation.suspending" and branch is not None:
            suspended[branch] = (now, pid, tid, event)
        elif name == "branch.suspended" and branch is not None:
            evicted.add(branch)  # written and off its thread, not parked: it comes back by replay
        execution = execution_of(event)
        if name in _EXECUTION_STARTS and execution is not None:
            executions[execution] = (now, pid, tid, event)
        elif name == _EXECUTION_END and execution is not None and execution in executions:
            start, e_pid, e_tid, opened = executions.pop(execution)
            builder.async_span(f"execution {execution}", "execution", e_pid, e_tid, start, now,
                               {**_args(opened), **_args(event)})
        builder.instant(event, pid, tid)

    # Whatever is still open when the trace ends (a crash, a trace cut short) ends there.
    for (pid, tid, branch), (start, opened) in runs.items():
        end = builder.last_us.get(pid, start)
        builder.complete(f"branch {branch}", "branch", pid, tid, end, end - start,
                         {**_args(opened), "outcome": "unfinished in this trace"})
    end_of_trace = max(builder.last_us.values(), default=0.0)
    for branch, (start, pid, tid, opened) in suspended.items():
        builder.async_span(f"suspended {branch}", "suspension", pid, tid, start, end_of_trace,
                           {**_args(opened), "outcome": "still suspended at the end"})
    for execution, (start, pid, tid, opened) in executions.items():
        builder.async_span(f"execution {execution}", "execution", pid, tid, start, end_of_trace,
                           {**_args(opened), "outcome": "unfinished in this trace"})

    spans = sorted(builder.out, key=lambda e: float(e["ts"]))
    systems = sorted({str(e["system"]) for e in usable if e.get("system")})
    return {
        "traceEvents": builder.metadata() + spans,
        "displayTimeUnit": "ms",
        "otherData": {"generator": "durable-actors trace", "systems": systems,
                      "start_unix_s": builder.t0},
    }


def _is_usable(event: Event) -> bool:
    ts, pid = event.get("ts"), event.get("pid")
    return (isinstance(ts, int | float) and not isinstance(ts, bool)
            and isinstance(pid, int) and not isinstance(pid, bool) and "event" in event)


__all__ = ["branch_of", "chrome_trace", "execution_of", "role_label"]
