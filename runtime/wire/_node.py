"""This process's end of the system's channels: one ``Node`` per process and system.

Every process of a system (the service, each actor's process) runs a Node: a
Unix-socket listener in the system's private directory (mode 0700, connections
authenticated with the system's secret by ``multiprocess.connection``), one
duplex connection per peer process, opened on first use by either side.
Messages go straight from sender to receiver; nothing is relayed.

The hot path does the least work it can:

* the *sending thread* pickles (so a bad message fails at the sender, naming
  the culprit) and writes the length-prefixed record itself when the connection
  is idle: a lone frame, or one of a ping-pong (an ask with nothing else
  outstanding, and its reply), costs no thread hop (``Node._enqueue``);
* frames of a burst go to the peer's outbound queue instead, and one *writer
  thread* per node writes everything that has accumulated for a peer in one write;
* one *reader thread* per connection only decodes records and enqueues them:
  messages into the target actor's inbox, replies into their futures; but a
  thread blocked on a reply reads the connection itself while no other thread
  does, and an idle actor's thread reads the connections while its inbox is
  empty (``runtime.wire``), so an ask wakes only the thread that answers it
  and then only the asker.

Flow control is credit based: a node may have at most ``mailbox_window``
messages in flight to one actor; the receiving actor returns credit as it takes
messages from its inbox, so a slow actor slows its senders (and, past
``send_timeout``, makes them raise ``MailboxFullError``) instead of growing
memory without bound. Replies and control records are never held back, so a
full mailbox cannot block the reply an actor is waiting for.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pickle
import queue
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Any

from multiprocess.connection import Client, Connection, Listener

from actors import tracelog
from actors.replies import exception_of
from runtime import serialization
from runtime.errors import ActorDeadError, MailboxFullError, RemoteError, SerializationError
from runtime.remote._exports import reply_target, replying_to
from runtime.remote._future import Future, remote_traceback_of
from runtime.wire._channel import Channel, Pump, SpinWait

if TYPE_CHECKING:
    from runtime.processes._host import HostedActor

log = tracelog.get_logger("runtime.transport")

# Record kinds: the first field of every pickled record tuple. VALUE answers the copy of a
# future that this process sent inside a reply (``runtime.remote``).
MSG, REPLY, CREDIT, CTRL, HELLO, DEAD, REPLIES, VALUE = range(8)
_LEN = struct.Struct("<I")
_MAX_WRITE = 4 * 1024 * 1024  # bytes the writer gathers for one peer before writing
# Reply values the stdlib pickler writes without calling back into Python: no classes or
# functions that might travel by value, so ``serialization.dumps`` has nothing to add.
_PLAIN = frozenset({type(None), bool, int, float, str, bytes})
_BURST_GAP = 50e-6  # frames closer than this are a burst: batch them in the writer thread
_WIRE = struct.Struct("!i")  # multiprocess's frame header, as ``channel.cut_frames`` reads it
_WIRE_MAX = 0x7FFFFFFF  # bigger payloads take multiprocess's 8-byte header: its own send_bytes

_nodes: dict[str, Node] = {}  # system id -> this process's node of that system
_nodes_lock = threading.Lock()
_sending_to = threading.local()  # peer whose message is being pickled (see reply_handle_for)


def node_for(system_id: str) -> Node:
    """This process's node of system ``system_id``; ``ActorDeadError`` if it has none."""
    try:
        return _nodes[system_id]
    except KeyError:
        raise ActorDeadError(
            f"actor system {system_id!r} is not running in this process "
            "(it was shut down, or this ref came from another system)"
        ) from None


def current_node() -> Node | None:
    """The only node in this process, for child processes (one system each)."""
    with _nodes_lock:
        return next(iter(_nodes.values())) if len(_nodes) == 1 else None


