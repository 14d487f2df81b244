"""Writing frames: at once from the sending thread when the connection is quiet, batched when not.

The *sending thread* writes the length-prefixed record itself when the
connection is idle: a lone frame, or one of a ping-pong (an ask with nothing
else outstanding, and its reply), costs no thread hop. Frames of a burst go to
the peer's outbound queue instead, and one *writer thread* per node writes
everything that has accumulated for a peer in one write (write coalescing; the
checkpoint batcher's policy is a separate, higher layer).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from time import perf_counter

from multiprocess.connection import Connection

from runtime.wire._framing import write_records
from runtime.wire._peer import Peer

_MAX_WRITE = 4 * 1024 * 1024  # bytes the writer gathers for one peer before writing
_BURST_GAP = 50e-6  # frames closer than this are a burst: batch them in the writer thread


class Writer:
    """A node's outbound side: ``enqueue`` frames; one thread writes the bursts.

    ``write_failed(peer, conn, exc)`` runs when a write finds the peer's end closed.
    """

    def __init__(self, write_failed: Callable[[Peer, Connection, OSError], None]) -> None:
        self._write_failed = write_failed
        self._dirty: queue.SimpleQueue[Peer | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="da-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._dirty.put(None)

    def enqueue(self, peer: Peer, frame: bytes, *, awaited: bool = False) -> None:
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
                            write_records(conn, frame)
                        except OSError as exc:
                            self._write_failed(peer, conn, exc)
                    return
                peer.out.append(frame)  # older frames are queued: keep the order
            finally:
                peer.write_lock.release()
        else:
            peer.out.append(frame)
        self._dirty.put(peer)

    def _loop(self) -> None:
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
                    continue  # the peer died; its waiters were failed by the node
                try:
                    write_records(conn, frames[0] if len(frames) == 1 else b"".join(frames))
                except OSError as exc:
                    self._write_failed(peer, conn, exc)
                    continue
            if peer.out:
                dirty.put(peer)  # more arrived, or the write was capped at _MAX_WRITE
