"""The socket transport: one ``Node`` per process and system.

Every process of a system (the service, each actor's process) runs a Node: a
Unix-socket listener in the system's private directory (mode 0700, connections
authenticated with the system's secret by ``multiprocess.connection``), one
duplex connection per peer process, opened on first use by either side.
Messages go straight from sender to receiver; nothing is relayed. A Node is the
system's ``Transport`` in its process (``runtime.transport``).

The hot path does the least work it can:

* the *sending thread* pickles (so a bad message fails at the sender, naming
  the culprit; the futures inside are registered then, by the transport's
  pickler: ``runtime.wire._pickling``) and writes the frame itself when the
  connection is idle (``runtime.wire._writer``);
* one *reader thread* per connection decodes records and dispatches them
  (``runtime.wire._dispatch``); but a thread blocked on a reply reads the
  connection itself while no other thread does (``runtime.wire._channel``), and
  an idle actor's thread reads the connections while its inbox is empty
  (``runtime.wire._pump``), so an ask wakes only the thread that answers it and
  then only the asker.

Flow control is credit based (``runtime.wire._peer``).
"""

from __future__ import annotations

import io
import pickle
import threading
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from runtime import serialization
from runtime.errors import ActorDeadError, SerializationError
from runtime.transport import (
    ActorAddress,
    ControlOp,
    Future,
    caller_exception,
    only_transport,
    register,
    reply_not_pickled,
    transport_for,
    withdraw,
)
from runtime.wire import _pickling
from runtime.wire._channel import Channel
from runtime.wire._connections import Connections
from runtime.wire._dispatch import Dispatcher, Hosted
from runtime.wire._framing import CREDIT, CTRL, MSG, REPLIES, REPLY, VALUE, record_bytes
from runtime.wire._peer import Peer, awaits_reply
from runtime.wire._pump import Pump
from runtime.wire._replies import ReplyBook
from runtime.wire._spin import SpinWait
from runtime.wire._writer import Writer

# Reply values the stdlib pickler writes without calling back into Python: no classes or
# functions that might travel by value, so ``serialization.dumps`` has nothing to add.
_PLAIN = frozenset({type(None), bool, int, float, str, bytes})
_pump_lock = threading.Lock()


def node_for(system_id: str) -> Node:
    """This process's node of system ``system_id``; ``ActorDeadError`` if it has none."""
    found = transport_for(system_id)
    if not isinstance(found, Node):
        raise ActorDeadError(f"actor system {system_id!r} does not run on sockets here")
    return found


def current_node() -> Node | None:
    """The only node in this process, for child processes (one system each)."""
    found = only_transport()
    return found if isinstance(found, Node) else None


