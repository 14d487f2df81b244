"""Awaiting a reply future on an event loop without blocking it.

A reply (a checkpoint's acknowledgement, the scheduler's verdict on a
suspension) is set by another thread: an actor's, or the transport's reader. A
pykka future's own ``__await__`` blocks the loop in ``get()`` until then, so an
async branch waits instead on a *continuation*: the future calls back on
whatever thread sets it, and the callback wakes the loop once
(``call_soon_threadsafe``). A future qualifies when it has
``add_done_callback(fn)``: ``runtime.Future`` does, and so does
``AwaitableReply``, the worker's default for in-process pykka use.

    reply = AwaitableReply()
    checkpoint_ref.tell(Checkpoint(branch_id, update, True, reply))
    await awaited(reply)       # the loop runs other branches meanwhile
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Generator
from typing import Any, Protocol, TypeVar

import pykka

T = TypeVar("T")


class Notifying(Protocol):
    """A future that runs ``fn(future)`` once it is done (at once if it already is)."""

    def add_done_callback(self, fn: Callable[[Any], None]) -> None: ...

    def get(self, *, timeout: float | None = None) -> Any: ...


async def awaited(future: Notifying) -> Any:
    """``future``'s value (or its exception raised), awaited on the running loop.

        verdict = await awaited(reply)
    """
    subscribe = getattr(future, "add_done_callback", None)
    if subscribe is None:
        raise TypeError(
            f"a {type(future).__name__} cannot be awaited without blocking the loop: give "
            "the worker a future_factory whose futures have add_done_callback "
            "(actors.replies.AwaitableReply or runtime.Future)"
        )
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()

    def wake(_done: Any) -> None:
        # A loop that closed meanwhile (its worker stopping) has nobody left to wake.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, woken)

    subscribe(wake)
    await woken
    return future.get(timeout=0)


def _settle(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)


class AwaitableReply(pykka.ThreadingFuture[T]):
    """A pykka ``ThreadingFuture`` that an event loop can await without blocking.

        reply = AwaitableReply()
        reply.add_done_callback(lambda f: print("answered"))
        reply.set(42)             # prints; then `await reply` returns 42 at once
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[Any], None]] | None = []  # None once done

    def set(self, value: Any = None) -> None:
        super().set(value)
        self._done()

    def set_exception(self, exc_info: Any = None) -> None:
        super().set_exception(exc_info)
        self._done()

    def add_done_callback(self, fn: Callable[[Any], None]) -> None:
        """Run ``fn(self)`` once the value is set, on the setting thread; at once if it is."""
        with self._lock:
            if self._callbacks is not None:
                self._callbacks.append(fn)
                return
        fn(self)

    def _done(self) -> None:
        with self._lock:
            callbacks, self._callbacks = self._callbacks or [], None
        for fn in callbacks:
            fn(self)

    def __await__(self) -> Generator[Any, None, T]:
        value: T = yield from awaited(self).__await__()
        return value


__all__ = ["AwaitableReply", "Notifying", "awaited"]
