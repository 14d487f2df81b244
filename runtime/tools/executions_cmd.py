"""``durable-actors executions list|show|cancel|retry|delete``: managing a store's executions.

Every verb works from any machine that can open the store, with no service of
its own running: ``list`` and ``show`` only read; ``cancel`` marks an execution
``CANCELLED`` and signals its owner (which stops it at its next lease round);
``retry`` reopens a ``FAILED`` or ``CANCELLED`` execution with a lease that has
already expired, so that a running service (``recover=True``) takes it over at
its next round — or, with ``--here``, runs it to its end in this process;
``delete`` removes a finished execution's rows and the blobs nothing else refers
to. Each prints a table, or one JSON document with ``--json``.

    durable-actors executions list --status FAILED --json
    durable-actors executions retry nightly-1 --here
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from actors.errors import DurableActorsError
from actors.records._rows import ExecutionRecord
from actors.records._status import ExecutionStatus
from runtime import serialization
from runtime.config import SystemConfig
from runtime.durable._blob_gc import collect_blobs
from runtime.durable._liveness import HOST
from runtime.durable._refs import blob_dir_for
from runtime.durable._store_url import absolute_store_url
from runtime.stores import open_store
from runtime.system import ActorSystem
from runtime.tools.inspect_cmd import ago, duration, open_reader
from runtime.tools.inspect_data import execution_summary

VERBS = ("list", "show", "cancel", "retry", "delete")


def record_data(record: ExecutionRecord, now: float) -> dict[str, Any]:
    expires = record.lease_expires_at
    return {
        "id": record.execution_id, "status": record.status.value, "kind": record.kind,
        "branches": record.branch_count, "owner": record.owner,
        "lease_epoch": record.lease_epoch,
        "lease_expires_in": None if expires is None else round(expires - now, 3),
        "deadline_in": None if record.deadline_at is None else round(record.deadline_at - now, 3),
        "created_at": record.created_at, "updated_at": record.updated_at,
    }


def main(verb: str, *, store: str | None, execution: str | None = None,
         status: str | None = None, as_json: bool = False, here: bool = False,
         timeout: float | None = None, blob_dir: str | None = None) -> int:
    """Run one verb; the exit code: 0 done, 1 nothing to do (or it failed), 2 bad use."""
    out = Console(highlight=False, soft_wrap=True)
    url = absolute_store_url(store)
    if verb not in VERBS:
        out.print(f"unknown verb {verb!r}; use one of {', '.join(VERBS)}")
        return 2
    if verb != "list" and not execution:
        out.print(f"`executions {verb}` needs an execution id")
        return 2
    try:
        if verb == "list":
            return _list(out, url, status, as_json)
        assert execution is not None
        if verb == "show":
            return _show(out, url, execution, as_json)
        if verb == "cancel":
            return _cancel(out, url, execution, as_json)
        if verb == "retry":
            return _retry(out, url, execution, as_json, here, timeout, blob_dir)
        return _delete(out, url, execution, as_json, blob_dir)
    except (DurableActorsError, ValueError) as exc:
        _say(out, as_json, {"error": type(exc).__name__, "message": str(exc)},
             f"{type(exc).__name__}: {exc}")
        return 1


def _say(out: Console, as_json: bool, document: Any, text: str) -> None:
    if as_json:
        out.print_json(json.dumps(document, default=str))
    else:
        out.print(text)


def _list(out: Console, url: str, status: str | None, as_json: bool) -> int:
    wanted = ExecutionStatus(status.upper()) if status else None
    reader = open_reader(url)
    try:
        records = list(reversed(reader.read_executions(wanted)))
    finally:
        reader.close()
    now = time.time()
    rows = [record_data(r, now) for r in records]
    if as_json:
        out.print_json(json.dumps({"executions": rows}))
        return 0
    table = Table()
    for header in ("execution", "status", "kind", "branches", "owner", "lease", "created"):
        table.add_column(header, no_wrap=header in ("execution", "owner"))  # ids stay whole
    for row in rows:
        table.add_row(row["id"], row["status"], row["kind"], str(row["branches"]),
                      row["owner"] or "-", lease_text(row), ago(row["created_at"], now))
    out.print(table)
    return 0


def lease_text(row: dict[str, Any]) -> str:
    """A row's lease for people: a finished execution holds none, whatever its row says."""
    lease = row["lease_expires_in"]
    if ExecutionStatus(row["status"]).finished:
        return "-"
    if lease is None:
        return "unclaimed"
    return f"{duration(lease)} left" if lease > 0 else f"expired {duration(-lease)} ago"


