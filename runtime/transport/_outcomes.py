"""One error encoding for answers, whichever transport carries them.

An exception an actor raised reaches its asker with its own type and the remote
traceback as a note (and as ``remote_traceback``); one that does not pickle, or
does not unpickle again, reaches it as a ``RemoteError`` with its type's name,
its text and that traceback. A value that does not pickle reaches the asker as
a ``SerializationError`` (``reply_not_pickled``).

    data = pickle_answer(False, caller_exception(exc, dumps, loads))
"""

from __future__ import annotations

import queue
import traceback
from collections.abc import Callable
from typing import Any

from runtime.errors import RemoteError, SerializationError
from runtime.transport._future import Future


def remote_traceback_of(exc: BaseException) -> str:
    """``exc``'s traceback as text, for the caller in another process."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def caller_exception(
    exc: BaseException,
    dumps: Callable[[Any], bytes],
    loads: Callable[[bytes], Any],
) -> BaseException:
    """``exc`` as the asker should get it: noted with its remote traceback, or a ``RemoteError``.

    ``dumps``/``loads`` are the transport's pickling: the exception must survive both.
    """
    text = remote_traceback_of(exc)
    try:
        exc.remote_traceback = text  # type: ignore[attr-defined]
        exc.add_note("Remote traceback (from the actor's process):\n" + text)
        loads(dumps(exc))  # some exceptions pickle but cannot be rebuilt
        return exc
    except Exception:
        qualname = f"{type(exc).__module__}.{type(exc).__qualname__}"
        return RemoteError(qualname, str(exc), text)


def reply_not_pickled(exc: BaseException) -> SerializationError:
    """What the asker gets for an answer that could not be pickled."""
    return SerializationError(
        f"the reply could not be pickled: {exc}; return plain data from the actor")


def settle(future: Future[Any], ok: bool, value: Any) -> None:
    """Answer ``future``, unless it was answered already (its sender failed it first)."""
    try:
        if ok:
            future.set(value)
        else:
            future.set_exception((type(value), value, value.__traceback__))
    except queue.Full:
        pass  # the first answer stands, as pykka's set-once futures have it
