"""Which transport this process uses for which actor system.

A process runs one transport per system it takes part in (the service process
may run several systems; an actor's process runs one). A transport registers
itself as it starts and withdraws as it closes; a ref looks its system up.

    register(node)                 # node.system_id -> node
    transport_for("sys-1").tell(address, "hi")
"""

from __future__ import annotations

import threading

from runtime.errors import ActorDeadError
from runtime.transport._protocol import Transport

_transports: dict[str, Transport] = {}  # system id -> this process's transport of that system
_lock = threading.Lock()


def register(transport: Transport) -> None:
    """Make ``transport`` this process's transport for its system."""
    with _lock:
        _transports[transport.system_id] = transport


def withdraw(transport: Transport) -> None:
    """``transport`` closed: its system has none in this process any more (unless replaced)."""
    with _lock:
        if _transports.get(transport.system_id) is transport:
            del _transports[transport.system_id]


def transport_for(system_id: str) -> Transport:
    """This process's transport of system ``system_id``; ``ActorDeadError`` if it has none."""
    try:
        return _transports[system_id]
    except KeyError:
        raise ActorDeadError(
            f"actor system {system_id!r} is not running in this process "
            "(it was shut down, or this ref came from another system)"
        ) from None


def registered(system_id: str) -> Transport | None:
    """This process's transport of ``system_id``, or None."""
    return _transports.get(system_id)


def only_transport() -> Transport | None:
    """The only transport in this process, for child processes (one system each)."""
    with _lock:
        return next(iter(_transports.values())) if len(_transports) == 1 else None