class Node:
    """One process's endpoint in one actor system: its socket ``Transport``."""

    def __init__(
        self,
        *,
        system_id: str,
        address: str,
        secret: bytes,
        role: str,
        mailbox_window: int = 1024,
        send_timeout: float = 30.0,
        spin_wait: float = 0.0,
    ) -> None:
        self.system_id = system_id
        self.address = address
        self.secret = secret
        self.role = role
        self.mailbox_window = mailbox_window
        self.credit_batch = max(1, mailbox_window // 4)
        self.send_timeout = send_timeout
        self.spin_wait = spin_wait  # poll this long before sleeping, while it pays (SpinWait)
        self.actors: dict[str, Hosted] = {}
        self.replies = ReplyBook()
        self._dispatcher = Dispatcher(self)
        self.ctrl_handlers: dict[str, Callable[[str, Any], Any]] = self._dispatcher.ctrl_handlers
        self.connections = Connections(
            owner=self, address=address, secret=secret, spin_wait=spin_wait,
            deliver=self._dispatcher.deliver, broken=self.replies.fail_peer)
        self._writer = Writer(self.connections.write_failed)
        self._closed = False
        self._pump: Pump | None = None

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> Node:
        self.connections.listen()
        register(self)
        self._writer.start()
        return self

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        withdraw(self)
        self._writer.close()
        if self._pump is not None:
            self._pump.close()
        self.connections.close()
        self.replies.fail_all()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pump(self) -> Pump:
        """Lets an idle hosted actor's thread read this process's connections itself."""
        pump = self._pump
        if pump is None:
            with _pump_lock:
                pump = self._pump
                if pump is None:
                    spin = SpinWait(self.spin_wait)
                    pump = self._pump = Pump(self._pumpable, awaits_reply, spin)
                    if self._closed:
                        pump.close()
        return pump

    def _pumpable(self) -> list[Channel]:
        return list(self.connections.channels.values())

    def hold_until_hosted(self) -> None:
        """Keep messages for actors not hosted yet until ``hosted()`` (a booting child)."""
        self._dispatcher.hold_until_hosted()

    def hosted(self) -> None:
        """The actors are hosted: deliver what was held, in order, and stop holding."""
        self._dispatcher.hosted()

    # -- the Transport -------------------------------------------------------------

    def tell(self, to: ActorAddress, message: Any) -> None:
        if to.process != self.address:  # the common case, first: another process
            self.send_message(to.process, to.actor_id, to.name, message, None,
                              structlog.contextvars.get_contextvars() or None,
                              grace=to.restart_grace)
        else:
            self._send(to, message, None)

    def tell_many(self, to: ActorAddress, messages: Sequence[Any]) -> None:
        for message in messages:  # back to back: the writer sends them as one burst
            self._send(to, message, None)

    def ask(self, to: ActorAddress, message: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._send(to, message, future)
        return future

    def control(self, to: ActorAddress, op: ControlOp) -> Future[Any]:
        hosted = self._local(to)
        if hosted is None:
            return self.send_control(to.process, op, to.actor_id)
        if op is ControlOp.STOPPED:
            return hosted.stopped
        answer: Future[Any] = Future()
        if op is ControlOp.PING:
            answer.set(hosted.accepting)
        elif not hosted.accepting:
            raise ActorDeadError("it is stopped")
        else:
            answer.set(hosted.introspect())
        return answer

    def stopped(self, to: ActorAddress) -> None:
        if self._local(to) is None:
            self.peer(to.process).dead_actors.add(to.actor_id)

    def _local(self, to: ActorAddress) -> Hosted | None:
        """The actor behind ``to`` if it lives in this very process."""
        return self.actors.get(to.actor_id) if to.process == self.address else None

    def _send(self, to: ActorAddress, message: Any, reply: Future[Any] | None) -> None:
        context = structlog.contextvars.get_contextvars() or None
        hosted = self._local(to)
        if hosted is not None:
            if not hosted.accepting:
                raise ActorDeadError("it is stopped")
            hosted.deliver_local(message, reply, context)
            return
        self.send_message(to.process, to.actor_id, to.name, message, reply, context,
                          grace=to.restart_grace)

    # -- futures ---------------------------------------------------------------

    def register(self, future: Future[Any], peer: Peer | None) -> int:
        """``future``'s reply id (registered now if new); it waits on ``peer`` if given."""
        return self.replies.register(future, peer)

    def pending_future(self, reply_id: int) -> Future[Any] | None:
        return self.replies.pending_future(reply_id)

    def import_future(self, address: str, export_id: int, copy: Future[Any]) -> None:
        """``copy`` waits for the value the process at ``address`` exported as ``export_id``."""
        self.replies.import_future(self.peer(address), export_id, copy)

    # -- peers and connections (``runtime.wire._connections``) ---------------------

    @property
    def down(self) -> dict[str, str]:
        """Addresses whose processes are past their restarts, with why."""
        return self.connections.down

    @property
    def shutting_down(self) -> bool:
        """The system is stopping: a gone peer is not restarting."""
        return self.connections.shutting_down

    @shutting_down.setter
    def shutting_down(self, value: bool) -> None:
        self.connections.shutting_down = value

    def mark_down(self, address: str, reason: str) -> None:
        """Senders to ``address`` fail at once (``ActorDeadError`` with ``reason``) instead of
        waiting out a restart grace, until ``mark_up``: its process is past its restarts."""
        self.connections.down[address] = reason

    def mark_up(self, address: str) -> None:
        self.connections.down.pop(address, None)

    def peer(self, address: str) -> Peer:
        return self.connections.peer(address)

    def connected(self, address: str, *, grace: float = 0.0) -> Peer:
        """The peer at ``address`` with a live connection, connecting if needed."""
        return self.connections.connected(address, grace=grace)

    def disconnect(self, address: str, reason: str, wait: float = 1.0) -> None:
        """The process at ``address`` exited: see its connection end now (``Connections``)."""
        self.connections.disconnect(address, reason, wait)

    def flushed(self) -> bool:
        """True when no frame waits to be written (for orderly process exit)."""
        return self.connections.flushed()

    # -- sending ----------------------------------------------------------------

    def frame(self, record: tuple[Any, ...], peer: Peer | None) -> bytes:
        """``record`` pickled for ``peer`` (its futures registered to wait on it), framed."""
        data, _ = self._pickled(record, peer)
        return record_bytes(data)

    def _pickled(self, record: tuple[Any, ...], peer: Peer | None
                 ) -> tuple[bytes, tuple[int, ...]]:
        buffer = io.BytesIO()
        pickler = _pickling.MessagePickler.for_peer(buffer, self, peer)
        try:
            pickler.dump(record)
        except BaseException:
            self.replies.forget(pickler.registered, peer)
            raise
        return buffer.getvalue(), pickler.registered

    def enqueue(self, peer: Peer, frame: bytes, *, awaited: bool = False) -> None:
        """Write ``frame`` to ``peer`` now if its connection is idle, else soon (``Writer``)."""
        self._writer.enqueue(peer, frame, awaited=awaited)

    def send_message(
        self,
        address: str,
        actor_id: str,
        actor_name: str,
        message: Any,
        reply: Future[Any] | None,
        context: dict[str, Any] | None,
        grace: float = 0.0,
    ) -> None:
        """Send ``message`` to an actor in another process (tell, or ask with ``reply``)."""
        peer = self.connected(address, grace=grace)
        if actor_id in peer.dead_actors:
            raise ActorDeadError(f"actor {actor_name!r} is stopped")
        reply_id = 0
        # An ask while none to this peer is unanswered is a ping-pong: no burst to batch;
        # the flag travels with it, for its reply is one too.
        awaited = reply is not None and not peer.pending
        try:
            if reply is not None:
                reply_id = self.replies.register(reply, peer)
            data, _ = self._pickled((MSG, actor_id, message, reply_id, context, awaited), peer)
        except Exception as exc:
            if reply_id:
                self.replies.forget([reply_id], peer)
            if isinstance(exc, SerializationError):
                raise
            serialization.dumps_or_raise(message, f"message to {actor_name!r}",
                                         check=_pickling.check)
            raise  # the message alone pickles; the context must not: say so as it is
        peer.acquire_credit(actor_id, actor_name, self.mailbox_window, self.send_timeout)
        self._writer.enqueue(peer, record_bytes(data), awaited=awaited)

    def send_reply(
        self, address: str, reply_id: int, ok: bool, value: Any, *, awaited: bool = True,
        kind: int = REPLY,
    ) -> None:
        pickler = None
        if ok and type(value) in _PLAIN:  # an acknowledgement, mostly: no pickler of ours
            data = pickle.dumps((kind, reply_id, True, value), protocol=5)
        elif ok:
            try:
                data, pickler = self._reply_pickled((kind, reply_id, True, value), address)
            except Exception as exc:  # futures it held are not exported: nothing waits for them
                data = serialization.dumps((kind, reply_id, False, reply_not_pickled(exc)))
        else:
            raised = caller_exception(value, serialization.dumps, serialization.loads)
            data = serialization.dumps((kind, reply_id, False, raised))
        self._send_reply_record(address, data, awaited)
        if pickler is not None:
            pickler.release()  # futures inside it now send their values: after the reply

    def _reply_pickled(self, record: tuple[Any, ...], address: str
                       ) -> tuple[bytes, _pickling.ReplyPickler]:
        buffer = io.BytesIO()
        pickler = _pickling.ReplyPickler.for_address(buffer, self, address)
        pickler.dump(record)
        return buffer.getvalue(), pickler

    def send_value(self, address: str, export_id: int, ok: bool, value: Any) -> None:
        """Answer the copy of a future this process sent to ``address`` inside a reply."""
        self.send_reply(address, export_id, ok, value, kind=VALUE)

    def send_replies(
        self, address: str, answers: Sequence[tuple[int, Any]], *, awaited: bool = True
    ) -> None:
        """Successful replies to one process as one frame: a batch's waiters, say.

        A value that cannot be pickled spoils the frame, not its neighbours: then
        each reply goes alone, and only that one reaches its asker as an error.
        """
        if len(answers) == 1:
            self.send_reply(address, answers[0][0], True, answers[0][1], awaited=awaited)
            return
        try:
            data, pickler = self._reply_pickled((REPLIES, tuple(answers)), address)
        except Exception:
            for reply_id, value in answers:
                self.send_reply(address, reply_id, True, value, awaited=awaited)
            return
        self._send_reply_record(address, data, awaited)
        pickler.release()

    def _send_reply_record(self, address: str, data: bytes, awaited: bool) -> None:
        """Queue a pickled reply record for the asking process, unless it is gone."""
        try:
            peer = self.connected(address)
        except ActorDeadError:
            return  # the asker is gone; nobody is left to tell
        self._writer.enqueue(peer, record_bytes(data), awaited=awaited)

    def send_control(self, address: str, op: str, actor_id: str, arg: Any = None) -> Future[Any]:
        fut: Future[Any] = Future()
        peer = self.connected(address)
        reply_id = self.replies.register(fut, peer)
        self._writer.enqueue(peer, self.frame((CTRL, op, actor_id, reply_id, arg), peer),
                             awaited=True)
        return fut

    def send_notice(self, address: str, op: str, actor_id: str, arg: Any = None) -> None:
        """Send a control record that wants no answer; ``ActorDeadError`` if nobody listens."""
        peer = self.connected(address)
        self._writer.enqueue(peer, self.frame((CTRL, op, actor_id, 0, arg), peer))

    def credit(self, peer: Peer, actor_id: str) -> None:
        """Called by an inbox as its actor takes a message that ``peer`` sent."""
        count = peer.took(actor_id, self.credit_batch)
        if count and peer.conn is not None:
            self._writer.enqueue(peer, self.frame((CREDIT, actor_id, count), peer))


__all__ = ["REPLIES", "Hosted", "Node", "current_node", "node_for"]