def reply_handle_for(future: Future[Any]) -> tuple[Any, ...]:
    """How a ``Future`` pickles: register it for a reply and travel as (address, id).

    Inside a reply it travels as the receiver's copy instead (``runtime.remote``).
    """
    peer: Peer | None = getattr(_sending_to, "peer", None)
    if peer is None:
        target = reply_target()
        if target is not None:
            return target.export(future)
    node = peer.node if peer is not None else current_node()
    if node is None:
        raise SerializationError(
            "a Future can only be sent inside a message of a running actor system"
        )
    reply_id = node.register(future, peer)
    return (_rebuild_reply, (node.system_id, node.address, reply_id))


def _rebuild_reply(system_id: str, address: str, reply_id: int) -> Any:
    node = _nodes.get(system_id)
    if node is not None and node.address == address:
        home = node.pending_future(reply_id)  # the handle came home: the waiting future itself
        if home is not None:
            return home
    return RemoteReply(system_id, address, reply_id)


def _settle(fut: Future[Any], ok: bool, value: Any) -> None:
    """Answer ``fut``, unless its owner already did (a send that failed at its caller)."""
    try:
        if ok:
            fut.set(value)
        else:
            fut.set_exception((type(value), value, value.__traceback__))
    except queue.Full:
        pass  # the first answer stands, as pykka's set-once futures have it


def write_frame(conn: Connection, payload: bytes) -> None:
    """Send ``payload`` as one frame of ``conn``: ``conn.send_bytes`` minus its Python checks.

    The same bytes on the wire, in one ``writev`` (no copy of a big payload);
    ~3 µs instead of ~7 µs for a small one, twice per ask. ``fileno()`` raises
    ``OSError`` on a closed connection, so a recycled descriptor is never written.
    """
    size = len(payload)
    if size > _WIRE_MAX:
        conn.send_bytes(payload)
        return
    fd = conn.fileno()
    header = _WIRE.pack(size)
    written = os.writev(fd, (header, payload))
    if written < size + _WIRE.size:  # a signal cut a blocking write short: finish it
        rest = memoryview(header + payload)[written:]
        while rest:
            rest = rest[os.write(fd, rest):]


def _shut_down(conn: Connection) -> None:
    """End both directions of ``conn``'s socket, without closing its descriptor."""
    with socket.socket(fileno=os.dup(conn.fileno())) as sock:
        sock.shutdown(socket.SHUT_RDWR)


class RemoteReply:
    """A reply handle whose future waits in another process; quacks like a pykka Future.

    Answered twice, it raises ``queue.Full`` as a pykka future does (another copy of
    the handle cannot know: the first answer to arrive wins, a later one is dropped).
    """

    __slots__ = ("address", "awaited", "reply_id", "settled", "system_id")

    def __init__(self, system_id: str, address: str, reply_id: int, awaited: bool = False) -> None:
        self.system_id = system_id
        self.address = address
        self.reply_id = reply_id
        # The asker had nothing else outstanding with us: it waits on this reply alone,
        # so the reply skips the writer thread's batching (see ``Node._enqueue``).
        self.awaited = awaited
        self.settled = False

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_reply, (self.system_id, self.address, self.reply_id))

    def __repr__(self) -> str:
        return f"<RemoteReply {self.reply_id} to {os.path.basename(self.address)}>"

    @property
    def reply_group(self) -> tuple[str, str]:
        """Answers to one process travel together (``actors.records.reply_group``)."""
        return self.system_id, self.address

    def _settle_once(self) -> None:
        if self.settled:
            raise queue.Full(f"{self!r} was answered already; a reply is set only once")
        self.settled = True

    def set(self, value: Any = None) -> None:
        if self.settled:
            self._settle_once()  # raises
        self.settled = True
        node_for(self.system_id).send_reply(self.address, self.reply_id, True, value,
                                            awaited=self.awaited)

    @staticmethod
    def set_group(answers: Sequence[tuple[RemoteReply, Any]]) -> None:
        """Answer every handle of ``answers`` (one process's) with its value, in one frame."""
        for handle, _ in answers:
            handle._settle_once()
        first = answers[0][0]
        node_for(first.system_id).send_replies(
            first.address, [(handle.reply_id, value) for handle, value in answers],
            awaited=any(handle.awaited for handle, _ in answers))

    def set_exception(self, exc_info: Any = None) -> None:
        exc = exception_of(exc_info)
        self._settle_once()
        node_for(self.system_id).send_reply(self.address, self.reply_id, False, exc,
                                            awaited=self.awaited)


