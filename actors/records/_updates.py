"""Updates: what branches ask the checkpoint actor to make durable, as frozen dataclasses.

Payloads are opaque bytes here: serialization is the caller's business, so the
checkpoint actor and the store never unpickle user data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from actors.records._status import BranchStatus, ExecutionStatus, OpKind, OpStatus

# Fixed cost charged per update on top of its payload bytes, so that a batch of
# tiny updates still respects ``checkpoint_max_bytes`` roughly like its SQL does.
UPDATE_OVERHEAD_BYTES = 64


def _size(*blobs: bytes | None) -> int:
    return UPDATE_OVERHEAD_BYTES + sum(len(b) for b in blobs if b is not None)


@dataclass(frozen=True, slots=True)
class ExecutionUpdate:
    """Create an execution or change its status/result. ``None`` fields are left as stored."""

    execution_id: str
    status: ExecutionStatus
    kind: str | None = None  # "map" | "parallel"
    spec: bytes | None = None  # serialized branch classes, inputs, completion policy
    branch_count: int | None = None
    result: bytes | None = None
    error: bytes | None = None

    @property
    def nbytes(self) -> int:
        return _size(self.spec, self.result, self.error)


@dataclass(frozen=True, slots=True)
class BranchUpdate:
    """Create a branch or change its status/result. ``None`` fields are left as stored."""

    execution_id: str
    branch_id: str
    status: BranchStatus
    parent_branch_id: str | None = None
    parent_op_id: str | None = None
    index: int | None = None
    input: bytes | None = None
    result: bytes | None = None
    error: bytes | None = None
    epoch: int | None = None
    create_only: bool = False  # insert if absent; never touch a branch that exists

    @property
    def nbytes(self) -> int:
        return _size(self.input, self.result, self.error)


@dataclass(frozen=True, slots=True)
class OperationUpdate:
    """Create an operation or change its status. ``None`` fields are left as stored."""

    execution_id: str
    branch_id: str
    op_id: str
    kind: OpKind
    name: str
    status: OpStatus
    attempt: int = 0
    payload: bytes | None = None  # serialized result (or condition state)
    error: bytes | None = None  # serialized exception
    due_at: float | None = None  # wall-clock seconds when a timer fires
    epoch: int | None = None  # the run that wrote it: older runs are fenced off

    @property
    def nbytes(self) -> int:
        return _size(self.payload, self.error)


Update: TypeAlias = ExecutionUpdate | BranchUpdate | OperationUpdate
