"""``durable-actors inspect``: what a store holds, read without ever writing to it.

    durable-actors inspect                      # a table of the executions in ./.durable/
    durable-actors inspect demo-300             # that execution as a tree of branches and ops
    durable-actors inspect --store sqlite:////var/lib/app/state.db nightly-1

The store is opened read-only (``?mode=ro``): SQLite in WAL mode lets this read
the last committed state while a running system writes, and never takes the
write lock that system's checkpoint actor needs.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from actors.branch import StoredError
from actors.errors import StoreError
from actors.messages import BranchRecord, BranchStatus, ExecutionRecord, OperationRecord, OpStatus
from actors.store import Store
from runtime import serialization
from runtime.durable import absolute_store_url
from runtime.stores import open_store, read_only_url, redacted_url

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


def error_type(blob: bytes | None) -> str | None:
    """The type name of a logged error, without loading the exception itself.

    Only the ``StoredError`` envelope is unpickled: its class is ours, so this
    works even where the user's exception class cannot be imported.
    """
    if blob is None:
        return None
    try:
        stored = serialization.loads(blob)
    except Exception:
        return "<unreadable error>"
    if isinstance(stored, StoredError):
        return stored.type_name.removeprefix("builtins.")
    if isinstance(stored, BaseException):
        return type(stored).__qualname__
    return type(stored).__name__


def _status(value: str) -> str:
    style = _STYLES.get(value, "")
    return f"[{style}]{value}[/]" if style else value


def status_counts(branches: Iterable[BranchRecord]) -> str:
    """"297 succeeded, 3 running" for the top-level branches given."""
    counts = Counter(b.status for b in branches if b.parent_branch_id is None)
    order = (BranchStatus.SUCCEEDED, BranchStatus.FAILED, BranchStatus.RUNNING,
             BranchStatus.SUSPENDED, BranchStatus.PENDING)
    return ", ".join(f"{counts[s]} {s.value.lower()}" for s in order if counts[s])


def main(store: str | None = None, execution: str | None = None,
         console: Console | None = None) -> int:
    """Print the executions of ``store``, or the tree of ``execution``; 1 if there is none."""
    out = console or Console()
    err = Console(stderr=True) if console is None else console
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
            return _list(out, reader, path or redacted_url(url))
        record = reader.read_execution(execution)
        if record is None:
            err.print(f"no execution {execution!r} in {path or redacted_url(url)}; "
                      "`durable-actors inspect` lists the executions it holds",
                      soft_wrap=True, markup=False)
            return 1
        out.print(execution_tree(reader, record, time.time()))
        return 0
    finally:
        reader.close()


def _list(console: Console, reader: Store, where: object) -> int:
    executions = reader.read_executions()
    if not executions:
        console.print(f"no executions in {where}", soft_wrap=True, markup=False)
        return 0
    now = time.time()
    table = Table(title=f"executions in {escape(str(where))}", title_justify="left")
    for column in ("id", "kind", "status", "branches", "created", "updated"):
        table.add_column(column, overflow="fold")
    for record in executions:
        counts = status_counts(reader.read_branches(record.execution_id))
        table.add_row(
            escape(record.execution_id), record.kind, _status(record.status.value),
            f"{record.branch_count}" + (f" ({counts})" if counts else ""),
            ago(record.created_at, now), ago(record.updated_at, now),
        )
    console.print(table)
    return 0


def execution_tree(reader: Store, record: ExecutionRecord, now: float) -> Tree:
    """The execution, its top-level branches, their operations, and children under their op."""
    branches = reader.read_branches(record.execution_id)
    children: defaultdict[tuple[str, str], list[BranchRecord]] = defaultdict(list)
    for branch in branches:
        if branch.parent_branch_id is not None and branch.parent_op_id is not None:
            children[(branch.parent_branch_id, branch.parent_op_id)].append(branch)
    counts = status_counts(branches)
    root = Tree(
        f"[bold]execution {escape(record.execution_id)}[/] · {record.kind} · "
        f"{_status(record.status.value)} · {record.branch_count} branches"
        + (f" ({counts})" if counts else "")
        + f" · created {ago(record.created_at, now)} · updated {ago(record.updated_at, now)}"
        + (f" · error {escape(e)}" if (e := error_type(record.error)) else "")
    )
    for branch in branches:
        if branch.parent_branch_id is None:
            _add_branch(root, reader, branch, children, now)
    return root


def _add_branch(parent: Tree, reader: Store, branch: BranchRecord,
                children: dict[tuple[str, str], list[BranchRecord]], now: float) -> None:
    label = (f"branch [bold]{escape(branch.branch_id)}[/] · {_status(branch.status.value)} · "
             f"epoch {branch.epoch} · updated {ago(branch.updated_at, now)}")
    if branch.status in (BranchStatus.SUCCEEDED, BranchStatus.FAILED):
        label += f" · took {duration(branch.updated_at - branch.created_at)}"
    if (failure := error_type(branch.error)) is not None:
        label += f" · error [red]{escape(failure)}[/]"
    node = parent.add(label)
    for op in reader.read_log(branch.branch_id).operations:
        op_node = node.add(_operation_label(op, now))
        for child in children.get((branch.branch_id, op.op_id), ()):
            _add_branch(op_node, reader, child, children, now)


def _operation_label(op: OperationRecord, now: float) -> str:
    parts = [f"{escape(op.op_id)} {op.kind.value} [bold]{escape(op.name)}[/]",
             _status(op.status.value)]
    if op.attempt:
        parts.append(f"attempt {op.attempt}")
    # A step's row is first written when an attempt ends (no STARTED row), a wait's when it
    # suspends: "logged" is that first write, "ended" how long after it the op ended.
    parts.append(f"logged {ago(op.created_at, now)}")
    ended_after = op.updated_at - op.created_at
    if op.status in (OpStatus.SUCCEEDED, OpStatus.FAILED) and ended_after >= 0.001:
        parts.append(f"ended {duration(ended_after)} later")
    if op.due_at is not None and op.status in (OpStatus.SUSPENDED, OpStatus.RETRYING):
        parts.append(f"due {ago(op.due_at, now)}")
    failure = error_type(op.error)
    if failure is not None:
        # A succeeded op keeps the error of its last failed attempt (the upsert never clears it).
        word = "after" if op.status is OpStatus.SUCCEEDED else "error"
        parts.append(f"{word} [red]{escape(failure)}[/]")
    return " · ".join(parts)


__all__ = ["ago", "duration", "error_type", "execution_tree", "main", "open_reader",
           "sqlite_path"]
