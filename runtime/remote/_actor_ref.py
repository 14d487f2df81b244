"""``ActorRef``: an address, not a weakref, so it pickles and works from any process.

It sends through its system's transport (``runtime.transport``) and knows no backend.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, Literal, NoReturn, TypeVar, overload

import pykka

from actors import tracelog
from actors._compat.pykka import stop_message
from runtime import serialization
from runtime.errors import ActorDeadError, Timeout
from runtime.remote._proxy import ActorProxy
from runtime.transport import ActorAddress, ControlOp, Future, Transport, transport_for

A = TypeVar("A", bound=pykka.Actor)

_URN_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://durable-actors/actor")

def actor_urn_for(system_id: str, actor_id: str) -> str:
    """The URN of an actor of a system: one per ref, kept across restarts, unique per system."""
    return uuid.uuid5(_URN_NAMESPACE, f"{system_id}/{actor_id}").urn


_STOP = stop_message()  # pykka's own stop, so the receiving loop stops as on a local stop

# Actor classes by (system id, actor id), and the pickled classes not loaded yet:
# the system's registry hands every process the class of every registered actor.
_classes: dict[tuple[str, str], type[Any]] = {}
_class_sources: dict[tuple[str, str], bytes] = {}
_stand_ins: dict[str, type[Any]] = {}


def remember_class(system_id: str, actor_id: str, source: bytes) -> None:
    """Let refs to that actor answer ``actor_class`` from ``source`` (a pickled class)."""
    if (system_id, actor_id) not in _classes:
        _class_sources[(system_id, actor_id)] = source


def forget_class(system_id: str, actor_id: str) -> None:
    """That actor is gone: its class need not be kept for it any more."""
    _classes.pop((system_id, actor_id), None)
    _class_sources.pop((system_id, actor_id), None)


class ActorRef(pykka.ActorRef[A]):
    """A reference to an actor in some process of the system; a ``pykka.ActorRef``.

        ref = system.spawn(Counter, name="counter")
        ref.tell({"add": 1})
        assert ref.ask("count", timeout=5) == 1
        ref.proxy().add(2).get()
        ref.actor_urn                # 'urn:uuid:…', the same in every process
        ref.actor_stopped.wait(5)    # True once the actor has stopped

    Refs are plain data (system id, process address, actor id), so they can be
    sent inside messages and used from any actor of the same system. Two refs to
    the same actor are equal, whichever process made them.
    """

    __slots__ = ("_urn", "actor_id", "address", "class_name", "name", "restart_grace",
                 "system_id", "to")

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
        self._urn: str | None = None
        # Where the transport sends: what a backend needs of this ref.
        self.to = ActorAddress(system_id, address, actor_id, name, restart_grace)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_ref, (self.system_id, self.address, self.actor_id, self.name,
                               self.class_name, self.restart_grace))

    def __str__(self) -> str:
        return f"{self.class_name} ({self.actor_urn})"

    def __repr__(self) -> str:
        return f"<ActorRef for {self}, name={self.name!r}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ActorRef):
            return NotImplemented
        return (self.system_id, self.actor_id) == (other.system_id, other.actor_id)

    def __hash__(self) -> int:
        return hash((self.system_id, self.actor_id))

    # -- pykka's attributes ---------------------------------------------------------

    @property
    def actor_urn(self) -> str:
        """The actor's URN: unique in the system, equal to the actor's own ``actor_urn``.

        It names the ref, so a restarted actor (``RestartPolicy``) keeps it.
        """
        urn = self._urn
        if urn is None:
            urn = self._urn = actor_urn_for(self.system_id, self.actor_id)
        return urn

    @actor_urn.setter
    def actor_urn(self, urn: str) -> None:
        raise AttributeError(f"{self}: the URN of a ref is derived from its address")

    @property
    def actor_class(self) -> type[A]:
        """The actor's class, loaded in this process from the system's registry.

        For an actor whose class this process cannot load (not registered, or its
        module not importable here), a stand-in class of the same name.
        """
        key = (self.system_id, self.actor_id)
        cls = _classes.get(key)
        if cls is None:
            source = _class_sources.get(key)
            if source is not None:
                try:
                    cls = _classes[key] = serialization.loads(source)
                except Exception as exc:  # a module this process cannot import
                    tracelog.get_logger("runtime.ref").warning(
                        "ref.class_not_loaded", actor=self.name, error=repr(exc))
                    _class_sources.pop(key, None)
            if cls is None:
                cls = _stand_in(self.class_name)
        return cls

    @actor_class.setter
    def actor_class(self, cls: type[A]) -> None:
        _classes[(self.system_id, self.actor_id)] = cls

    @property
    def actor_inbox(self) -> Any:
        """pykka's inbox attribute, which no ref of ours has: the inbox is in the actor's
        process. Raises ``AttributeError``; send with ``tell``, ``ask`` or ``proxy()``."""
        raise AttributeError(
            f"{self} has no actor_inbox: its inbox lives in the actor's own process; "
            "send to it with tell(), ask() or proxy()"
        )

    @actor_inbox.setter
    def actor_inbox(self, _: Any) -> None:
        raise AttributeError(f"{self}: a ref has no inbox to set")

    @property
    def actor_stopped(self) -> StoppedFlag:  # type: ignore[override]
        """pykka's stopped flag, across processes: ``is_set()`` and ``wait(timeout)``."""
        return StoppedFlag(self)

    # -- messaging --------------------------------------------------------------------

    def _not_found(self, why: object) -> ActorDeadError:
        return ActorDeadError(f"{self} not found: {why}")

    def _transport(self) -> Transport:
        try:
            return transport_for(self.system_id)
        except ActorDeadError as exc:
            raise self._not_found(exc) from None

    def tell(self, message: Any) -> None:
        """Send ``message`` without waiting for a reply.

        Raises ``ActorDeadError`` if the actor is known to be gone,
        ``SerializationError`` if the message cannot be pickled (nothing is sent),
        ``MailboxFullError`` if the actor's mailbox stayed full past ``send_timeout``.
        """
        try:
            transport_for(self.system_id).tell(self.to, message)
        except ActorDeadError as exc:
            raise self._not_found(exc) from None

    @overload
    def ask(self, message: Any, *, block: Literal[False], timeout: float | None = None
            ) -> Future[Any]: ...

    @overload
    def ask(self, message: Any, *, block: Literal[True], timeout: float | None = None
            ) -> Any: ...

    @overload
    def ask(self, message: Any, *, block: bool = True, timeout: float | None = None) -> Any: ...

    def ask(self, message: Any, *, block: bool = True, timeout: float | None = None) -> Any:
        """Send ``message`` and get the reply (or a ``Future`` with ``block=False``).

        An exception raised by the actor is re-raised here with its type and the
        remote traceback as a note (``RemoteError`` when it cannot be pickled).
        """
        try:
            try:
                future = self._transport().ask(self.to, message)
            except ActorDeadError as exc:
                raise self._not_found(exc) from None
        except ActorDeadError:
            if block:
                raise
            future = Future()
            future.set_exception()
        if block:
            return future.get(timeout=timeout)
        return future

    def proxy(self) -> Any:
        """A ``pykka.ActorProxy`` for this actor: calls and attribute reads return futures.

        Raises ``ActorDeadError`` if the actor is not running.
        """
        return ActorProxy(self)

    def is_alive(self) -> bool:
        """Whether the actor answers now; within ~1 s of its process dying this is False."""
        try:
            return bool(self._transport().control(self.to, ControlOp.PING).get(timeout=1.0))
        except (ActorDeadError, Timeout, pykka.ActorDeadError):
            return False

    @overload
    def stop(self, *, block: Literal[True], timeout: float | None = None) -> bool: ...

    @overload
    def stop(self, *, block: Literal[False], timeout: float | None = None) -> Future[bool]: ...

    @overload
    def stop(self, *, block: bool = True, timeout: float | None = None) -> Any: ...

    def stop(self, *, block: bool = True, timeout: float | None = None) -> Any:
        """Stop the actor after the messages already in its inbox.

        True if it was running (or stopping) when asked, False if it had already
        stopped; with ``block=False`` a ``Future`` of that answer.
        """
        try:
            try:
                asked = self._transport().ask(self.to, _STOP)
            except ActorDeadError as exc:
                raise self._not_found(exc) from None
        except ActorDeadError:
            asked = Future()
            asked.set_exception()

        def stopped(wait: float | None) -> bool:
            try:
                asked.get(timeout=wait)
            except ActorDeadError:
                return False  # it was gone before the stop reached it
            self._stopped_here()
            return True

        if block:
            return stopped(timeout)
        answer: Future[bool] = Future()
        answer.set_get_hook(stopped)
        return answer

    def _stopped_here(self) -> None:
        """The actor has stopped: later tells from this process raise at once."""
        try:
            transport = transport_for(self.system_id)
        except ActorDeadError:
            return
        transport.stopped(self.to)


