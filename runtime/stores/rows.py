"""Stored rows read back as records: both stores select these columns, in this order.

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

# The columns each store selects, in the order of the records' fields.
EXECUTION_COLUMNS = (
    "execution_id, kind, status, spec, branch_count, result, error, created_at, updated_at, "
    "fingerprint, owner, lease_epoch, lease_expires_at, deadline_at"
)
BRANCH_COLUMNS = (
    "execution_id, branch_id, parent_branch_id, parent_op_id, idx, status, input, result, "
    "error, epoch, created_at, updated_at"
)
OPERATION_COLUMNS = (
    "execution_id, branch_id, op_id, seq, kind, name, status, attempt, payload, error, "
    "due_at, created_at, updated_at"
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


__all__ = ["BRANCH_COLUMNS", "EXECUTION_COLUMNS", "OPERATION_COLUMNS", "branch_record",
           "execution_record", "operation_record"]
