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

Before it sleeps, a thread that expects a message soon polls for a moment
(``SpinWait``): on a virtual machine the wake-up of a halted virtual CPU costs
more than the process hop itself (a raw socket round trip between two
processes: ~55-80 µs when both ends block in ``read``, ~8 µs when both poll
first). The asking thread polls its connection and an idle actor's pump polls
its connections, each for at most ``SystemConfig.spin_wait``, and only while
polling keeps paying off: a site whose recent waits outlasted the budget (a
reply that needs a disk commit, an actor that hears from nobody) sleeps at
once and costs no CPU. A poll yields the CPU between tries and stops at the
first yield that comes back late: then others want this CPU (or a thread of
ours the GIL), and polling would take time they need.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

STANDBY_GRACE = 0.005  # seconds the lead may sit unclaimed before the reader thread retakes it
STANDBY_IDLE_MAX = 0.05  # longest look-away of a reader thread whose lead stays with one leader
LEADER_RECHECK = 0.02  # a waiting thread's longest read before it looks at its future again
_READ_CHUNK = 1 << 16  # below malloc's mmap threshold: a bigger read buffer costs an mmap per read
_SIZE, _BIG_SIZE = struct.Struct("!i"), struct.Struct("!Q")
_TIMEVAL = struct.Struct("@ll")
_SPIN_DECAY = 0.75  # weight of the past in a SpinWait's score; 1 - it is one wait's weight
_SPIN_KEEP = 0.3  # the score below which a site stops polling before it sleeps
_CONTENDED_YIELD = 20e-6  # a sched_yield that took longer ran somebody else: stop polling


class SpinWait:
    """When one waiting site polls before it sleeps: while polling has paid off recently.

    ``budget`` is the longest poll in seconds (0: never). Every wait is recorded,
    polled or not: one that ended within twice the budget counts as a hit (a
    blocked wait also pays for its wake-up), so a site that stopped polling
    starts again once its messages come quickly again.

        spin = SpinWait(50e-6)
        if spin.spins():
            ...  # poll for at most spin.budget seconds
        spin.waited(seconds)
    """

    __slots__ = ("_score", "budget")

    def __init__(self, budget: float) -> None:
        if budget < 0:
            raise ValueError(f"a spin budget must be >= 0 seconds, got {budget}")
        self.budget = budget
        self._score = 1.0  # a new site polls until its waits say otherwise

    def spins(self) -> bool:
        return self.budget > 0 and self._score >= _SPIN_KEEP

    def waited(self, seconds: float) -> None:
        """Record one wait's length (threads race here; a lost update only nudges the score)."""
        hit = 1.0 - _SPIN_DECAY if seconds <= 2 * self.budget else 0.0
        self._score = self._score * _SPIN_DECAY + hit


def cut_frames(buffer: bytearray) -> Iterator[bytes]:
    """The complete frames of ``multiprocess``'s wire format at the head of ``buffer``.

    Consumes what it yields; a partial frame stays in ``buffer`` for the next read.
    """
    position, available = 0, len(buffer)
    try:
        while available - position >= _SIZE.size:
            (size,) = _SIZE.unpack_from(buffer, position)
            header = _SIZE.size
            if size == -1:  # a payload over 2 GiB: an 8-byte size follows
                if available - position < header + _BIG_SIZE.size:
                    break
                (size,) = _BIG_SIZE.unpack_from(buffer, position + header)
                header += _BIG_SIZE.size
            if available - position < header + size:
                break
            frame = bytes(buffer[position + header:position + header + size])
            position += header + size
            yield frame
    finally:
        if position:
            del buffer[:position]


