"""What a node does with the records that arrive: into an inbox, into a future, or a control.

Records are decoded and dispatched by whichever thread leads the connection
(``runtime.wire._channel``), in order, so per-connection ordering holds whoever
reads. Messages go into the target actor's inbox, replies into their futures;
while a child process boots, messages for its actor (not hosted yet) are held,
in order, and delivered once it is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from actors import tracelog
from runtime import serialization
from runtime.errors import ActorDeadError
from runtime.transport._future import Future
from runtime.wire._framing import CREDIT, CTRL, DEAD, MSG, REPLIES, REPLY, VALUE
from runtime.wire._peer import Peer
from runtime.wire._replies import ReplyBook

log = tracelog.get_logger("runtime.transport")


class Hosted(Protocol):
    """What a node needs of an actor it hosts (``runtime.processes.HostedActor``)."""

    actor_id: str
    name: str
    pykka_ref: Any
    ref: Any  # its runtime.ActorRef, if this process made one
    stopped: Future[None]

    @property
    def accepting(self) -> bool: ...

    def deliver(self, message: Any, origin: Peer | None, reply_id: int, context: Any,
                awaited: bool) -> None: ...

    def deliver_local(self, message: Any, reply: Any, context: Any) -> None: ...

    def introspect(self) -> Any: ...


class _Receiving(Protocol):
    """What the dispatcher needs of its node (``runtime.wire.Node``)."""

    actors: dict[str, Hosted]
    replies: ReplyBook

    def enqueue(self, peer: Peer, frame: bytes, *, awaited: bool = False) -> None: ...

    def frame(self, record: tuple[Any, ...], peer: Peer | None) -> bytes: ...

    def send_reply(self, address: str, reply_id: int, ok: bool, value: Any, *,
                   awaited: bool = True) -> None: ...


class Dispatcher:
    """The receiving side of ``node``: decodes each frame's records and acts on them."""

    def __init__(self, node: _Receiving) -> None:
        self.node = node
        self.ctrl_handlers: dict[str, Callable[[str, Any], Any]] = {}
        # While a child boots, messages for its actor (not hosted yet) wait here, in order;
        # a restarted actor's address takes connections before its actor is built.
        self._held: list[tuple[Peer, tuple[Any, ...]]] | None = None
        self._held_lock = threading.Lock()

    def deliver(self, peer: Peer, record: memoryview) -> None:
        """Decode and dispatch one record (run by whoever reads the connection)."""
        try:
            decoded = serialization.loads(record)
        except Exception as exc:  # a class the receiver cannot import, say
            log.error("transport.undecodable_record", error=repr(exc), peer=peer.address)
            return
        self.dispatch(peer, decoded)

    def dispatch(self, peer: Peer, record: tuple[Any, ...]) -> None:
        node = self.node
        kind = record[0]
        if kind == MSG:
            _, actor_id, message, reply_id, context, awaited = record
            hosted = node.actors.get(actor_id)
            if hosted is None and self._held is not None:
                with self._held_lock:
                    if self._held is not None:
                        self._held.append((peer, record))
                        return
                hosted = node.actors.get(actor_id)
            if hosted is None or not hosted.accepting:
                self._reject(peer, actor_id, reply_id)
                return
            hosted.deliver(message, peer, reply_id, context, awaited)
        elif kind == REPLIES:
            for reply_id, value in record[1]:
                node.replies.resolve(reply_id, True, value, peer)
        elif kind == REPLY:
            _, reply_id, ok, value = record
            node.replies.resolve(reply_id, ok, value, peer)
        elif kind == CREDIT:
            _, actor_id, count = record
            peer.credited(actor_id, count)
        elif kind == CTRL:
            _, op, actor_id, reply_id, arg = record
            self._control(peer, op, actor_id, reply_id, arg)
        elif kind == DEAD:
            peer.dead_actors.add(record[1])
        elif kind == VALUE:
            _, export_id, ok, value = record
            reply_id = node.replies.imported(peer.address, export_id)
            if reply_id:
                node.replies.resolve(reply_id, ok, value, peer)

    def hold_until_hosted(self) -> None:
        """Keep messages for actors not hosted yet until ``hosted()`` (a booting child)."""
        self._held = []

    def hosted(self) -> None:
        """The actors are hosted: deliver what was held, in order, and stop holding."""
        while True:
            with self._held_lock:
                held = self._held or []
                if not held:
                    self._held = None
                    return
                self._held = []
            for peer, record in held:
                self.dispatch(peer, record)

    def _reject(self, peer: Peer, actor_id: str, reply_id: int) -> None:
        node = self.node
        node.enqueue(peer, node.frame((DEAD, actor_id), peer))
        if reply_id:
            hosted = node.actors.get(actor_id)
            what = f"actor {actor_id}" if hosted is None else str(hosted)
            err = ActorDeadError(f"{what} not found: it had stopped when the message arrived, "
                                 "so the message was not handled")
            node.send_reply(peer.address, reply_id, False, err)

    def _control(self, peer: Peer, op: str, actor_id: str, reply_id: int, arg: Any) -> None:
        """Run a control handler; a Future it returns is answered once it is done.

        Reply id 0 is a notice: nobody waits for its answer.
        """
        node = self.node
        try:
            handler = self.ctrl_handlers[op]
            result = handler(actor_id, arg)
        except Exception as exc:
            if reply_id:
                node.send_reply(peer.address, reply_id, False, exc)
            else:
                log.error("transport.notice_failed", op=op, error=repr(exc))
            return
        if not reply_id:
            return
        if isinstance(result, Future):
            result._when_done(lambda done: self._answer_control(peer.address, reply_id, done))
        else:
            node.send_reply(peer.address, reply_id, True, result)

    def _answer_control(self, address: str, reply_id: int, done: Future[Any]) -> None:
        exc = done._exc
        self.node.send_reply(address, reply_id, exc is None,
                             done._value if exc is None else exc)
