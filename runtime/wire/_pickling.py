"""The socket transport's picklers: futures become reply handles as they are met.

* ``MessagePickler`` pickles a message (or a control record) for one peer. Each
  ``runtime.Future`` it meets is registered with the node to wait on that peer,
  at that moment, and travels as a reply handle (system, address, reply id);
  ``registered`` lists the ids it made, which the caller forgets if the message
  is never sent. Nothing else registers futures: no thread-local, no hook in
  ``Future.__reduce__``.
* ``ReplyPickler`` pickles a reply for the process at ``address``: a future inside
  it (an actor returns the future of its proxy to itself, or of an ask, as
  pykka's documentation shows) travels as a *copy* whose value follows once the
  actor's future has one (``VALUE`` records, sent by ``release()`` after the reply
  is queued, so a value never overtakes its copy). Should this process die
  first, the copy fails with ``ActorDeadError``.
* Both turn an actor's own **pykka ``ActorRef``** (``self.actor_ref``) into its
  system-wide ``runtime.ActorRef``, so an actor can hand itself out as in pykka.

    class Pipeline(pykka.ThreadingActor):
        def start_work(self):
            return self.actor_ref.proxy().do_work()   # a future, returned to the caller

    ref.proxy().start_work().get().get(timeout=5)     # the caller's copy of it
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import Any

import pykka

from runtime.remote._actor_ref import ActorRef
from runtime.serialization import Pickler
from runtime.transport import transport_for
from runtime.transport._future import Future
from runtime.wire._peer import Peer
from runtime.wire._replies import rebuild_reply

_Push = Callable[[pykka.Future[Any]], None]


class _NodePickler(Pickler):
    """Turns a hosted actor's own pykka ref into its system-wide ``ActorRef``.

    Made by ``for_node`` (no ``__init__`` of ours: a message's pickling is on the hot path).
    """

    node: Any

    @classmethod
    def for_node(cls, file: io.BytesIO, node: Any) -> Any:
        pickler = cls(file, protocol=5)
        pickler.node = node
        return pickler

    def own_ref(self, obj: pykka.ActorRef[Any]) -> Any:
        node = self.node
        hosted = next((h for h in node.actors.values() if h.pykka_ref is obj), None)
        if hosted is None:
            return NotImplemented  # an actor of this process only: it cannot be reached
        own = hosted.ref
        if own is None:
            own = ActorRef(system_id=node.system_id, address=node.address,
                           actor_id=hosted.actor_id, name=hosted.name,
                           class_name=obj.actor_class.__name__)
        reduced: tuple[Any, ...] = own.__reduce__()
        return reduced


class MessagePickler(_NodePickler):
    """Pickles a record for ``peer``; each future in it is registered to wait on ``peer``."""

    peer: Peer | None
    registered: tuple[int, ...] = ()  # reply ids made while pickling (forget if unsent)

    @classmethod
    def for_peer(cls, file: io.BytesIO, node: Any, peer: Peer | None) -> MessagePickler:
        pickler: MessagePickler = cls.for_node(file, node)
        pickler.peer = peer
        return pickler

    def cross(self, obj: Any) -> Any:
        if isinstance(obj, Future):
            node = self.node
            fresh = obj._reply_id is None
            reply_id = node.replies.register(obj, self.peer)
            if fresh:
                self.registered = (*self.registered, reply_id)
            return (rebuild_reply, (node.system_id, node.address, reply_id))
        if isinstance(obj, ActorRef) or not isinstance(obj, pykka.ActorRef):
            return NotImplemented  # a ref pickles itself; a plain pykka future cannot travel
        return self.own_ref(obj)


class ReplyPickler(_NodePickler):
    """Pickles a reply for ``address``; the futures in it travel as copies (``release``)."""

    address: str
    _pushes: list[tuple[pykka.Future[Any], _Push]]

    @classmethod
    def for_address(cls, file: io.BytesIO, node: Any, address: str) -> ReplyPickler:
        pickler: ReplyPickler = cls.for_node(file, node)
        pickler.address = address
        pickler._pushes = []
        return pickler

    def cross(self, obj: Any) -> Any:
        if isinstance(obj, pykka.Future):
            return self._export(obj)
        if isinstance(obj, ActorRef):
            return NotImplemented
        return self.own_ref(obj)

    def _export(self, future: pykka.Future[Any]) -> tuple[Any, ...]:
        node, address = self.node, self.address
        export_id = node.replies.new_id()

        def push(done: pykka.Future[Any]) -> None:
            try:
                value = done.get(timeout=0)
            except BaseException as exc:  # the future's own outcome, whatever it is
                node.send_value(address, export_id, False, exc)
            else:
                node.send_value(address, export_id, True, value)

        self._pushes.append((future, push))
        return (_import_future, (node.system_id, node.address, export_id))

    def release(self) -> None:
        """The reply is queued: send each exported future's value once it has one."""
        for future, push in self._pushes:
            if isinstance(future, Future) and future._get_hook is None:
                future._when_done(push)
            else:  # a get hook (map, join, ...) or a plain pykka future: only get() tells
                threading.Thread(target=_push_when_got, args=(future, push), daemon=True,
                                 name="da-future-export").start()
        self._pushes.clear()


class CheckingPickler(Pickler):
    """Finds what in a message cannot travel; the refs and futures in it can."""

    def cross(self, obj: Any) -> Any:
        return (type(None), ())


def _push_when_got(future: pykka.Future[Any], push: _Push) -> None:
    done: Future[Any] = Future()
    try:
        value = future.get()
    except BaseException as exc:
        done.set_exception(exc)
    else:
        done.set(value)
    push(done)


def _import_future(system_id: str, address: str, export_id: int) -> Future[Any]:
    copy: Future[Any] = Future()
    node: Any = transport_for(system_id)
    node.import_future(address, export_id, copy)
    return copy


def check(obj: Any) -> bytes:
    """Pickle ``obj`` as a message would be, refs and futures aside (for diagnosis)."""
    buffer = io.BytesIO()
    CheckingPickler(buffer, protocol=5).dump(obj)
    return buffer.getvalue()