class Channel:
    """One connection's reading, led by whichever thread waits on it.

    ``deliver(frame)`` handles one frame of the wire (it runs under the lead);
    ``ended(reason)`` runs once when the connection reaches EOF or breaks.
    """

    def __init__(
        self,
        fd: int,
        deliver: Callable[[bytes], None],
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
                if time.perf_counter() >= end or not _yield_found_cpu_idle():
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
        for frame in cut_frames(buffer):
            self._deliver(frame)
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


class Pump:
    """Lets an actor's own thread read the process's connections while its inbox is empty.

    A message that a reader thread decodes must then wake the actor's thread: a
    second wake-up per message, which on a small virtual machine costs more than
    the process hop itself (an echo server measured here: ~35 µs round trip when
    its one thread reads the socket, ~145 µs when a reader thread hands each
    message to a worker thread). So an idle actor's thread, instead of blocking
    on its inbox, takes the lead of every connection it can and ``poll``s them,
    with an eventfd that other threads' puts into its inbox write to wake it.

    * Only one thread of a process pumps at a time; another idle actor blocks on
      its inbox the ordinary way (the pumping thread delivers into it).
    * A connection on which a thread of this process awaits a reply is left to
      that thread (``skip``); a thread that starts waiting while the pump leads
      asks it to step down, and the pump leaves that connection after its next read.
    * The pump gives every lead back before the actor handles what arrived, so a
      long handler never holds a connection: the standby reader thread retakes it
      after ``STANDBY_GRACE``, or up to ``STANDBY_IDLE_MAX`` after a long idle
      spell (it looks in less often while one leader keeps the connection).
    """

    def __init__(
        self,
        channels: Callable[[], list[Channel]],
        skip: Callable[[Channel], bool],
        spin: SpinWait | None = None,
    ) -> None:
        self._channels = channels
        self._spin = spin or SpinWait(0.0)  # how an idle actor polls before it sleeps
        self._skip = skip
        self._lock = threading.Lock()  # held by the one pumping thread
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.serving: object = None  # the inbox whose puts must wake the pump now
        self._closed = False

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            os.eventfd_write(self._wake_fd, 1)

    def put_into(self, owner: object) -> None:
        """Called after a put into the inbox ``owner``: wake the pump if it serves that inbox."""
        if self.serving is owner:
            self.wake()

    def close(self) -> None:
        """Stop pumping; the eventfd closes once no thread pumps."""
        self._closed = True
        if self._lock.acquire(blocking=False):
            self._close_fd()
            self._lock.release()
        else:
            self.wake()  # the pumping thread sees ``_closed`` and closes it

    def _close_fd(self) -> None:
        if self._wake_fd >= 0:
            os.close(self._wake_fd)
            self._wake_fd = -1

    def wait(self, owner: object, ready: Callable[[], bool], timeout: float | None) -> float | None:
        """Read connections until ``ready()`` or ``timeout``; the time left to block.

        Returns ``timeout`` unchanged when this thread cannot pump (another one
        does, or no connection is free): the caller then blocks on its inbox the
        ordinary way. ``owner`` is the inbox whose ``put`` calls ``put_into``.
        """
        if self._closed or not self._lock.acquire(blocking=False):
            return timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        led: dict[int, Channel] = {}
        poller = select.poll()
        try:
            for channel in self._channels():
                if not self._skip(channel) and channel.try_lead():
                    led[channel.fd] = channel
                    poller.register(channel.fd, select.POLLIN)
            if not led or self._wake_fd < 0:
                return timeout
            poller.register(self._wake_fd, select.POLLIN)
            # One wait, for the score: from going idle until a message for ``owner`` (or the
            # deadline); frames for others in between do not make it a short one.
            spin, idle = self._spin, time.perf_counter()
            poll_until = idle + spin.budget if spin.spins() else idle
            while led and not self._closed:
                self.serving = owner  # from now on a put into ``owner`` wakes us...
                if ready():  # ...so one that came before is seen here
                    spin.waited(time.perf_counter() - idle)
                    break
                events = _poll_spinning(poller, poll_until, deadline)
                if events:
                    pass
                elif deadline is None:
                    events = poller.poll()
                else:
                    # poll counts whole milliseconds: round, so a batch window ends within
                    # half a millisecond of its deadline, early or late.
                    remaining = round((deadline - time.monotonic()) * 1000)
                    if remaining <= 0:
                        spin.waited(time.perf_counter() - idle)
                        break
                    events = poller.poll(remaining)
                self.serving = None
                for fd, _ in events:
                    if fd == self._wake_fd:
                        with contextlib.suppress(BlockingIOError):
                            os.eventfd_read(fd)
                        continue
                    reading = led.get(fd)
                    if reading is None:
                        continue
                    if not reading.read_ready() or reading._step_down:
                        # Ended, or a thread of ours waits on it and wants to read it.
                        poller.unregister(fd)
                        del led[fd]
                        reading.leave()
        finally:
            self.serving = None
            for channel in led.values():
                channel.leave()
            if self._closed:
                self._close_fd()
            self._lock.release()
        return None if deadline is None else max(0.0, deadline - time.monotonic())


def _poll_spinning(
    poller: select.poll, until: float, deadline: float | None
) -> list[tuple[int, int]]:
    """``poller.poll(0)`` until something is ready, ``perf_counter()`` reaches ``until``, or the
    monotonic ``deadline`` passes; nothing at all once ``until`` is past."""
    if deadline is not None:
        until = min(until, time.perf_counter() + deadline - time.monotonic())
    while time.perf_counter() < until:
        events = poller.poll(0)
        if events or not _yield_found_cpu_idle():
            return events
    return []


def _yield_found_cpu_idle() -> bool:
    """Yield the CPU once; False if it came back late: another task ran on this CPU, or a
    thread of ours that had asked for the GIL took it. Polling would take time others need."""
    started = time.perf_counter()
    os.sched_yield()
    return time.perf_counter() - started < _CONTENDED_YIELD
