"""The durable-execution domain as plain pykka actors; never imports ``runtime``.

What a branch author uses is here: ``BranchActor`` and its contexts, the
policies, ``Ref``, ``InlineHost`` to run a branch in a test, and every error the
domain raises (``actors.errors``). The parts of the house are subpackages:
``records`` (the leaf), ``protocol`` (messages), ``branches``, ``refs``,
``store``, ``checkpointing``, ``coordinator``, ``scheduling``, ``workers``.

    from actors import BranchActor, BranchContext, Retry
"""

from actors.branches._actor import BranchActor
from actors.branches._async_context import AsyncBranchContext
from actors.branches._context import BranchContext
from actors.branches._effects import ConditionResult
from actors.branches._inline_host import InlineHost
from actors.errors import (
    BatchFailedError,
    BlobCorruptedError,
    BlobNotFoundError,
    BlobStoreError,
    CallbackError,
    CallbackFailedError,
    CallbackTimeoutError,
    CheckpointError,
    ConditionTimeoutError,
    DigestError,
    DurableActorsError,
    ExecutionCancelledError,
    ExecutionMismatchError,
    ExecutionStateError,
    ExecutorConflictError,
    LeaseLostError,
    NonDeterminismError,
    RefUnavailableError,
    SchemaTooNewError,
    SerializationError,
    SnapshotError,
    StepFailedError,
    StepTimeoutError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreReadOnlyError,
    StoreUnavailableError,
    UnknownCallbackError,
    UnknownExecutionError,
    UnserializableValueError,
)
from actors.policies import BatchResult, Completion, Retry
from actors.refs._ref import Ref

__all__ = [
    "AsyncBranchContext",
    "BatchFailedError",
    "BatchResult",
    "BlobCorruptedError",
    "BlobNotFoundError",
    "BlobStoreError",
    "BranchActor",
    "BranchContext",
    "CallbackError",
    "CallbackFailedError",
    "CallbackTimeoutError",
    "CheckpointError",
    "Completion",
    "ConditionResult",
    "ConditionTimeoutError",
    "DigestError",
    "DurableActorsError",
    "ExecutionCancelledError",
    "ExecutionMismatchError",
    "ExecutionStateError",
    "ExecutorConflictError",
    "InlineHost",
    "LeaseLostError",
    "NonDeterminismError",
    "Ref",
    "RefUnavailableError",
    "Retry",
    "SchemaTooNewError",
    "SerializationError",
    "SnapshotError",
    "StepFailedError",
    "StepTimeoutError",
    "StoreError",
    "StoreFullError",
    "StoreLockedError",
    "StoreReadOnlyError",
    "StoreUnavailableError",
    "UnknownCallbackError",
    "UnknownExecutionError",
    "UnserializableValueError",
]
