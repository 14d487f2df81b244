"""Processes, transport, stores and the ``ActorSystem`` that hosts ``actors`` across them.

    from runtime import ActorSystem, SystemConfig

    with ActorSystem(config=SystemConfig(workers=2)) as system:
        ref = system.spawn(MyActor, name="counter")
        ref.ask("hello", timeout=5)
"""

from actors.applog import get_logger
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
from runtime.config import RestartPolicy, SystemConfig
from runtime.errors import (
    ActorDeadError,
    ConfigurationError,
    MailboxFullError,
    ProcessFaultError,
    RemoteError,
    SpawnError,
    Timeout,
)
from runtime.remote._actor_ref import SELF, ActorRef
from runtime.remote._proxy import ActorProxy, CallableProxy
from runtime.system import ActorSystem
from runtime.tracing import bound, read_trace
from runtime.transport._future import Future, get_all

__all__ = [
    "SELF",
    "ActorDeadError",
    "ActorProxy",
    "ActorRef",
    "ActorSystem",
    "BatchFailedError",
    "BlobCorruptedError",
    "BlobNotFoundError",
    "BlobStoreError",
    "CallableProxy",
    "CallbackError",
    "CallbackFailedError",
    "CallbackTimeoutError",
    "CheckpointError",
    "ConditionTimeoutError",
    "ConfigurationError",
    "DigestError",
    "DurableActorsError",
    "ExecutionCancelledError",
    "ExecutionMismatchError",
    "ExecutionStateError",
    "ExecutorConflictError",
    "Future",
    "LeaseLostError",
    "MailboxFullError",
    "NonDeterminismError",
    "ProcessFaultError",
    "RefUnavailableError",
    "RemoteError",
    "RestartPolicy",
    "SchemaTooNewError",
    "SerializationError",
    "SnapshotError",
    "SpawnError",
    "StepFailedError",
    "StepTimeoutError",
    "StoreError",
    "StoreFullError",
    "StoreLockedError",
    "StoreReadOnlyError",
    "StoreUnavailableError",
    "SystemConfig",
    "Timeout",
    "UnknownCallbackError",
    "UnknownExecutionError",
    "UnserializableValueError",
    "bound",
    "get_all",
    "get_logger",
    "read_trace",
]