def _awaits_reply(channel: Channel) -> bool:
    """A thread of this process waits for a reply from that peer: it reads it itself."""
    peer = channel.owner
    return peer is not None and bool(peer.pending)


@dataclass(eq=False)
class Peer:
    """Another process of the system, as seen from this node."""

    node: Node
    address: str
    conn: Connection | None = None
    channel: Channel | None = None  # the reading of ``conn``
    connect_lock: threading.Lock = field(default_factory=threading.Lock)
    flow_lock: threading.Lock = field(default_factory=threading.Lock)
    flow_cond: threading.Condition = field(init=False)
    inflight: dict[str, int] = field(default_factory=dict)  # actor id -> unacknowledged msgs
    consumed: dict[str, int] = field(default_factory=dict)  # actor id -> msgs to credit back
    pending: set[int] = field(default_factory=set)  # reply ids that wait on this peer
    out: deque[bytes] = field(default_factory=deque)  # frames waiting for the writer thread
    # Held while a frame is written, and while the connection is closed (re-entered when a
    # failed write breaks it): a descriptor number is never closed under a write.
    write_lock: threading.RLock = field(default_factory=threading.RLock)
    last_send: float = 0.0  # perf_counter of the last frame handed to this peer
    dead_actors: set[str] = field(default_factory=set)
    generation: int = 0  # bumped on every broken connection; wakes blocked senders

    def __post_init__(self) -> None:
        self.flow_cond = threading.Condition(self.flow_lock)


