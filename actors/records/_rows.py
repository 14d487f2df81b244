"""Records: executions, branches and operations as the store gives them back."""

from __future__ import annotations

from dataclasses import dataclass

from actors.records._status import BranchStatus, ExecutionStatus, OpKind, OpStatus


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    """An execution as stored: its kind, status, spec, result, lease and deadline."""

    execution_id: str
    kind: str
    status: ExecutionStatus
    spec: bytes | None
    branch_count: int
    result: bytes | None
    error: bytes | None
    created_at: float
    updated_at: float
    fingerprint: str | None = None  # what it was created from (see ``actors.records``)
    owner: str | None = None  # the executor holding its lease
    lease_epoch: int = 0  # bumped by every claim: writes under an older epoch are refused
    lease_expires_at: float | None = None
    deadline_at: float | None = None  # past it, the owner cancels the execution


@dataclass(frozen=True, slots=True)
class BranchRecord:
    """A branch as stored: its place in its execution, status, input, result and run epoch."""

    execution_id: str
    branch_id: str
    parent_branch_id: str | None
    parent_op_id: str | None
    index: int
    status: BranchStatus
    input: bytes | None
    result: bytes | None
    error: bytes | None
    epoch: int
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class OperationRecord:
    """An operation of a branch as stored, in the order it was first written (``seq``)."""

    execution_id: str
    branch_id: str
    op_id: str
    seq: int  # order of first write within the branch
    kind: OpKind
    name: str
    status: OpStatus
    attempt: int
    payload: bytes | None
    error: bytes | None
    due_at: float | None
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class BranchLog:
    """What an empty checkpoint answers: the branch as stored and its operations in order."""

    branch_id: str
    branch: BranchRecord | None
    operations: tuple[OperationRecord, ...]

    def by_op_id(self) -> dict[str, OperationRecord]:
        return {op.op_id: op for op in self.operations}
