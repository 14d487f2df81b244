"""Stored rows read back as records: both stores select the same columns in the same order.

    execution_record(row)   # an ``executions`` row as an ExecutionRecord
    branch_record(row)      # a ``branches`` row as a BranchRecord
    operation_record(row)   # an ``operations`` row as an OperationRecord
"""

from __future__ import annotations

from typing import Any

from actors.records import (
    BranchRecord,
    BranchStatus,
    ExecutionRecord,
    ExecutionStatus,
    OperationRecord,
    OpKind,
    OpStatus,
)

# Enum members by stored value: a dict lookup, where ``OpStatus(value)`` goes through
# the enum machinery (~1.3 µs); a resume wave reads three per branch.
_BRANCH_STATUS: dict[Any, BranchStatus] = dict(BranchStatus._value2member_map_)
_OP_KIND: dict[Any, OpKind] = dict(OpKind._value2member_map_)
_OP_STATUS: dict[Any, OpStatus] = dict(OpStatus._value2member_map_)


def execution_record(r: Any) -> ExecutionRecord:
    """An ``executions`` row (the stores' execution columns, in order) as a record."""
    return ExecutionRecord(r[0], r[1], ExecutionStatus(r[2]), r[3], r[4], r[5], r[6], r[7], r[8],
                           r[9], r[10], r[11], r[12], r[13])


def branch_record(r: Any) -> BranchRecord:
    """A ``branches`` row (the stores' branch columns, in order) as a record."""
    return BranchRecord(
        r[0], r[1], r[2], r[3], r[4], _BRANCH_STATUS[r[5]], r[6], r[7], r[8], r[9], r[10], r[11]
    )


def operation_record(r: Any) -> OperationRecord:
    """An ``operations`` row (the stores' operation columns, in order) as a record."""
    return OperationRecord(
        r[0], r[1], r[2], r[3], _OP_KIND[r[4]], r[5], _OP_STATUS[r[6]], r[7], r[8], r[9], r[10],
        r[11], r[12],
    )


__all__ = ["branch_record", "execution_record", "operation_record"]
