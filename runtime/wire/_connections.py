"""A node's connections: one duplex Unix-socket connection per peer process, opened by either side.

Connections are authenticated with the system's secret by
``multiprocess.connection`` (``Client``/``Listener``); the connecting side
says who it is in a ``HELLO`` record. Each connection has a ``Channel`` (its
reading) and a reader thread. When a connection ends, its peer's waiters are
failed and blocked senders woken (``broken``); the next send reconnects,
waiting up to its grace for a restarting process.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from multiprocess.connection import Client, Connection, Listener

from actors import tracelog
from runtime import serialization
from runtime.errors import ActorDeadError
from runtime.wire._channel import Channel
from runtime.wire._framing import HELLO, shut_down
from runtime.wire._peer import Peer
from runtime.wire._spin import SpinWait

log = tracelog.get_logger("runtime.transport")


class Connections:
    """The peers of one node and their connections.

    ``deliver(peer, record)`` handles each record read; ``broken(peer, reason)`` runs when a
    peer's connection ends (fail what waits on it).
    """

    def __init__(self, *, owner: Any, address: str, secret: bytes, spin_wait: float,
                 deliver: Callable[[Peer, memoryview], None],
                 broken: Callable[[Peer, str], None]) -> None:
        self._owner = owner  # the node, which each Peer names
        self.address = address
        self._secret = secret
        self._spin_wait = spin_wait
        self._deliver = deliver
        self._broken = broken
        self.peers: dict[str, Peer] = {}
        self._peers_lock = threading.Lock()
        self.down: dict[str, str] = {}  # address -> why its process is down for now
        self.channels: dict[int, Channel] = {}  # id(connection) -> its reading
        self.closed = False
        self.shutting_down = False  # the system is stopping: a gone peer is not restarting
        self._listener: Listener | None = None

    def listen(self) -> None:
        if os.path.exists(self.address):
            os.unlink(self.address)  # a crashed predecessor's socket (restart at the same address)
        self._listener = Listener(self.address, family="AF_UNIX", authkey=self._secret)
        os.chmod(self.address, 0o600)
        threading.Thread(target=self._accept_loop, name="da-accept", daemon=True).start()

    def close(self) -> None:
        self.closed = True
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        with self._peers_lock:
            peers = list(self.peers.values())
        for peer in peers:
            self.break_(peer, peer.conn, "this process's node closed")

    def flushed(self) -> bool:
        """True when no frame waits to be written (for orderly process exit)."""
        with self._peers_lock:
            return all(not p.out for p in self.peers.values())

    def peer(self, address: str) -> Peer:
        found = self.peers.get(address)
        if found is None:
            with self._peers_lock:
                found = self.peers.setdefault(address, Peer(self._owner, address))
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
                if self.closed:
                    raise ActorDeadError("actor system shut down")
                try:
                    conn = Client(address, family="AF_UNIX", authkey=self._secret)
                    conn.send_bytes(serialization.dumps((HELLO, self.address)))
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
            deliver=functools.partial(self._deliver, peer),  # no Python frame of ours per record
            ended=lambda reason: self.break_(peer, conn, reason),
            spin=SpinWait(self._spin_wait),
        )
        channel.owner = peer
        self.channels[id(conn)] = channel
        if peer.conn is None:
            peer.conn = conn
            peer.channel = channel
            peer.dead_actors.clear()
        thread = threading.Thread(target=channel.serve, name="da-reader", daemon=True)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self.closed:
            try:
                conn = self._listener.accept()
                kind, address = serialization.loads(conn.recv_bytes())
            except Exception as exc:  # an unauthenticated or broken client: drop it, keep serving
                if not self.closed:
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
        peer = self.peers.get(address)
        conn = None if peer is None else peer.conn
        if peer is None or conn is None:
            return
        deadline = time.monotonic() + wait
        while peer.conn is conn and time.monotonic() < deadline:
            time.sleep(0.001)
        if peer.conn is conn:
            self.break_(peer, conn, reason)

    def break_(self, peer: Peer, conn: Connection | None, reason: str) -> None:
        """A connection ended: fail what waits on the peer, wake blocked senders."""
        if conn is not None:
            channel = self.channels.pop(id(conn), None)
            if channel is not None:
                channel.shutdown()  # before the close: nobody may poll a reused descriptor
            # A writer may hold the descriptor's number, about to write: closed under it,
            # the number could go to a file opened meanwhile, and the frame into that file.
            # Shut down first (a write blocked on a full socket fails now), close once no
            # write is in progress.
            with contextlib.suppress(OSError):
                shut_down(conn)
            with peer.write_lock, contextlib.suppress(OSError):
                conn.close()
        if peer.conn is not conn:
            return  # a spare connection of a peer that still has its main one
        peer.broken()
        self._broken(peer, reason)

    def write_failed(self, peer: Peer, conn: Connection, exc: OSError) -> None:
        """A write found the peer's end closed; the reader ends the connection, not us.

        What the peer sent before it closed (the reply to a stop, say) may still wait
        unread in our receive buffer: the connection's reader delivers it, then reaches
        EOF and fails whatever is still unanswered (``break_``).
        """
        channel = self.channels.get(id(conn))
        if channel is None or channel.closed:
            self.break_(peer, conn, f"write failed: {exc}")
