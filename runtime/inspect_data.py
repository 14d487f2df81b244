"""What ``durable-actors inspect`` shows, as plain data: for its tree, and for ``--json``.

Everything here only reads. Results are shown as reprs cut to ``REPR_CHARS``;
a result stored as a blob (a ``Ref``) is named, not loaded. A value whose class
cannot be loaded here says so instead of failing the whole listing.

    view = execution_view(reader, record, status=BranchStatus.FAILED, offset=0, limit=20)
    view["branches"]["matching"]          # how many top-level branches match
    view["branches"]["items"][0]["error"]  # {"type": ..., "message": ..., "traceback": ...}
"""

from __future__ import annotations

import reprlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from actors.branch import StoredError
from actors.messages import (
    BranchLog,
    BranchRecord,
    BranchStatus,
    ExecutionRecord,
    OperationRecord,
)
from actors.ref import Ref, Spilled
from actors.store import Store
from runtime import serialization

REPR_CHARS = 120  # of a result's repr; --json and the tree alike
LOG_CHUNK = 500  # branches whose logs one store call reads

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = REPR_CHARS
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 8
_repr.maxlevel = 4


def short_repr(value: Any, limit: int = REPR_CHARS) -> str:
    """``repr(value)``, shortened inside (long strings, lists, dicts) and cut to ``limit``.

        short_repr(list(range(1000)))   # '[0, 1, 2, 3, 4, 5, 6, 7, ...]'
    """
    if type(value) is Spilled:
        value = value.ref
    if isinstance(value, Ref):
        return f"<stored as a blob: {value.digest[:12]}…>"
    try:
        text = _repr.repr(value)
    except Exception as exc:  # a __repr__ that raises
        text = f"<{type(value).__qualname__} whose repr failed: {exc!r}>"
    return text if len(text) <= limit else text[:limit - 1] + "…"


def result_repr(payload: bytes | None) -> str | None:
    """The short repr of a logged result, or a note that says why it cannot be shown."""
    if payload is None:
        return None
    try:
        value = serialization.loads(payload)
    except Exception as exc:
        return f"<cannot be loaded here: {type(exc).__name__}: {exc}>"
    return short_repr(value)


def error_info(blob: bytes | None) -> dict[str, str] | None:
    """A logged failure as ``{"type", "message", "traceback"}``, without its exception class.

    Only the ``StoredError`` envelope is unpickled: its class is ours, so this
    works even where the user's exception class cannot be imported.
    """
    if blob is None:
        return None
    try:
        stored = serialization.loads(blob)
    except Exception as exc:
        return {"type": "<unreadable error>", "message": repr(exc), "traceback": ""}
    if isinstance(stored, StoredError):
        return {"type": stored.type_name.removeprefix("builtins."), "message": stored.message,
                "traceback": stored.traceback}
    if isinstance(stored, BaseException):
        return {"type": type(stored).__qualname__, "message": str(stored),
                "traceback": getattr(stored, "remote_traceback", "")}
    return {"type": type(stored).__name__, "message": short_repr(stored), "traceback": ""}


def status_counts(branches: Iterable[BranchRecord]) -> dict[str, int]:
    """Top-level branches per status, in the order people read them."""
    counts = Counter(b.status for b in branches if b.parent_branch_id is None)
    order = (BranchStatus.SUCCEEDED, BranchStatus.FAILED, BranchStatus.RUNNING,
             BranchStatus.SUSPENDED, BranchStatus.PENDING)
    return {s.value.lower(): counts[s] for s in order if counts[s]}


def execution_summary(record: ExecutionRecord, branches: list[BranchRecord]) -> dict[str, Any]:
    """One execution's row: id, kind, status, counts, times, and its error if it has one."""
    return {
        "id": record.execution_id, "kind": record.kind, "status": record.status.value,
        "branch_count": record.branch_count, "counts": status_counts(branches),
        "created_at": record.created_at, "updated_at": record.updated_at,
        "error": error_info(record.error),
    }


def execution_view(reader: Store, record: ExecutionRecord, *, status: BranchStatus | None,
                   offset: int, limit: int | None) -> dict[str, Any]:
    """The execution with one page of its top-level branches, each with ops and children.

    ``status`` keeps the top-level branches that have it themselves or in a child.
    """
    branches = reader.read_branches(record.execution_id)
    children: defaultdict[tuple[str, str], list[BranchRecord]] = defaultdict(list)
    for branch in branches:
        if branch.parent_branch_id is not None and branch.parent_op_id is not None:
            children[(branch.parent_branch_id, branch.parent_op_id)].append(branch)
    below: defaultdict[str, list[BranchRecord]] = defaultdict(list)
    for (parent, _), kids in children.items():
        below[parent].extend(kids)

    def has_status(branch: BranchRecord) -> bool:
        return branch.status is status or any(has_status(c) for c in below[branch.branch_id])

    top = [b for b in branches if b.parent_branch_id is None
           and (status is None or has_status(b))]
    page = top[offset:] if limit is None else top[offset:offset + limit]
    shown = _with_descendants(page, below)
    logs: dict[str, BranchLog] = {}
    for chunk in reader.read_logs([b.branch_id for b in shown], LOG_CHUNK):
        logs.update(chunk)
    return {
        "execution": execution_summary(record, branches),
        "branches": {
            "matching": len(top), "offset": offset, "limit": limit,
            "status": status.value if status is not None else None,
            "items": [_branch(b, logs, children) for b in page],
        },
    }


def _with_descendants(page: list[BranchRecord],
                      below: dict[str, list[BranchRecord]]) -> list[BranchRecord]:
    found, stack = [], list(page)
    while stack:
        branch = stack.pop()
        found.append(branch)
        stack.extend(below.get(branch.branch_id, ()))
    return found


def _branch(branch: BranchRecord, logs: dict[str, BranchLog],
            children: dict[tuple[str, str], list[BranchRecord]]) -> dict[str, Any]:
    log = logs.get(branch.branch_id)
    operations = log.operations if log is not None else ()
    return {
        "id": branch.branch_id, "index": branch.index, "status": branch.status.value,
        "epoch": branch.epoch, "created_at": branch.created_at, "updated_at": branch.updated_at,
        "result": result_repr(branch.result), "error": error_info(branch.error),
        "operations": [
            _operation(op, [_branch(c, logs, children)
                            for c in children.get((branch.branch_id, op.op_id), ())])
            for op in operations
        ],
    }


def _operation(op: OperationRecord, children: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "op_id": op.op_id, "kind": op.kind.value, "name": op.name, "status": op.status.value,
        "attempt": op.attempt, "created_at": op.created_at, "updated_at": op.updated_at,
        "due_at": op.due_at, "result": result_repr(op.payload), "error": error_info(op.error),
        "children": children,
    }


__all__ = ["REPR_CHARS", "error_info", "execution_summary", "execution_view", "result_repr",
           "short_repr", "status_counts"]
