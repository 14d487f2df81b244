"""The states of executions, branches and operations, as the store keeps them."""

from __future__ import annotations

from enum import StrEnum


class ExecutionStatus(StrEnum):
    """Where an execution stands; ``finished`` ones only run again by ``system.retry``."""

    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"  # by system.cancel or its deadline; system.retry runs it again

    @property
    def finished(self) -> bool:
        """Whether the execution ended (only ``system.retry`` starts it again)."""
        return self in _FINISHED_EXECUTIONS


class BranchStatus(StrEnum):
    """Where a branch stands in its execution."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class OpKind(StrEnum):
    """What an operation is: a step, a wait, a polled condition, children, a callback."""

    STEP = "STEP"
    WAIT = "WAIT"
    CONDITION = "CONDITION"
    CHILDREN = "CHILDREN"
    CALLBACK = "CALLBACK"


class OpStatus(StrEnum):
    """Where an operation stands; ``SUCCEEDED`` and ``FAILED`` never change again."""

    STARTED = "STARTED"
    SUSPENDED = "SUSPENDED"  # waiting on a timer, a callback or children
    RETRYING = "RETRYING"  # an attempt failed; the next one is due at ``due_at``
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


_FINISHED_EXECUTIONS = frozenset(
    {ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}
)


TERMINAL_OP_STATUSES = frozenset({OpStatus.SUCCEEDED, OpStatus.FAILED})


TERMINAL_BRANCH_STATUSES = frozenset({BranchStatus.SUCCEEDED, BranchStatus.FAILED})