class Node:
    """One process's endpoint in one actor system."""

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
        self.actors: dict[str, HostedActor] = {}
        self.ctrl_handlers: dict[str, Callable[[str, Any], Any]] = {}
        self._peers: dict[str, Peer] = {}
        self.down: dict[str, str] = {}  # address -> why its process is down for now
        self._peers_lock = threading.Lock()
        self._pending: dict[int, Future[Any]] = {}
        self._imports: dict[tuple[str, int], int] = {}  # (exporter, export id) -> reply id
        self._ids = itertools.count(1)
        self._dirty: queue.SimpleQueue[Peer | None] = queue.SimpleQueue()
        self._closed = False
        self.shutting_down = False  # the system is stopping: a gone peer is not restarting
        # While a child boots, messages for its actor (not hosted yet) wait here, in order;
        # a restarted actor's address takes connections before its actor is built.
        self._held: list[tuple[Peer, tuple[Any, ...]]] | None = None
        self._held_lock = threading.Lock()
        self._listener: Listener | None = None
        self._threads: list[threading.Thread] = []
        self._channels: dict[int, Channel] = {}  # id(connection) -> its reading
        self._pump: Pump | None = None

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> Node:
        if os.path.exists(self.address):
            os.unlink(self.address)  # a crashed predecessor's socket (restart at the same address)
        self._listener = Listener(self.address, family="AF_UNIX", authkey=self.secret)
        os.chmod(self.address, 0o600)
        with _nodes_lock:
            _nodes[self.system_id] = self
        for target, name in ((self._accept_loop, "accept"), (self._writer_loop, "writer")):
            thread = threading.Thread(target=target, name=f"da-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with _nodes_lock:
            if _nodes.get(self.system_id) is self:
                del _nodes[self.system_id]
        self._dirty.put(None)
        if self._pump is not None:
            self._pump.close()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        with self._peers_lock:
            peers = list(self._peers.values())
        for peer in peers:
            self._break(peer, peer.conn, "this process's node closed")
        for fut in list(self._pending.values()):
            _settle(fut, False, ActorDeadError("actor system shut down"))
        self._pending.clear()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pump(self) -> Pump:
        """Lets an idle hosted actor's thread read this process's connections itself."""
        pump = self._pump
        if pump is None:
            with _nodes_lock:
                pump = self._pump
                if pump is None:
                    spin = SpinWait(self.spin_wait)
                    pump = self._pump = Pump(self._pumpable, _awaits_reply, spin)
                    if self._closed:
                        pump.close()
        return pump

    def _pumpable(self) -> list[Channel]:
        return list(self._channels.values())

    # -- futures ---------------------------------------------------------------

    def register(self, future: Future[Any], peer: Peer | None) -> int:
        reply_id = future._reply_id
        if reply_id is None:
            reply_id = future._reply_id = next(self._ids)
            self._pending[reply_id] = future
        if peer is not None:
            peer.pending.add(reply_id)
            if future._channel is None:
                future._channel = peer.channel  # a getter reads the reply itself
        return reply_id

    def pending_future(self, reply_id: int) -> Future[Any] | None:
        return self._pending.get(reply_id)

    def new_export_id(self) -> int:
        return next(self._ids)

    def import_future(self, address: str, export_id: int, copy: Future[Any]) -> None:
        """``copy`` waits for the value the process at ``address`` exported as ``export_id``."""
        peer = self.peer(address)
        self._imports[(address, export_id)] = self.register(copy, peer)

    def _resolve(self, reply_id: int, ok: bool, value: Any, peer: Peer | None) -> None:
        fut = self._pending.pop(reply_id, None)
        if peer is not None:
            peer.pending.discard(reply_id)
        if fut is None:
            return  # already failed (peer died, system closed) or answered
        try:
            if ok:
                fut.set(value)
            else:
                fut.set_exception((type(value), value, value.__traceback__))
        except queue.Full:
            pass  # its owner answered it first (a send that failed at its caller)

    # -- peers and connections --------------------------------------------------

    def mark_down(self, address: str, reason: str) -> None:
        """Senders to ``address`` fail at once (``ActorDeadError`` with ``reason``) instead of
        waiting out a restart grace, until ``mark_up``: its process is past its restarts."""
        self.down[address] = reason

    def mark_up(self, address: str) -> None:
        self.down.pop(address, None)

    def peer(self, address: str) -> Peer:
        found = self._peers.get(address)
        if found is None:
            with self._peers_lock:
                found = self._peers.setdefault(address, Peer(self, address))
        return found

    def connected(self, address: str, *, grace: float = 0.0) -> Peer:
        """The peer at ``address`` with a live connection, connecting if needed.

        ``grace`` keeps retrying a refused connection that long (a restarting actor).
        """
        peer = self.peer(address)
        if peer.conn is not None:
            return peer
        down = self.down.get(address)
        if down is not None:  # past its restart budget: a sender must not wait for it
            raise ActorDeadError(f"{os.path.basename(address)} is down: {down}")
        deadline = time.monotonic() + (0.0 if self.shutting_down else grace)
        with peer.connect_lock:
            while peer.conn is None:
                if self._closed:
                    raise ActorDeadError("actor system shut down")
                try:
                    conn = Client(address, family="AF_UNIX", authkey=self.secret)
                    conn.send_bytes(self._frame((HELLO, self.address)))
                except (OSError, EOFError) as exc:  # gone, refused, or reset mid-handshake
                    down = self.down.get(address)
                    if down is not None:  # found past its restarts while we waited
                        name = os.path.basename(address)
                        raise ActorDeadError(f"{name} is down: {down}") from exc
                    if time.monotonic() >= deadline:
                        raise ActorDeadError(
                            f"no process listens at {os.path.basename(address)}: the actor is "
                            "stopped or crashed (spawn it again, or give it a RestartPolicy)"
                        ) from exc
                    time.sleep(0.01)  # a restarting actor rebinds its address shortly
                    continue
                self._attach(peer, conn)
        return peer

    def _attach(self, peer: Peer, conn: Connection) -> None:
        channel = Channel(
            conn.fileno(),
            deliver=lambda frame: self._deliver_frame(peer, frame),
            ended=lambda reason: self._break(peer, conn, reason),
            spin=SpinWait(self.spin_wait),
        )
        channel.owner = peer
        self._channels[id(conn)] = channel
        if peer.conn is None:
            peer.conn = conn
            peer.channel = channel
            peer.dead_actors.clear()
        thread = threading.Thread(target=channel.serve, name="da-reader", daemon=True)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._closed:
            try:
                conn = self._listener.accept()
                first = conn.recv_bytes()
                kind, address = serialization.loads(memoryview(first)[_LEN.size :])
            except Exception as exc:  # an unauthenticated or broken client: drop it, keep serving
                if not self._closed:
                    log.debug("transport.accept_failed", error=repr(exc))
                continue
            if kind == HELLO:
                self._attach(self.peer(address), conn)

    def disconnect(self, address: str, reason: str, wait: float = 1.0) -> None:
        """The process at ``address`` is known to have exited: see its connection end now.

        The supervisor learns of an exit from the process's sentinel, often before this
        node's reader has seen the connection end; a message sent in between would go into
        the dead connection and be dropped. So this waits (up to ``wait`` seconds) for the
        reader to reach the end, delivering what the process sent before it died (a reply
        to a stop), then ends the connection itself; the next send waits (within its
        grace) for the restarted process.
        """
        peer = self._peers.get(address)
        conn = None if peer is None else peer.conn
        if peer is None or conn is None:
            return
        deadline = time.monotonic() + wait
        while peer.conn is conn and time.monotonic() < deadline:
            time.sleep(0.001)
        if peer.conn is conn:
            self._break(peer, conn, reason)

    def _break(self, peer: Peer, conn: Connection | None, reason: str) -> None:
        """A connection ended: fail what waits on the peer, wake blocked senders."""
        if conn is not None:
            channel = self._channels.pop(id(conn), None)
            if channel is not None:
                channel.shutdown()  # before the close: nobody may poll a reused descriptor
            # A writer may hold the descriptor's number, about to write: closed under it,
            # the number could go to a file opened meanwhile, and the frame into that file.
            # Shut down first (a write blocked on a full socket fails now), close once no
            # write is in progress.
            with contextlib.suppress(OSError):
                _shut_down(conn)
            with peer.write_lock, contextlib.suppress(OSError):
                conn.close()
        if peer.conn is not conn:
            return  # a spare connection of a peer that still has its main one
        with peer.flow_lock:
            peer.conn = None
            peer.channel = None
            peer.out.clear()  # frames for a dead incarnation must not reach a restarted one
            peer.inflight.clear()
            peer.generation += 1
            peer.flow_cond.notify_all()
        for key in [k for k in self._imports if k[0] == peer.address]:
            del self._imports[key]  # their futures are among the waiting, failed below
        waiting = list(peer.pending)
        peer.pending.clear()
        for reply_id in waiting:
            fut = self._pending.pop(reply_id, None)
            if fut is not None:
                err = ActorDeadError(
                    f"the process at {os.path.basename(peer.address)} went away before "
                    f"replying ({reason})"
                )
                _settle(fut, False, err)

    def _write_failed(self, peer: Peer, conn: Connection, exc: OSError) -> None:
        """A write found the peer's end closed; the reader ends the connection, not us.

        What the peer sent before it closed (the reply to a stop, say) may still wait
        unread in our receive buffer: the connection's reader delivers it, then reaches
        EOF and fails whatever is still unanswered (``_break``).
        """
        channel = self._channels.get(id(conn))
        if channel is None or channel.closed:
            self._break(peer, conn, f"write failed: {exc}")

    # -- sending ----------------------------------------------------------------

    @staticmethod
    def _frame(record: tuple[Any, ...]) -> bytes:
        data = serialization.dumps(record)
        return _LEN.pack(len(data)) + data

    def _enqueue(self, peer: Peer, frame: bytes, *, awaited: bool = False) -> None:
        """Write ``frame`` now if the connection is idle, else queue it for the writer.

        A lone frame on a quiet connection costs no thread hop; a burst (frames closer
        than ``_BURST_GAP``) or contention piles frames up in ``peer.out`` and the
        writer thread sends all of them in one write. A frame of a ping-pong
        (``awaited``: an ask while nothing else is outstanding with that peer, its
        reply, a control) is never a burst, though back-to-back asks come one round
        trip apart, under the gap on a fast machine: sending those through the writer
        thread doubled the ask's latency. A pipeline of asks still batches: its asks
        after the first find replies outstanding.
        """
        now = perf_counter()
        quiet = awaited or now - peer.last_send > _BURST_GAP
        peer.last_send = now
        if quiet and peer.write_lock.acquire(blocking=False):
            try:
                if not peer.out:
                    conn = peer.conn
                    if conn is not None:
                        try:
                            write_frame(conn, frame)
                        except OSError as exc:
                            self._write_failed(peer, conn, exc)
                    return
                peer.out.append(frame)  # older frames are queued: keep the order
            finally:
                peer.write_lock.release()
        else:
            peer.out.append(frame)
        self._dirty.put(peer)

    def flushed(self) -> bool:
        """True when no frame waits to be written (for orderly process exit)."""
        with self._peers_lock:
            return all(not p.out for p in self._peers.values())

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
        _sending_to.peer = peer
        try:
            if reply is not None:
                reply_id = self.register(reply, peer)
            data = serialization.dumps((MSG, actor_id, message, reply_id, context, awaited))
        except Exception as exc:
            if reply_id:
                self._pending.pop(reply_id, None)
                peer.pending.discard(reply_id)
            if isinstance(exc, SerializationError):
                raise
            serialization.dumps_or_raise(message, f"message to {actor_name!r}")
            raise  # the message alone pickles; the context must not: say so as it is
        finally:
            _sending_to.peer = None
        self._acquire_credit(peer, actor_id, actor_name)
        self._enqueue(peer, _LEN.pack(len(data)) + data, awaited=awaited)

    def _acquire_credit(self, peer: Peer, actor_id: str, actor_name: str) -> None:
        with peer.flow_lock:
            inflight = peer.inflight.get(actor_id, 0)
            if inflight >= self.mailbox_window:
                generation = peer.generation
                deadline = time.monotonic() + self.send_timeout
                channel = peer.channel
                # Counted as waiting on the connection: somebody reads the credit we need.
                with channel.waiting() if channel is not None else contextlib.nullcontext():
                    self._wait_for_credit(peer, actor_id, actor_name, generation, deadline)
                inflight = peer.inflight.get(actor_id, 0)
            peer.inflight[actor_id] = inflight + 1

    def _wait_for_credit(
        self, peer: Peer, actor_id: str, actor_name: str, generation: int, deadline: float
    ) -> None:
        """Under ``peer.flow_lock``: block until the actor's window has room."""
        while peer.inflight.get(actor_id, 0) >= self.mailbox_window:
            if peer.generation != generation:
                raise ActorDeadError(f"actor {actor_name!r} went away while sending")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MailboxFullError(
                    f"actor {actor_name!r} has not taken {self.mailbox_window} messages "
                    f"from this process within {self.send_timeout}s; slow the sender, "
                    "speed up the actor, or raise SystemConfig.mailbox_window"
                )
            peer.flow_cond.wait(remaining)

    def send_reply(
        self, address: str, reply_id: int, ok: bool, value: Any, *, awaited: bool = True,
        kind: int = REPLY,
    ) -> None:
        reply = None
        if ok and type(value) in _PLAIN:  # an acknowledgement, mostly: no pickler of ours
            data = pickle.dumps((kind, reply_id, True, value), protocol=5)
        elif ok:
            try:
                with replying_to(self, address) as reply:
                    data = serialization.dumps((kind, reply_id, True, value))
            except Exception as exc:
                reply = None  # futures it held are not exported: nothing waits for them
                err = SerializationError(
                    f"the reply could not be pickled: {exc}; return plain data from the actor"
                )
                data = serialization.dumps((kind, reply_id, False, err))
        else:
            data = self._pickle_exception(reply_id, value, kind)
        self._send_reply_record(address, data, awaited)
        if reply is not None:
            reply.release()  # futures inside it now send their values: after the reply

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
            with replying_to(self, address) as reply:
                data = serialization.dumps((REPLIES, tuple(answers)))
        except Exception:
            for reply_id, value in answers:
                self.send_reply(address, reply_id, True, value, awaited=awaited)
            return
        self._send_reply_record(address, data, awaited)
        reply.release()

    def _send_reply_record(self, address: str, data: bytes, awaited: bool) -> None:
        """Queue a pickled reply record for the asking process, unless it is gone."""
        try:
            peer = self.connected(address)
        except ActorDeadError:
            return  # the asker is gone; nobody is left to tell
        self._enqueue(peer, _LEN.pack(len(data)) + data, awaited=awaited)

    @staticmethod
    def _pickle_exception(reply_id: int, exc: BaseException, kind: int = REPLY) -> bytes:
        text = remote_traceback_of(exc)
        try:
            exc.remote_traceback = text  # type: ignore[attr-defined]
            exc.add_note("Remote traceback (from the actor's process):\n" + text)
            data = serialization.dumps((kind, reply_id, False, exc))
            serialization.loads(data)  # some exceptions pickle but cannot be rebuilt
            return data
        except Exception:
            qualname = f"{type(exc).__module__}.{type(exc).__qualname__}"
            substitute = RemoteError(qualname, str(exc), text)
            return serialization.dumps((kind, reply_id, False, substitute))

    def send_control(self, address: str, op: str, actor_id: str, arg: Any = None) -> Future[Any]:
        fut: Future[Any] = Future()
        peer = self.connected(address)
        reply_id = self.register(fut, peer)
        self._enqueue(peer, self._frame((CTRL, op, actor_id, reply_id, arg)), awaited=True)
        return fut

    def credit(self, peer: Peer, actor_id: str) -> None:
        """Called by an inbox as its actor takes a message that ``peer`` sent."""
        count = peer.consumed.get(actor_id, 0) + 1
        if count >= self.credit_batch:
            peer.consumed[actor_id] = 0
            if peer.conn is not None:
                self._enqueue(peer, self._frame((CREDIT, actor_id, count)))
        else:
            peer.consumed[actor_id] = count

    def _writer_loop(self) -> None:
        dirty = self._dirty
        while True:
            peer = dirty.get()
            if peer is None:
                return
            with peer.write_lock:
                if not peer.out:
                    continue  # drained with an earlier wake-up
                frames = []
                size = 0
                while peer.out and size < _MAX_WRITE:
                    frame = peer.out.popleft()
                    frames.append(frame)
                    size += len(frame)
                conn = peer.conn
                if conn is None:
                    continue  # the peer died; its waiters were failed by _break
                try:
                    write_frame(conn, frames[0] if len(frames) == 1 else b"".join(frames))
                except OSError as exc:
                    self._write_failed(peer, conn, exc)
                    continue
            if peer.out:
                dirty.put(peer)  # more arrived, or the write was capped at _MAX_WRITE

    # -- receiving ----------------------------------------------------------------

    def _deliver_frame(self, peer: Peer, data: bytes) -> None:
        """Decode and dispatch the records of one frame (run by whoever reads the connection)."""
        view = memoryview(data)
        offset, end = 0, len(data)
        while offset < end:
            (length,) = _LEN.unpack_from(view, offset)
            start = offset + _LEN.size
            offset = start + length
            try:
                record = serialization.loads(view[start:offset])
            except Exception as exc:  # a class the receiver cannot import, say
                log.error("transport.undecodable_record", error=repr(exc), peer=peer.address)
                continue
            self._dispatch(peer, record)

    def _dispatch(self, peer: Peer, record: tuple[Any, ...]) -> None:
        kind = record[0]
        if kind == MSG:
            _, actor_id, message, reply_id, context, awaited = record
            hosted = self.actors.get(actor_id)
            if hosted is None and self._held is not None:
                with self._held_lock:
                    if self._held is not None:
                        self._held.append((peer, record))
                        return
                hosted = self.actors.get(actor_id)
            if hosted is None or not hosted.accepting:
                self._reject(peer, actor_id, reply_id)
                return
            hosted.deliver(message, peer, reply_id, context, awaited)
        elif kind == REPLIES:
            for reply_id, value in record[1]:
                self._resolve(reply_id, True, value, peer)
        elif kind == REPLY:
            _, reply_id, ok, value = record
            self._resolve(reply_id, ok, value, peer)
        elif kind == CREDIT:
            _, actor_id, count = record
            with peer.flow_lock:
                peer.inflight[actor_id] = max(0, peer.inflight.get(actor_id, 0) - count)
                peer.flow_cond.notify_all()
        elif kind == CTRL:
            _, op, actor_id, reply_id, arg = record
            self._control(peer, op, actor_id, reply_id, arg)
        elif kind == DEAD:
            peer.dead_actors.add(record[1])
        elif kind == VALUE:
            _, export_id, ok, value = record
            reply_id = self._imports.pop((peer.address, export_id), 0)
            if reply_id:
                self._resolve(reply_id, ok, value, peer)

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
                self._dispatch(peer, record)

    def _reject(self, peer: Peer, actor_id: str, reply_id: int) -> None:
        self._enqueue(peer, self._frame((DEAD, actor_id)))
        if reply_id:
            hosted = self.actors.get(actor_id)
            what = f"actor {actor_id}" if hosted is None else str(hosted)
            err = ActorDeadError(f"{what} not found: it had stopped when the message arrived, "
                                 "so the message was not handled")
            self.send_reply(peer.address, reply_id, False, err)

    def _control(self, peer: Peer, op: str, actor_id: str, reply_id: int, arg: Any) -> None:
        """Run a control handler; a Future it returns is answered once it is done.

        Reply id 0 is a notice: nobody waits for its answer.
        """
        try:
            handler = self.ctrl_handlers[op]
            result = handler(actor_id, arg)
        except Exception as exc:
            if reply_id:
                self.send_reply(peer.address, reply_id, False, exc)
            else:
                log.error("transport.notice_failed", op=op, error=repr(exc))
            return
        if not reply_id:
            return
        if isinstance(result, Future):
            result._when_done(lambda done: self._answer_control(peer.address, reply_id, done))
        else:
            self.send_reply(peer.address, reply_id, True, result)

    def _answer_control(self, address: str, reply_id: int, done: Future[Any]) -> None:
        exc = done._exc
        self.send_reply(address, reply_id, exc is None, done._value if exc is None else exc)

    def send_notice(self, address: str, op: str, actor_id: str, arg: Any = None) -> None:
        """Send a control record that wants no answer; ``ActorDeadError`` if nobody listens."""
        peer = self.connected(address)
        self._enqueue(peer, self._frame((CTRL, op, actor_id, 0, arg)))


def local_ref_target(node: Node, ref: Any) -> HostedActor | None:
    """The hosted actor behind ``ref`` if it lives in this very process."""
    if ref.address != node.address:
        return None
    return node.actors.get(ref.actor_id)
