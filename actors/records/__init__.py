"""Records: the leaf of the domain, plain values every other part shares.

The states of executions, branches and operations (enums), the updates branches
ask the checkpoint actor to make durable, the rows the store gives back, and
what the store keeps about who runs an execution (executors, leases, claims,
signals) and what it is made of (its spec and fingerprint). Nothing here
imports another part of ``actors``.

    OperationUpdate("e-1", "e-1/0", "1", OpKind.STEP, "fetch", OpStatus.SUCCEEDED)
"""

from actors.records._leases import (
    ACTIVE_EXECUTIONS,
    BranchInput,
    ExecutionClaim,
    ExecutorInfo,
    Lease,
    LeaseFence,
    LeaseRound,
    NewExecution,
    Signal,
    SignalKind,
    held_epochs,
)
from actors.records._rows import BranchLog, BranchRecord, ExecutionRecord, OperationRecord
from actors.records._specs import BranchClassRef, ExecutionSpec, class_ref, fingerprint_of
from actors.records._status import (
    TERMINAL_BRANCH_STATUSES,
    BranchStatus,
    ExecutionStatus,
    OpKind,
    OpStatus,
)
from actors.records._updates import BranchUpdate, ExecutionUpdate, OperationUpdate, Update

__all__ = [
    "ACTIVE_EXECUTIONS",
    "TERMINAL_BRANCH_STATUSES",
    "BranchClassRef",
    "BranchInput",
    "BranchLog",
    "BranchRecord",
    "BranchStatus",
    "BranchUpdate",
    "ExecutionClaim",
    "ExecutionRecord",
    "ExecutionSpec",
    "ExecutionStatus",
    "ExecutionUpdate",
    "ExecutorInfo",
    "Lease",
    "LeaseFence",
    "LeaseRound",
    "NewExecution",
    "OpKind",
    "OpStatus",
    "OperationRecord",
    "OperationUpdate",
    "Signal",
    "SignalKind",
    "Update",
    "class_ref",
    "fingerprint_of",
    "held_epochs",
]
