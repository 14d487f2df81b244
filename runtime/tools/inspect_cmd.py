"""``durable-actors inspect``: what a store holds, read without ever writing to it.

    durable-actors inspect                      # a table of the executions in ./.durable/
    durable-actors inspect demo-300             # its first 20 branches as a tree of ops
    durable-actors inspect demo-300 --failed    # only failed branches, with tracebacks
    durable-actors inspect demo-300 --json | jq '.branches.items[].result'
    durable-actors inspect --store sqlite:////var/lib/app/state.db nightly-1 --offset 20

The store is opened read-only (``?mode=ro``): SQLite in WAL mode lets this read
the last committed state while a running system writes, and never takes the
write lock that system's checkpoint actor needs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from actors.errors import StoreError
from actors.records._status import BranchStatus, ExecutionStatus, OpStatus
from actors.store._contract import Store
from runtime.durable._store_url import absolute_store_url
from runtime.stores import open_store, read_only_url, redacted_url
from runtime.tools.inspect_data import error_info, execution_summary, execution_view

PAGE = 20  # top-level branches the tree shows unless --limit says otherwise

_STYLES = {
    "SUCCEEDED": "green", "FAILED": "red", "RUNNING": "yellow", "STARTED": "yellow",
    "SUSPENDED": "cyan", "RETRYING": "magenta", "PENDING": "dim",
}


def sqlite_path(url: str) -> Path | None:
    """The file a ``sqlite:///`` URL names (``None`` for other schemes)."""
    scheme, _, rest = url.partition("://")
    if scheme.lower() != "sqlite":
        return None
    return Path(rest.partition("?")[0][1:])


def open_reader(url: str) -> Store:
    """Open ``url`` only to read: SQLite and PostgreSQL URLs get ``mode=ro``: nothing is written.

        reader = open_reader(absolute_store_url(None))
        try:
            executions = reader.read_executions()
        finally:
            reader.close()
    """
    return open_store(read_only_url(url))


def ago(timestamp: float, now: float) -> str:
    """``timestamp`` relative to ``now`` for people: "4.2 s ago", "3 min ago", "in 1.5 s"."""
    delta = now - timestamp
    text = duration(abs(delta))
    if abs(delta) < 0.05:
        return "just now"
    return f"{text} ago" if delta > 0 else f"in {text}"