def show_lines(document: dict[str, Any], now: float) -> list[tuple[str, str]]:
    """``executions show`` for people: one (label, text) pair a line, times relative to now."""
    summary = document["summary"]
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary["counts"].items()))
    deadline = document["deadline_in"]
    finished = ExecutionStatus(document["status"]).finished
    held = "none (finished)" if finished else lease_text(document)
    lines = [
        ("execution", document["id"]),
        ("status", document["status"]),
        ("kind", document["kind"]),
        ("branches", f"{document['branches']}" + (f" ({counts})" if counts else "")),
        ("owner", document["owner"] or "-"),
        ("lease", f"{held}, epoch {document['lease_epoch']}"),
        ("deadline", "-" if deadline is None else ago(now + deadline, now)),
        ("created", _when(document["created_at"], now)),
        ("updated", _when(document["updated_at"], now)),
    ]
    error = summary.get("error")
    if error:
        lines.append(("error", f"{error.get('type', '')}: {error.get('message', '')}".strip()))
    return lines


def _when(timestamp: float, now: float) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))
    return f"{stamp} ({ago(timestamp, now)})"


def _show(out: Console, url: str, execution: str, as_json: bool) -> int:
    reader = open_reader(url)
    try:
        record = reader.read_execution(execution)
        if record is None:
            _say(out, as_json, {"error": "UnknownExecutionError", "id": execution},
                 f"no execution {execution!r} in this store")
            return 1
        summary = execution_summary(record, reader.read_branches(execution))
    finally:
        reader.close()
    now = time.time()
    document = {**record_data(record, now), "summary": summary}
    if as_json:
        out.print_json(json.dumps(document, default=str))
    else:
        for label, text in show_lines(document, now):
            out.print(f"{label:>9}: {text}")
    return 0


def _writer(url: str) -> Any:
    return open_store(url)


def _cancel(out: Console, url: str, execution: str, as_json: bool) -> int:
    store = _writer(url)
    try:
        before = store.read_execution(execution)
        record = store.cancel_execution(execution, time.time())
    finally:
        store.close()
    cancelled = before is not None and not before.status.finished and (
        record.status is ExecutionStatus.CANCELLED)
    _say(out, as_json, {"id": execution, "cancelled": cancelled, "status": record.status.value},
         f"{execution}: CANCELLED; its owner stops it at its next lease round" if cancelled
         else f"{execution} had finished already: {record.status.value}")
    return 0 if cancelled else 1


def _retry(out: Console, url: str, execution: str, as_json: bool, here: bool,
           timeout: float | None, blob_dir: str | None) -> int:
    if here:
        return _retry_here(out, url, execution, as_json, timeout, blob_dir)
    store = _writer(url)
    try:
        record = store.read_execution(execution)
        spec_timeout = None
        if record is not None and record.spec is not None:
            try:  # a spec's classes may not load here: then it has no deadline
                spec_timeout = serialization.loads(record.spec).timeout
            except Exception:
                spec_timeout = None
        now = time.time()
        deadline = None if spec_timeout is None else now + spec_timeout
        # Leased to nobody alive: the lease expires now, so a running service claims it.
        claim = store.reopen_execution(execution, f"cli@{HOST}:{os.getpid()}", 0.0, now,
                                       deadline)
    finally:
        store.close()
    if claim.lease is None:
        _say(out, as_json, {"id": execution, "retried": False,
                            "status": claim.record.status.value},
             f"{execution} is {claim.record.status.value}: only a FAILED or CANCELLED "
             "execution can be retried")
        return 1
    _say(out, as_json, {"id": execution, "retried": True, "status": "RUNNING"},
         f"{execution}: reopened; a running service (recover=True) takes it over at its next "
         "lease round (or run it here: --here)")
    return 0


def _retry_here(out: Console, url: str, execution: str, as_json: bool,
                timeout: float | None, blob_dir: str | None) -> int:
    with ActorSystem(store=url, config=SystemConfig(blob_dir=blob_dir)) as system:
        run = system.retry(execution)
        result = run.result(timeout=timeout)
    _say(out, as_json, {"id": execution, "retried": True, "status": result.status.value,
                        "succeeded": result.succeeded, "failed": result.failed},
         f"{execution}: {result.status.value} ({result.succeeded} succeeded, "
         f"{result.failed} failed)")
    return 0 if not result.failed else 1


def _delete(out: Console, url: str, execution: str, as_json: bool,
            blob_dir: str | None) -> int:
    store = _writer(url)
    try:
        payloads = list(store.read_payloads(execution))
        deleted = store.delete_execution(execution)
        blobs = 0
        if deleted and payloads:
            directory = blob_dir_for(url, blob_dir)
            if directory is not None and Path(directory).is_dir():
                blobs = collect_blobs(store, Path(directory), payloads, execution)
    finally:
        store.close()
    _say(out, as_json, {"id": execution, "deleted": deleted, "blobs_deleted": blobs},
         f"{execution}: deleted ({blobs} blob(s) no other execution refers to)" if deleted
         else f"no execution {execution!r} in this store")
    return 0 if deleted else 1


__all__ = ["VERBS", "main", "record_data"]
