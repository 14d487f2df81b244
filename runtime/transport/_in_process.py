"""A transport inside one process, for tests: ``ActorRef``, ``Future`` and replies without sockets.

Modelled on httpx's ``MockTransport``: a *handler* function stands for the
actors, ``handler(to, message)`` returning the answer to an ask (or raising
the exception the asker should get). Everything else is what a real transport
does: each message is copied by pickling (so an unpicklable one fails at the
sender with ``SerializationError`` and nothing is sent), each ``Future``
inside a message is registered by the transport's pickler as it meets it and
arrives as a reply handle, and answers and exceptions come back in the one
encoding every transport uses (``caller_exception``).

    def counter(to: ActorAddress, message: Any) -> Any:
        return {"count": 3}[message]

    with InProcessTransport(counter) as transport:
        ref = ActorRef(system_id=transport.system_id, address="in-process",
                       actor_id="a1", name="counter", class_name="Counter")
        assert ref.ask("count", timeout=1) == 3

The handler runs on the sending thread, so an ask's future is answered before
``ask`` returns, unless the handler keeps a reply handle to answer later.
"""

from __future__ import annotations

import io
import itertools
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from actors.replies import exception_of
from runtime import serialization
from runtime.errors import ActorDeadError
from runtime.transport._future import Future
from runtime.transport._outcomes import caller_exception, settle
from runtime.transport._protocol import ActorAddress, ControlOp
from runtime.transport._registry import register, registered, withdraw

Handler = Callable[[ActorAddress, Any], Any]
Introspect = Callable[[ActorAddress], Any]
_instances = itertools.count(1)


def _no_attributes(to: ActorAddress) -> dict[Any, Any]:
    return {}


