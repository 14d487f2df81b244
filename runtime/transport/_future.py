"""Futures that cross processes as reply handles.

A ``Future`` is a pykka ``Future``: ``get(timeout)``, ``map``, ``join``,
``filter``, ``reduce`` and ``get_all`` work as in pykka. It builds no
waiter lock until somebody blocks on it, so the many futures that are
answered before anyone asks (fire-and-check, ``get_all`` of replies already in)
cost a few attribute writes.

How a blocked ``get`` waits is the transport's: a future that a transport will
answer may carry a ``ReplyWait`` (the socket transport's is the connection the
reply comes by, which the waiting thread reads itself while no other thread
does, so its reply wakes no second thread); without one it blocks on a lock
until ``set``. Another library's completion can settle it from any thread
(``set``/``set_exception``). Pickled by a transport's pickler, a future becomes
that transport's *reply handle*, registered at that moment; pickled by anything
else it raises ``SerializationError``.

A coroutine awaits a future without blocking its loop (``await fut``): the
future calls back on the thread that sets it, which wakes the loop once; while
someone awaits it, the future counts as a waiter on its connection, so that
connection's reader reads the reply at once.

A future that travels inside a *reply* instead becomes the receiver's copy of it:
its value follows it when it arrives (``runtime.remote``).

As pykka's futures since 4.3, a future takes exactly one of ``set``,
``set_exception`` or ``set_get_hook``: a second raises ``queue.Full``.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

import pykka

from actors.replies import awaited, exception_of
from runtime.admission import check_timeout
from runtime.errors import SerializationError, Timeout

T = TypeVar("T")


class ReplyWait(Protocol):
    """A transport's way for a thread to wait on a reply it will deliver (a waiting strategy).

        led = wait.wait(future.done, timeout)   # False: another thread reads; block instead
        with wait.waiting():                    # counted as waiting while blocked
            ...
    """

    def wait(self, done: Callable[[], bool], timeout: float | None) -> bool:
        """Read until ``done()`` or ``timeout``; False if another thread reads for us."""
        ...

    def waiting(self) -> AbstractContextManager[None]:
        """Count the calling thread as waiting while in the block."""
        ...


_UNSET: Any = object()
_FOREVER = float("inf")  # a timeout of inf waits like None
_waiter_lock = threading.Lock()


class Future(pykka.Future[T]):
    """A value that arrives later, possibly from another process.

        fut = ref.ask("count", block=False)
        print(fut.map(lambda n: n + 1).get(timeout=5))
    """

    __slots__ = ("_exc", "_listeners", "_reply_id", "_value", "_wait", "_waiter")

    def __init__(self) -> None:
        super().__init__()
        self._value: Any = _UNSET
        self._exc: BaseException | None = None
        self._waiter: threading.Lock | None = None  # held until the value arrives
        self._reply_id: int | None = None  # set when registered with the transport
        self._wait: ReplyWait | None = None  # how a getter waits; the transport's, if any
        self._listeners: list[Callable[[Future[T]], None]] | None = None  # add_done_callback's

    def __repr__(self) -> str:
        state = "pending" if not self.done() else ("failed" if self._exc else "done")
        return f"<runtime.Future {state}>"

    def done(self) -> bool:
        return self._value is not _UNSET or self._exc is not None

    def get(self, *, timeout: float | None = None) -> T:
        if timeout is not None and not 0 <= timeout < _FOREVER:  # NaN fails both
            timeout = check_timeout(timeout, "Future.get()")
        if self._get_hook is not None:
            return super().get(timeout=timeout)
        if not self.done():
            strategy = self._wait
            if strategy is None:
                self._block(timeout)
            else:
                deadline = None if timeout is None else time.monotonic() + timeout
                led = strategy.wait(self.done, timeout)
                if not self.done():
                    remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                    if led:  # timed out, or the connection ended without failing us
                        self._block(remaining, timeout)
                    else:  # another thread reads the connection: it wakes us
                        with strategy.waiting():
                            self._block(remaining, timeout)
        if self._exc is not None:
            raise self._exc
        value: T = self._value
        return value

    def _block(self, timeout: float | None, asked: float | None = None) -> None:
        """Wait until the value arrives; ``Timeout`` after ``timeout`` seconds."""
        # Publish the waiter before re-checking, so a concurrent set() sees one of the two.
        with _waiter_lock:
            if self._waiter is None:
                waiter = threading.Lock()
                waiter.acquire()
                self._waiter = waiter
        waiter = self._waiter
        if not self.done():
            if not waiter.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
                raise Timeout(f"no reply within {timeout if asked is None else asked} seconds")
            waiter.release()  # let any other getter through too

    def _wake(self) -> None:
        with _waiter_lock:
            waiter = self._waiter
            if waiter is not None and waiter.locked():
                waiter.release()

    def set(self, value: Any = None) -> None:
        """Set the value; ``queue.Full`` if the future already has one (or a get hook)."""
        if self._value is not _UNSET or self._exc is not None or self._get_hook is not None:
            raise queue.Full(f"{self!r} can be set only once")
        self._value = value
        if self._waiter is not None:
            self._wake()
        if self._listeners is not None:
            self._notify()

    def set_exception(self, exc_info: Any = None) -> None:
        """Set the exception ``get`` raises (an ``exc_info`` triple, an exception, or
        None for the one being handled); ``queue.Full`` if the future is already set."""
        exc = exception_of(exc_info)
        if self._value is not _UNSET or self._exc is not None or self._get_hook is not None:
            raise queue.Full(f"{self!r} can be set only once")
        self._exc = exc
        if self._waiter is not None:
            self._wake()
        if self._listeners is not None:
            self._notify()

    def wait_through(self, strategy: ReplyWait) -> None:
        """Let a blocked ``get`` wait through ``strategy`` (a transport's ``ReplyWait``).

        The transport that will answer this future calls it once, as it registers the
        future; ``set``, ``done``, callbacks, ``await`` and ``get_all`` are unchanged.

            future.wait_through(connection)   # a getter reads the reply itself
        """
        if self._wait is None:
            self._wait = strategy

    def set_get_hook(self, func: Callable[[float | None], T]) -> None:
        """Let ``get(timeout)`` return ``func(timeout)``, called once; ``queue.Full`` if set."""
        if self.done():
            raise queue.Full(f"{self!r} already has a value; it cannot take a get hook")
        super().set_get_hook(func)

    def _when_done(self, callback: Callable[[Future[T]], None]) -> None:
        """Run ``callback(self)`` once the value or exception is set (now, if it is).

        It runs on the thread that sets the future, or on this one if that already happened.
        """
        with _waiter_lock:
            pending = not self.done()
            if pending:
                if self._listeners is None:
                    self._listeners = []
                self._listeners.append(callback)
        if not pending:
            callback(self)
        elif self.done():  # set meanwhile, maybe before the setter could see our callback
            self._notify()

    # -- awaiting on an event loop ---------------------------------------------------------

    def add_done_callback(self, fn: Callable[[Future[T]], None]) -> None:
        """Run ``fn(self)`` once the value is here, on the thread that sets it (now, if done).

        Until then the future counts as a waiter on the connection its reply comes by,
        so that connection is read at once rather than after its reader's grace.

            fut.add_done_callback(lambda f: loop.call_soon_threadsafe(wake))
        """
        if self._get_hook is not None:
            raise TypeError("a future made by map/join/filter/reduce has no callbacks; await it")
        strategy, listeners = self._wait, [fn]
        if strategy is not None and not self.done():
            waiting = strategy.waiting()
            waiting.__enter__()  # left once the reply is here (the listener put first)
            listeners.insert(0, lambda _f: _leave(waiting))
        with _waiter_lock:
            if self._listeners is None:
                self._listeners = []
            self._listeners.extend(listeners)
        if self.done():
            self._notify()  # set() may have looked before these were in: each runs once

    def _notify(self) -> None:
        with _waiter_lock:
            listeners, self._listeners = self._listeners, []
        for fn in listeners or ():
            fn(self)

    def __await__(self) -> Generator[Any, None, T]:
        """``await fut``: the value (or the exception raised), without blocking the loop."""
        if self._get_hook is not None:
            # map/join/filter/reduce compute the value by blocking on others: do it off the loop.
            value: T = yield from asyncio.to_thread(self.get).__await__()
            return value
        if not self.done():
            yield from awaited(self).__await__()
        return self.get(timeout=0)

    def __reduce__(self) -> tuple[Any, ...]:
        raise SerializationError(
            "a Future can only be sent inside a message or reply of a running actor system "
            "(its transport turns it into a reply handle); send its value instead")


def _leave(waiting: AbstractContextManager[None]) -> None:
    waiting.__exit__(None, None, None)


def get_all(futures: Iterable[pykka.Future[Any]], *, timeout: float | None = None) -> list[Any]:
    """Collect the values of ``futures``; ``timeout`` bounds the whole wait.

        values = get_all([ref.ask(i, block=False) for i in range(10)], timeout=5)
    """
    timeout = check_timeout(timeout, "get_all()")
    deadline = None if timeout is None else time.monotonic() + timeout
    values = []
    for fut in futures:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        values.append(fut.get(timeout=remaining))
    return values
