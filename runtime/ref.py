"""``ActorRef``: an address, not a weakref, so it pickles and works from any process."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar, overload

import pykka
import structlog

from runtime.errors import ActorDeadError, Timeout
from runtime.future import Future
from runtime.host import local_ref_target
from runtime.transport import node_for

A = TypeVar("A", bound=pykka.Actor)

_STOP = pykka.messages._ActorStop()


class ActorRef(Generic[A]):
    """A reference to an actor in some process of the system; pykka's vocabulary.

        ref = system.spawn(Counter, name="counter")
        ref.tell({"add": 1})
        assert ref.ask("count", timeout=5) == 1
        ref.proxy().add(2).get()

    Refs are plain data (system id, process address, actor id), so they can be
    sent inside messages and used from any actor of the same system.
    """

    __slots__ = ("actor_id", "address", "class_name", "name", "restart_grace", "system_id")

    def __init__(
        self,
        *,
        system_id: str,
        address: str,
        actor_id: str,
        name: str,
        class_name: str,
        restart_grace: float = 0.0,
    ) -> None:
        self.system_id = system_id
        self.address = address
        self.actor_id = actor_id
        self.name = name
        self.class_name = class_name
        self.restart_grace = restart_grace  # how long a restarting actor is waited for

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_ref, (self.system_id, self.address, self.actor_id, self.name,
                               self.class_name, self.restart_grace))

    def __repr__(self) -> str:
        return f"<ActorRef {self.name!r} ({self.class_name})>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorRef) and (
            (self.system_id, self.actor_id) == (other.system_id, other.actor_id)
        )

    def __hash__(self) -> int:
        return hash((self.system_id, self.actor_id))

    def _send(self, message: Any, reply: Future[Any] | None) -> None:
        node = node_for(self.system_id)
        context = structlog.contextvars.get_contextvars() or None
        local = local_ref_target(node, self)
        if local is not None:
            if not local.accepting:
                raise ActorDeadError(f"actor {self.name!r} is stopped")
            local.deliver_local(message, reply, context)
            return
        node.send_message(self.address, self.actor_id, self.name, message, reply, context,
                          grace=self.restart_grace)

    def tell(self, message: Any) -> None:
        """Send ``message`` without waiting for a reply.

        Raises ``ActorDeadError`` if the actor is known to be gone,
        ``SerializationError`` if the message cannot be pickled (nothing is sent),
        ``MailboxFullError`` if the actor's mailbox stayed full past ``send_timeout``.
        """
        self._send(message, None)

    @overload
    def ask(self, message: Any, *, block: Literal[True] = ..., timeout: float | None = ...) -> Any:
        ...

    @overload
    def ask(
        self, message: Any, *, block: Literal[False], timeout: float | None = ...
    ) -> Future[Any]: ...

    def ask(self, message: Any, *, block: bool = True, timeout: float | None = None) -> Any:
        """Send ``message`` and get the reply (or a ``Future`` with ``block=False``).

        An exception raised by the actor is re-raised here with its type and the
        remote traceback as a note (``RemoteError`` when it cannot be pickled).
        """
        future: Future[Any] = Future()
        try:
            self._send(message, future)
        except ActorDeadError:
            if block:
                raise
            if not future.done():  # a connection that broke mid-send failed it already
                future.set_exception()
        if block:
            return future.get(timeout=timeout)
        return future

    def proxy(self) -> Any:
        """A pykka-style proxy: method calls and attribute reads return futures."""
        from runtime.proxy import ActorProxy

        return ActorProxy(self)

    def is_alive(self) -> bool:
        """Whether the actor answers now; within ~1 s of its process dying this is False."""
        try:
            node = node_for(self.system_id)
            local = local_ref_target(node, self)
            if local is not None:
                return local.accepting
            return bool(node.send_control(self.address, "ping", self.actor_id).get(timeout=1.0))
        except (ActorDeadError, Timeout, pykka.ActorDeadError):
            return False

    def stop(self, *, block: bool = True, timeout: float | None = None) -> Any:
        """Stop the actor after the messages already in its inbox; True if it was running.

        With ``block=False`` returns a ``Future`` of that answer.
        """
        future: Future[Any] = Future()
        try:
            self._send(_STOP, future)
        except ActorDeadError:
            future.set(False)
            stopped: Any = future
        else:
            stopped = future.map(lambda _: True)
        if not block:
            return stopped
        try:
            result = stopped.get(timeout=timeout)
        except ActorDeadError:
            return False
        # The actor has stopped: later tells from this process raise at once.
        node_for(self.system_id).peer(self.address).dead_actors.add(self.actor_id)
        return result


def _rebuild_ref(
    system_id: str, address: str, actor_id: str, name: str, class_name: str, grace: float
) -> ActorRef[Any]:
    return ActorRef(system_id=system_id, address=address, actor_id=actor_id, name=name,
                    class_name=class_name, restart_grace=grace)


class _SelfMarker:
    """``runtime.SELF``: in ``spawn`` arguments, stands for the spawned actor's own ref."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "runtime.SELF"

    def __reduce__(self) -> str:
        return "SELF"  # pickled by name: identity survives the trip to the child


SELF = _SelfMarker()
