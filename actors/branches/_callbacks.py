"""Callbacks: an id that outside code completes, and a branch that waits for it.

A callback is an operation of its branch (kind ``CALLBACK``); its id names the
branch and the operation, so completing it needs no lookup table:
``cb:<branch id>:<op id>``. Its outcome is stored on that operation as the
serialized pair ``(ok, value_or_error)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.errors import UnknownCallbackError
from actors.records._rows import OperationRecord
from actors.records._updates import OperationUpdate

_PREFIX = "cb:"


@dataclass(frozen=True, slots=True)
class Callback:
    """What ``ctx.create_callback`` returns: give ``id`` to the code that will complete it."""

    id: str
    name: str
    op_id: str
    timeout_at: float | None


def callback_id(branch_id: str, op_id: str) -> str:
    return f"{_PREFIX}{branch_id}:{op_id}"


def parse_callback_id(value: str) -> tuple[str, str]:
    """(branch id, op id) of a callback id; ``UnknownCallbackError`` if it is not one."""
    if not isinstance(value, str) or not value.startswith(_PREFIX) or ":" not in value[3:]:
        raise UnknownCallbackError(
            f"{value!r} is not a callback id; pass the .id of what ctx.create_callback returned"
        )
    branch_id, _, op_id = value[len(_PREFIX):].rpartition(":")
    if not branch_id or not op_id:
        raise UnknownCallbackError(f"{value!r} is not a callback id")
    return branch_id, op_id


def as_record(update: OperationUpdate, seq: int) -> OperationRecord:
    """The record a store would give back for ``update`` (for a context's own log)."""
    return OperationRecord(update.execution_id, update.branch_id, update.op_id, seq, update.kind,
                           update.name, update.status, update.attempt, update.payload,
                           update.error, update.due_at, 0.0, 0.0)
