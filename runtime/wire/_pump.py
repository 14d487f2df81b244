"""An idle actor's thread reads the process's connections itself (``Pump``).

A message that a reader thread decodes must then wake the actor's thread: a
second wake-up per message. So an idle actor's inbox, when empty, lends its
thread to the ``Pump``, which leads every connection it can (``Channel``) and
polls them, so a message to an idle actor is decoded by the thread that will
handle it (one wake-up, not two).
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections.abc import Callable

from runtime.wire._channel import Channel
from runtime.wire._spin import SpinWait, poll_spinning


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
                events = poll_spinning(poller, poll_until, deadline)
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