def duration(seconds: float) -> str:
    """A length of time with the unit that reads best: "12 ms", "4.2 s", "3 min", "2.5 h"."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def error_text(error: dict[str, str] | None, limit: int = 160) -> str | None:
    """``KeyError: 'missing'`` for a logged failure, cut to ``limit`` characters."""
    if error is None:
        return None
    text = f"{error['type']}: {error['message']}" if error["message"] else error["type"]
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _status(value: str) -> str:
    style = _STYLES.get(value, "")
    return f"[{style}]{value}[/]" if style else value


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def parse_status(value: str | None, failed: bool, kinds: type[Any]) -> Any:
    """The status ``--status`` (or ``--failed``) names; ``ValueError`` listing the valid ones."""
    if failed:
        value = value or "FAILED"
        if value.upper() != "FAILED":
            raise ValueError(f"--failed and --status {value} ask for different statuses")
    if value is None:
        return None
    try:
        return kinds(value.upper())
    except ValueError:
        names = ", ".join(s.value for s in kinds)
        raise ValueError(f"unknown status {value!r}; use one of {names}") from None


def main(store: str | None = None, execution: str | None = None,
         console: Console | None = None, *, as_json: bool = False, status: str | None = None,
         failed: bool = False, offset: int = 0, limit: int | None = None) -> int:
    """Print the executions of ``store``, or the tree of ``execution``; 1 if there is none.

    ``status``/``failed`` keep executions (or top-level branches) of that status;
    ``offset``/``limit`` page through branches (the tree shows ``PAGE`` unless told;
    ``limit=0`` shows all); ``as_json`` prints one JSON document instead.
    """
    out = console or Console()
    err = Console(stderr=True) if console is None else console
    try:
        wanted = parse_status(status, failed,
                              BranchStatus if execution is not None else ExecutionStatus)
        if offset < 0 or (limit is not None and limit < 0):
            raise ValueError("--offset and --limit take a count >= 0")
    except ValueError as exc:
        err.print(str(exc), soft_wrap=True, markup=False)
        return 2
    url = absolute_store_url(store)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        err.print(f"no store at {path}: run `durable-actors demo` first, or give --store URL",
                  soft_wrap=True, markup=False)
        return 1
    try:
        reader = open_reader(url)
    except StoreError as exc:
        err.print(f"cannot read the store: {exc}", soft_wrap=True, markup=False)
        return 1
    try:
        if execution is None:
            return _list(out, reader, path or redacted_url(url), wanted, as_json)
        record = reader.read_execution(execution)
        if record is None:
            err.print(f"no execution {execution!r} in {path or redacted_url(url)}; "
                      "`durable-actors inspect` lists the executions it holds",
                      soft_wrap=True, markup=False)
            return 1
        page = limit if limit is not None else (None if as_json else PAGE)
        view = execution_view(reader, record, status=wanted, offset=offset,
                              limit=page or None)
        if as_json:
            _print_json(out, view)
        else:
            out.print(execution_tree(view, time.time(), tracebacks=failed))
            _print_paging(out, view, execution)
        return 0
    finally:
        reader.close()


def _print_json(out: Console, document: Any) -> None:
    # Plain print: rich would wrap long lines and colour the JSON.
    out.file.write(json.dumps(document, indent=2) + "\n")


def _list(console: Console, reader: Store, where: object, status: ExecutionStatus | None,
          as_json: bool) -> int:
    executions = [r for r in reader.read_executions() if status is None or r.status is status]
    rows = [execution_summary(r, reader.read_branches(r.execution_id)) for r in executions]
    if as_json:
        _print_json(console, {"store": str(where), "executions": rows})
        return 0
    if not rows:
        which = f"{status.value.lower()} executions" if status is not None else "executions"
        console.print(f"no {which} in {where}", soft_wrap=True, markup=False)
        return 0
    now = time.time()
    table = Table(title=f"executions in {escape(str(where))}", title_justify="left")
    for column in ("id", "kind", "status", "branches", "created", "updated"):
        table.add_column(column, overflow="fold")
    for row in rows:
        counts = _counts(row["counts"])
        table.add_row(
            escape(row["id"]), row["kind"], _status(row["status"]),
            f"{row['branch_count']}" + (f" ({counts})" if counts else ""),
            ago(row["created_at"], now), ago(row["updated_at"], now),
        )
    console.print(table)
    return 0


def execution_tree(view: dict[str, Any], now: float, *, tracebacks: bool = False) -> Tree:
    """The execution, a page of its top-level branches, their ops, and children under their op.

    ``tracebacks`` prints each failure's traceback under its branch or operation.
    """
    record = view["execution"]
    counts = _counts(record["counts"])
    failure = error_text(record["error"])
    root = Tree(
        f"[bold]execution {escape(record['id'])}[/] · {record['kind']} · "
        f"{_status(record['status'])} · {record['branch_count']} branches"
        + (f" ({counts})" if counts else "")
        + f" · created {ago(record['created_at'], now)} · "
        f"updated {ago(record['updated_at'], now)}"
        + (f" · error {escape(failure)}" if failure else "")
    )
    for branch in view["branches"]["items"]:
        _add_branch(root, branch, now, tracebacks)
    return root


def _add_branch(parent: Tree, branch: dict[str, Any], now: float, tracebacks: bool) -> None:
    label = (f"branch [bold]{escape(branch['id'])}[/] · {_status(branch['status'])} · "
             f"run {branch['epoch']} · updated {ago(branch['updated_at'], now)}")
    if branch["status"] in (BranchStatus.SUCCEEDED.value, BranchStatus.FAILED.value):
        label += f" · took {duration(branch['updated_at'] - branch['created_at'])}"
    if branch["result"] is not None:
        label += f" · → {escape(branch['result'])}"
    if (failure := error_text(branch["error"])) is not None:
        label += f" · error [red]{escape(failure)}[/]"
    node = parent.add(label)
    _add_traceback(node, branch["error"], tracebacks)
    for op in branch["operations"]:
        op_node = node.add(_operation_label(op, now))
        _add_traceback(op_node, op["error"], tracebacks and op["status"] == OpStatus.FAILED.value)
        for child in op["children"]:
            _add_branch(op_node, child, now, tracebacks)


def _add_traceback(node: Tree, error: dict[str, str] | None, show: bool) -> None:
    if show and error is not None and error["traceback"]:
        node.add(f"[dim]{escape(error['traceback'].rstrip())}[/]")


def _operation_label(op: dict[str, Any], now: float) -> str:
    parts = [f"{escape(op['op_id'])} {op['kind']} [bold]{escape(op['name'])}[/]",
             _status(op["status"])]
    if op["attempt"]:
        parts.append(f"attempt {op['attempt']}")
    # A step's row is first written when an attempt ends (no STARTED row), a wait's when it
    # suspends: "logged" is that first write, "ended" how long after it the op ended.
    parts.append(f"logged {ago(op['created_at'], now)}")
    ended_after = op["updated_at"] - op["created_at"]
    ended = op["status"] in (OpStatus.SUCCEEDED.value, OpStatus.FAILED.value)
    if ended and ended_after >= 0.001:
        parts.append(f"ended {duration(ended_after)} later")
    if op["due_at"] is not None and op["status"] in (OpStatus.SUSPENDED.value,
                                                     OpStatus.RETRYING.value):
        parts.append(f"due {ago(op['due_at'], now)}")
    if op["result"] is not None and op["status"] == OpStatus.SUCCEEDED.value:
        parts.append(f"→ {escape(op['result'])}")
    failure = error_text(op["error"])
    if failure is not None:
        # A succeeded op keeps the error of its last failed attempt (the upsert never clears it).
        word = "after" if op["status"] == OpStatus.SUCCEEDED.value else "error"
        parts.append(f"{word} [red]{escape(failure)}[/]")
    return " · ".join(parts)


def _print_paging(out: Console, view: dict[str, Any], execution: str) -> None:
    branches = view["branches"]
    shown, matching, offset = len(branches["items"]), branches["matching"], branches["offset"]
    which = f"{branches['status'].lower()} " if branches["status"] else ""
    if shown == matching and offset == 0:
        if branches["status"] and not matching:
            out.print(f"no {which}branches", highlight=False)
        return
    advice = []
    if offset + shown < matching:
        advice.append(f"--offset {offset + shown} for the next page")
    advice.append("--limit 0 for all")
    if not branches["status"]:
        advice.append("--failed or --status for some")
    first = f"{offset + 1}–{offset + shown}" if shown else "none"
    out.print(f"{execution}: {which}branches {first} of {matching} shown; "
              + ", ".join(advice), soft_wrap=True, highlight=False, markup=False)


__all__ = ["PAGE", "ago", "duration", "error_info", "error_text", "execution_tree", "main",
           "open_reader", "parse_status", "sqlite_path"]
