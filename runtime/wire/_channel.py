"""Reading one connection: the thread that waits for a reply reads it itself.

Every connection has a reader thread, but a reply that the reader thread
decodes must then wake the thread blocked in ``ask``: a second wake-up per
round trip, which on a small or virtualised machine costs as much as the
process hop itself. So a ``Channel`` has a *lead*: whoever holds it is the only
thread reading the connection (leader/follower). A thread blocked on a future
that the connection will answer takes the lead if it is free, polls the socket
itself and decodes its own reply; the reader thread is the *standby* that leads
when no one else does:

* it takes the lead back once the lead has gone a whole ``STANDBY_GRACE``
  without a new leader (an ask loop retakes it every round trip, so the standby
  stays out of the way), or at once when a leader leaves while other threads
  wait on the connection;
* while it leads, a thread that finds the lead taken waits for its future the
  ordinary way (the standby wakes it) and asks the standby to step down after
  that read, so the next ask leads.

An idle actor's own thread leads too: its inbox, when empty, lends the thread
to a ``Pump`` that polls every connection it can lead, so a message to an idle
actor is decoded by the thread that will handle it (one wake-up, not two).

Records are decoded and dispatched by the leader, in order, under the lead, so
per-connection ordering holds whoever reads. Leaders block in ``read`` itself,
not in ``poll``: on a virtual machine a write that wakes a ``poll`` waiter cost
the writer ~19 µs against ~3 µs for a ``read`` waiter. A waiting thread reads
with a receive timeout of ``LEADER_RECHECK``, so a future answered by another
path (a reply handle forwarded to a third process) is seen within that time;
a closing node shuts the socket down, which ends a blocked read at once.
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from runtime.wire._framing import cut_records
from runtime.wire._spin import SpinWait, yield_found_cpu_idle

STANDBY_GRACE = 0.005  # seconds the lead may sit unclaimed before the reader thread retakes it
STANDBY_IDLE_MAX = 0.05  # longest look-away of a reader thread whose lead stays with one leader
LEADER_RECHECK = 0.02  # a waiting thread's longest read before it looks at its future again
_READ_CHUNK = 1 << 16  # below malloc's mmap threshold: a bigger read buffer costs an mmap per read
_TIMEVAL = struct.Struct("@ll")


class Channel:
    """One connection's reading, led by whichever thread waits on it.

    ``deliver(record)`` handles one record of the stream (it runs under the lead);
    ``ended(reason)`` runs once when the connection reaches EOF or breaks.
    """

    def __init__(
        self,
        fd: int,
        deliver: Callable[[memoryview], None],
        ended: Callable[[str], None],
        spin: SpinWait | None = None,
    ) -> None:
        self.fd = fd
        self._spin = spin or SpinWait(0.0)  # how a thread waiting on a reply polls first
        self._deliver = deliver
        self._ended = ended
        self._lead = threading.Lock()  # held by the one thread reading the connection
        self._buffer = bytearray()  # a partial frame; touched only under the lead
        self._socket = socket.socket(fileno=os.dup(fd))  # for options and shutdown only
        self._read_timeout: float | None = None  # the socket's receive timeout now
        self._signal: queue.SimpleQueue[None] = queue.SimpleQueue()  # wakes the standby
        self._waiting = 0  # threads blocked on a future this connection will answer
        self._waiting_lock = threading.Lock()
        self._leads = 0  # bumped whenever a waiting thread takes the lead
        self._step_down = False  # a waiting thread found the lead taken: yield after it
        self.closed = False
        self.owner: Any = None  # what the node knows this connection as (its peer)

    # -- a thread waiting on a future ------------------------------------------------

    def wait(self, done: Callable[[], bool], timeout: float | None) -> bool:
        """Read the connection while ``done()`` is false, if the lead is free.

        Returns False when another thread leads (the caller then waits for its
        future the ordinary way), True when ``done()`` became true or the
        connection ended or the time ran out (the caller looks at its future).
        """
        if not self._lead.acquire(blocking=False):
            self._step_down = True
            return False
        self._leads += 1
        spin = self._spin
        started = time.perf_counter()
        try:
            deadline = None if timeout is None else time.monotonic() + timeout
            if spin.spins():
                self._poll_for(done, spin.budget if timeout is None else min(timeout, spin.budget))
            while not done() and not self.closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                recheck = LEADER_RECHECK if remaining is None else min(remaining, LEADER_RECHECK)
                if not self._read_once(recheck):
                    break
        finally:
            self._lead.release()
            if self._waiting:
                self._signal.put(None)  # somebody still waits on this connection: stand in
            if done():
                spin.waited(time.perf_counter() - started)
        return True

    def try_lead(self) -> bool:
        """Take the lead if it is free (for a ``Pump``); ``leave`` gives it back."""
        if self.closed:
            return False
        if not self._lead.acquire(blocking=False):
            self._step_down = True  # the standby (or a waiting thread) yields after its read
            return False
        self._leads += 1  # the standby sees a new leader and stays away
        return True

    def leave(self) -> None:
        """Give the lead back; the standby stands in at once if threads wait on us."""
        self._step_down = False
        self._lead.release()
        if self._waiting:
            self._signal.put(None)

    def read_ready(self) -> bool:
        """Under the lead, when ``poll`` says the socket is readable: read and deliver.

        False once the connection has ended.
        """
        return self._read_once(self._read_timeout)  # readable: the read returns at once

    def waiting(self) -> _Waiting:
        """Count the calling thread as waiting on this connection while in the block."""
        return _Waiting(self)

    # -- the reader thread ------------------------------------------------------------

    def serve(self) -> None:
        """The reader thread's loop: lead whenever no waiting thread does, until EOF."""
        immediate = True  # a new connection is read at once
        try:
            while self._await_turn(immediate):
                immediate = False
                try:
                    while self._read_once(None):
                        # Step down for a thread that wants to lead, unless others wait too
                        # (their replies may come next: keep reading for them).
                        if self._step_down and self._waiting <= 1:
                            self._step_down = False
                            break
                finally:
                    self._lead.release()
        finally:
            self.shutdown()
            with self._lead:  # no leader reads any more
                self._socket.close()

    def _await_turn(self, immediate: bool) -> bool:
        """Take the lead: at once if threads wait on it, else after a grace unclaimed.

        False when the connection has ended.
        """
        seen = self._leads if immediate else -1
        grace = STANDBY_GRACE
        while not self.closed:
            leads = self._leads
            if (leads == seen or (self._waiting and seen == -2)) and self._lead.acquire(False):
                return True
            # One leader for a whole grace (a pump's idle actor): look less and less often.
            grace = min(grace * 2, STANDBY_IDLE_MAX) if leads == seen else STANDBY_GRACE
            seen = leads
            with contextlib.suppress(queue.Empty):
                self._signal.get(timeout=grace)
                seen = -2  # a leader left with threads waiting, or one found no leader
                grace = STANDBY_GRACE
        return False

    # -- reading, under the lead --------------------------------------------------------

    def _poll_for(self, done: Callable[[], bool], budget: float) -> None:
        """Read without blocking, yielding the CPU in between, until ``done()`` or ``budget``."""
        end = time.perf_counter() + budget
        receive = self._socket.recv
        while not done() and not self.closed:
            try:
                chunk = receive(_READ_CHUNK, socket.MSG_DONTWAIT)
            except BlockingIOError:
                if time.perf_counter() >= end or not yield_found_cpu_idle():
                    return
                continue
            except OSError as exc:
                self.end(f"connection closed: {type(exc).__name__}")
                return
            if not self._take(chunk):
                return

    def _read_once(self, timeout: float | None) -> bool:
        """Read and deliver what arrives within ``timeout``; False once the connection ended."""
        if self.closed:
            return False
        if timeout != self._read_timeout:
            self._set_read_timeout(timeout)
        try:
            chunk = os.read(self.fd, _READ_CHUNK)
        except BlockingIOError:  # the receive timeout: nothing came
            return True
        except (OSError, ValueError) as exc:  # closed under us
            self.end(f"connection closed: {type(exc).__name__}")
            return False
        return self._take(chunk)

    def _take(self, chunk: bytes) -> bool:
        """Deliver the frames ``chunk`` completes; False when it is the end of the stream."""
        if not chunk:
            self.end("connection closed: EOF")
            return False
        buffer = self._buffer
        buffer += chunk
        for record in cut_records(buffer):
            self._deliver(record)
        return True

    def _set_read_timeout(self, timeout: float | None) -> None:
        micros = 0 if timeout is None else max(1, int(timeout * 1e6))  # 0: block for ever
        with contextlib.suppress(OSError):
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                                    _TIMEVAL.pack(micros // 1_000_000, micros % 1_000_000))
            self._read_timeout = timeout

    def end(self, reason: str) -> None:
        """The connection reached EOF or broke under a reader: tell the owner, once."""
        if not self.closed:
            self.shutdown()
            self._ended(reason)

    def shutdown(self) -> None:
        """Stop reading: end a blocked read and wake the standby; the reader thread exits."""
        self.closed = True
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RD)  # a read blocked in it returns EOF now
        self._signal.put(None)


class _Waiting:
    __slots__ = ("_channel",)

    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    def __enter__(self) -> None:
        channel = self._channel
        with channel._waiting_lock:
            channel._waiting += 1
        # Ask for a reader only now, after counting: a leader leaving saw the count, or
        # we see its lead free (either way somebody reads the reply we wait for).
        if not channel._lead.locked():
            channel._signal.put(None)

    def __exit__(self, *exc: Any) -> None:
        channel = self._channel
        with channel._waiting_lock:
            channel._waiting -= 1
