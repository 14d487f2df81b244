"""Reply handles: where an actor sends an answer later, and how a loop awaits one.

A message that wants an answer carries a ``ReplyTo``: a ``pykka.ThreadingFuture``
inside one process, a picklable handle (an id and an address) across processes,
or a handle with behaviour (``actors.protocol``'s continuations). Whoever
answers calls ``set`` or ``set_exception`` once; a handle with a ``reply_group``
can be answered together with others of the same recipient.

A reply is set by another thread: an actor's, or the transport's reader. A
pykka future's own ``__await__`` blocks the loop in ``get()`` until then, so an
async branch waits instead on a *continuation*: the future calls back on
whatever thread sets it, and the callback wakes the loop once
(``call_soon_threadsafe``). A future qualifies when it has
``add_done_callback(fn)``: ``runtime.Future`` does, and so does
``AwaitableReply``, the worker's default for in-process pykka use.

    reply = AwaitableReply()
    checkpoint_ref.tell(Checkpoint(branch_id, update, reply_to=reply))
    await awaited(reply)       # the loop runs other branches meanwhile
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any, Protocol, TypeAlias, TypeVar

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


ExcInfo: TypeAlias = tuple[type[BaseException], BaseException, TracebackType | None]


def exception_of(exc_info: Any = None) -> BaseException:
    """The exception a ``set_exception(exc_info)`` call means (None: the one being handled).

    ``exc_info`` is an ``exc_info`` triple, an exception, or None, as pykka's futures take it.
    """
    if exc_info is None:
        exc_info = sys.exc_info()
    exc: BaseException = exc_info[1] if isinstance(exc_info, tuple) else exc_info
    return exc


class ReplyTo(Protocol):
    """Where an actor sends a deferred answer.

    ``pykka.ThreadingFuture`` satisfies it inside one process; the runtime hands in
    a picklable handle (an id and an address) whose ``set`` travels back across
    processes.
    """

    def set(self, value: Any = None) -> None: ...

    def set_exception(self, exc_info: Any = None) -> None: ...


def reply_group(reply_to: Any) -> tuple[type, Any] | None:
    """The group a reply handle's answers can travel in, or None to answer it alone.

    A handle class that has ``reply_group`` (a hashable naming its recipient) and
    ``set_group(answers)`` lets whoever answers many handles at once (the
    checkpoint actor after a commit) send one message per recipient instead of
    one per handle: a resume wave of 1,000 branches on two workers is 16
    ``Bundle``s of up to ``BatchingPolicy.bundle_limit``, not 1,000 ``RunBranch`` messages.
    """
    group = getattr(reply_to, "reply_group", None)
    return None if group is None else (type(reply_to), group)


class ActorLike(Protocol):
    """What a reply handle needs of a ref: pykka's ``ActorRef`` and the runtime's both fit."""

    def tell(self, message: Any) -> None: ...