class InProcessTransport:
    """A ``Transport`` whose actors are one ``handler`` function in this process.

    ``sent`` lists what reached the handler, as (address, the message's copy);
    ``introspect(to)`` answers proxies (an ``AttrMap``; none by default).
    """

    def __init__(self, handler: Handler, *, system_id: str | None = None,
                 introspect: Introspect = _no_attributes) -> None:
        self.system_id = system_id or f"in-process-{next(_instances)}"
        self.handler = handler
        self.introspect = introspect
        self.sent: list[tuple[ActorAddress, Any]] = []
        self._pending: dict[int, Future[Any]] = {}
        self._ids = itertools.count(1)
        self._stopped: dict[str, Future[None]] = {}  # actor id -> set once it stopped
        self._lock = threading.Lock()
        self.closed = False

    def __enter__(self) -> InProcessTransport:
        register(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Withdraw; futures still waiting fail with ``ActorDeadError``."""
        self.closed = True
        withdraw(self)
        with self._lock:
            waiting, self._pending = list(self._pending.values()), {}
        for future in waiting:
            settle(future, False, ActorDeadError("actor system shut down"))

    # -- the Transport ----------------------------------------------------------------

    def tell(self, to: ActorAddress, message: Any) -> None:
        self.handler(to, self._delivered(to, message))

    def tell_many(self, to: ActorAddress, messages: Sequence[Any]) -> None:
        for message in messages:
            self.tell(to, message)

    def ask(self, to: ActorAddress, message: Any) -> Future[Any]:
        future: Future[Any] = Future()
        copy = self._delivered(to, message)
        try:
            answer = self.handler(to, copy)
        except Exception as exc:
            raised = caller_exception(exc, serialization.dumps, serialization.loads)
            settle(future, False, serialization.loads(serialization.dumps(raised)))
        else:
            settle(future, True, self._copy(answer))
        return future

    def control(self, to: ActorAddress, op: ControlOp) -> Future[Any]:
        self._check(to)
        answer: Future[Any] = Future()
        if op is ControlOp.STOPPED:
            return self._stop_flag(to.actor_id)
        answer.set(True if op is ControlOp.PING else self.introspect(to))
        return answer

    def stopped(self, to: ActorAddress) -> None:
        flag = self._stop_flag(to.actor_id)
        if not flag.done():
            flag.set(None)

    # -- replies ------------------------------------------------------------------------

    def resolve(self, reply_id: int, ok: bool, value: Any) -> None:
        """Answer the future registered as ``reply_id`` (what a reply handle's ``set`` does)."""
        with self._lock:
            future = self._pending.pop(reply_id, None)
        if future is None:
            raise queue.Full(f"reply {reply_id} was answered already (or never registered)")
        settle(future, ok, self._copy(value) if ok else value)

    def _register(self, future: Future[Any]) -> int:
        reply_id = next(self._ids)
        with self._lock:
            self._pending[reply_id] = future
        future._reply_id = reply_id
        return reply_id

    def _forget(self, reply_ids: list[int]) -> None:
        with self._lock:
            for reply_id in reply_ids:
                self._pending.pop(reply_id, None)

    # -- copying ----------------------------------------------------------------------

    def _check(self, to: ActorAddress) -> None:
        if self.closed:
            raise ActorDeadError("actor system shut down")
        flag = self._stopped.get(to.actor_id)
        if flag is not None and flag.done():
            raise ActorDeadError(f"actor {to.name!r} is stopped")

    def _stop_flag(self, actor_id: str) -> Future[None]:
        with self._lock:
            return self._stopped.setdefault(actor_id, Future())

    def _delivered(self, to: ActorAddress, message: Any) -> Any:
        """``message`` as the actor gets it: pickled here (futures registered), unpickled there."""
        self._check(to)
        buffer = io.BytesIO()
        pickler = _MessagePickler(buffer, self)
        try:
            pickler.dump(message)
        except Exception as exc:
            self._forget(pickler.registered)
            raise serialization.unpicklable_error(
                message, f"message to {to.name!r}", exc, check=_check_message) from None
        copy = serialization.loads(buffer.getvalue())
        self.sent.append((to, copy))
        return copy

    @staticmethod
    def _copy(value: Any) -> Any:
        return serialization.loads(serialization.dumps(value))


class InProcessReply:
    """A future of an ``InProcessTransport``'s process, as a message's receiver holds it."""

    __slots__ = ("reply_id", "settled", "system_id")

    def __init__(self, system_id: str, reply_id: int) -> None:
        self.system_id = system_id
        self.reply_id = reply_id
        self.settled = False

    def __repr__(self) -> str:
        return f"<InProcessReply {self.reply_id}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_reply, (self.system_id, self.reply_id))

    def _transport(self) -> InProcessTransport:
        if self.settled:
            raise queue.Full(f"{self!r} was answered already; a reply is set only once")
        self.settled = True
        found = registered(self.system_id)
        if not isinstance(found, InProcessTransport):
            raise ActorDeadError(f"actor system {self.system_id!r} is not running here")
        return found

    def set(self, value: Any = None) -> None:
        self._transport().resolve(self.reply_id, True, value)

    def set_exception(self, exc_info: Any = None) -> None:
        exc = exception_of(exc_info)
        self._transport().resolve(self.reply_id, False, exc)


def _rebuild_reply(system_id: str, reply_id: int) -> InProcessReply:
    return InProcessReply(system_id, reply_id)


class _MessagePickler(serialization.Pickler):
    """Registers each future of the message with the transport, as the socket transport does."""

    def __init__(self, file: io.BytesIO, transport: InProcessTransport) -> None:
        super().__init__(file, protocol=5)
        self.transport = transport
        self.registered: list[int] = []

    def cross(self, obj: Any) -> Any:
        if isinstance(obj, Future):
            reply_id = self.transport._register(obj)
            self.registered.append(reply_id)
            return (_rebuild_reply, (self.transport.system_id, reply_id))
        return NotImplemented


class _CheckingPickler(serialization.Pickler):
    def cross(self, obj: Any) -> Any:
        return (type(None), ())


def _check_message(obj: Any) -> bytes:
    buffer = io.BytesIO()
    _CheckingPickler(buffer, protocol=5).dump(obj)
    return buffer.getvalue()
