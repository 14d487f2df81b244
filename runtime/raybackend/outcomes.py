"""The answer to an ask, as bytes: its value, or the exception it raised.

As on the local backend, an exception carries the remote traceback as a note;
one that does not pickle (or not back) becomes a ``RemoteError`` with its type
name and text; a value that does not pickle becomes a ``SerializationError``.

    future = Future(); settle(future, outcome(True, 42)); future.get() == 42
"""

from __future__ import annotations

import pickle
import queue
import traceback
from typing import Any

import cloudpickle

from runtime.errors import RemoteError, SerializationError
from runtime.transport._future import Future


def outcome(ok: bool, value: Any) -> bytes:
    """``(ok, value)`` pickled for the asker (see the module docstring for what cannot travel)."""
    if ok:
        try:
            return bytes(cloudpickle.dumps((True, value), protocol=5))
        except Exception as exc:
            return outcome(False, SerializationError(
                f"the reply could not be pickled: {exc}; return plain data from the actor"))
    text = "".join(traceback.format_exception(type(value), value, value.__traceback__))
    try:
        value.add_note("Remote traceback (from the actor's process):\n" + text)
        data = bytes(cloudpickle.dumps((False, value), protocol=5))
        pickle.loads(data)  # some exceptions pickle but cannot be rebuilt
        return data
    except Exception:
        qualname = f"{type(value).__module__}.{type(value).__qualname__}"
        return bytes(cloudpickle.dumps((False, RemoteError(qualname, str(value), text))))


def settle(future: Future[Any], data: bytes) -> None:
    """Answer ``future`` with an ``outcome``; a future answered already keeps its first answer."""
    try:
        ok, value = pickle.loads(data)
    except Exception as exc:  # a class this process cannot import, say
        ok, value = False, SerializationError(f"the reply could not be unpickled here: {exc!r}")
    try:
        if ok:
            future.set(value)
        else:
            future.set_exception(value)
    except queue.Full:
        pass  # answered already (its sender failed it first), as pykka's set-once futures have it
