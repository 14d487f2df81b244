"""The transport seam: what ``ActorRef``, ``Future`` and replies need from a backend.

An actor system's processes talk through one ``Transport`` per process and
system. ``ActorRef`` sends through it and knows nothing else: the socket
transport (``runtime.wire.Node``: Unix sockets between the processes of one
machine), the in-process one for tests (``runtime.transport.InProcessTransport``)
and a Ray one implement the same few calls:

* ``tell`` and ``tell_many`` send to an ``ActorAddress`` and wait for nothing;
* ``ask`` sends and returns the ``Future`` of the answer: a primitive, so a
  backend whose calls return values answers an ask in one round trip;
* ``control`` runs a ``ControlOp`` at the actor's process, beside the actor's
  messages (ping, stopped, introspect), and returns the ``Future`` of its answer;
* ``stopped`` records that the actor stopped, so later sends fail at once.

A ``Future`` inside a message travels as a *reply handle*: the transport's own
pickler registers the future as it meets it while pickling the message, and
forgets it if the message fails to pickle; nothing else may pickle a future.
The handle's ``set``/``set_exception``, called in any process, answers the
future in the process that sent it; answers carry exceptions as
``runtime.transport.caller_exception`` encodes them.

    transport = transport_for(ref.system_id)
    transport.tell(ref.to, {"add": 1})
    assert transport.ask(ref.to, "count").get(timeout=5) == 1
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from runtime.transport._future import Future


@dataclass(frozen=True, slots=True)
class ActorAddress:
    """Where an actor is: its system, its process (as its transport names it), its id.

    ``restart_grace`` is how long a send waits for a restarting process;
    ``name`` is for errors only.

        ActorAddress("sys-1", "/run/sys-1/p3.sock", "a7", "counter")
    """

    system_id: str
    process: str
    actor_id: str
    name: str
    restart_grace: float = 0.0


class ControlOp(StrEnum):
    """What ``Transport.control`` asks of an actor's process, beside the actor's messages."""

    PING = "ping"  # answers True while the actor runs
    STOPPED = "stopped"  # answers once the actor has stopped
    INTROSPECT = "introspect"  # answers the actor's public attributes (for proxies)


@runtime_checkable
class ReplyHandle(Protocol):
    """What a future becomes on the far side of a transport: settle it once.

    Settled twice it raises ``queue.Full``, as pykka's futures do.
    """

    def set(self, value: Any = None) -> None: ...

    def set_exception(self, exc_info: Any = None) -> None: ...


class Transport(Protocol):
    """One process's means of reaching the actors of one system (see the module docstring).

    Every call raises ``ActorDeadError`` when the actor is known to be gone and
    ``SerializationError`` when the message cannot be pickled (nothing is sent);
    a transport with flow control raises ``MailboxFullError`` past its send timeout.
    """

    system_id: str

    def tell(self, to: ActorAddress, message: Any) -> None:
        """Send ``message``; wait for nothing."""
        ...

    def tell_many(self, to: ActorAddress, messages: Sequence[Any]) -> None:
        """Send ``messages`` in order, as one batch where the transport can."""
        ...

    def ask(self, to: ActorAddress, message: Any) -> Future[Any]:
        """Send ``message``; the future of the actor's answer (its exception, if it raised)."""
        ...

    def control(self, to: ActorAddress, op: ControlOp) -> Future[Any]:
        """Run ``op`` at the actor's process; the future of its answer."""
        ...

    def stopped(self, to: ActorAddress) -> None:
        """The actor has stopped: later sends to it from here raise ``ActorDeadError`` at once."""
        ...
