"""Processes, transport, stores and the ``ActorSystem`` that hosts ``actors`` across them.

    from runtime import ActorSystem, SystemConfig

    with ActorSystem(config=SystemConfig(workers=2)) as system:
        ref = system.spawn(MyActor, name="counter")
        ref.ask("hello", timeout=5)
"""

from actors.applog import get_logger
from runtime.config import RestartPolicy, SystemConfig
from runtime.errors import (
    ActorDeadError,
    CheckpointError,
    ConfigurationError,
    DurableActorsError,
    MailboxFullError,
    RemoteError,
    SerializationError,
    SpawnError,
    StepTimeoutError,
    Timeout,
)
from runtime.future import Future, get_all
from runtime.proxy import ActorProxy, CallableProxy
from runtime.ref import SELF, ActorRef
from runtime.system import ActorSystem
from runtime.tracing import bound, read_trace

__all__ = [
    "SELF",
    "ActorDeadError",
    "ActorProxy",
    "ActorRef",
    "ActorSystem",
    "CallableProxy",
    "CheckpointError",
    "ConfigurationError",
    "DurableActorsError",
    "Future",
    "MailboxFullError",
    "RemoteError",
    "RestartPolicy",
    "SerializationError",
    "SpawnError",
    "StepTimeoutError",
    "SystemConfig",
    "Timeout",
    "bound",
    "get_all",
    "get_logger",
    "read_trace",
]