class StoppedFlag(threading.Event):
    """``ActorRef.actor_stopped``: pykka's stopped flag for an actor in another process.

        ref.stop(block=False)
        assert ref.actor_stopped.wait(timeout=5)

    ``is_set()`` is true while the actor is not running, ``wait(timeout)`` blocks
    until it stops (or its process is gone). Only the actor sets it, by stopping:
    use ``ref.stop()``. An actor restarted by its ``RestartPolicy`` runs again, so
    for it the flag is true only between a crash and the restart.
    """

    def __init__(self, ref: ActorRef[Any]) -> None:  # no Event state: the actor holds it
        self._ref = ref

    def __repr__(self) -> str:
        return f"<StoppedFlag of {self._ref}>"

    def is_set(self) -> bool:
        return not self._ref.is_alive()

    isSet = is_set  # noqa: N815 - threading.Event's old name

    def wait(self, timeout: float | None = None) -> bool:
        ref = self._ref
        try:
            transport_for(ref.system_id).control(ref.to, ControlOp.STOPPED).get(timeout=timeout)
        except Timeout:
            return False
        except (ActorDeadError, pykka.ActorDeadError):
            pass  # its process, or the whole system, is gone: stopped all the same
        return True

    def set(self) -> NoReturn:
        raise TypeError(f"{self._ref}'s stopped flag is set by the actor as it stops; "
                        "call ref.stop() to stop it")

    def clear(self) -> NoReturn:
        raise TypeError(f"{self._ref}'s stopped flag cannot be cleared; an actor that "
                        "stopped does not start again (give it a RestartPolicy instead)")


def _stand_in(class_name: str) -> type[Any]:
    """A class named like the actor's, for a process that cannot load the real one."""
    cls = _stand_ins.get(class_name)
    if cls is None:
        cls = _stand_ins[class_name] = type(class_name, (), {
            "__doc__": "Stands in for an actor class this process cannot load.",
            "__module__": "runtime.remote",
        })
    return cls


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
