"""The answer to an ask, as bytes: its value, or the exception it raised.

The same error encoding as every transport (``runtime.transport.caller_exception``):
an exception carries the remote traceback as a note; one that does not pickle
(or not back) becomes a ``RemoteError`` with its type name and text; a value
that does not pickle becomes a ``SerializationError``.

    future = Future(); settle(future, outcome(True, 42)); future.get() == 42
"""

from __future__ import annotations

import pickle
from typing import Any

import cloudpickle

from runtime.errors import SerializationError
from runtime.transport import Future, caller_exception, reply_not_pickled
from runtime.transport import settle as settle_future


def _dumps(value: Any) -> bytes:
    return bytes(cloudpickle.dumps(value, protocol=5))


def outcome(ok: bool, value: Any) -> bytes:
    """``(ok, value)`` pickled for the asker (see the module docstring for what cannot travel)."""
    if ok:
        try:
            return _dumps((True, value))
        except Exception as exc:
            return outcome(False, reply_not_pickled(exc))
    return _dumps((False, caller_exception(value, _dumps, pickle.loads)))


def settle(future: Future[Any], data: bytes) -> None:
    """Answer ``future`` with an ``outcome``; a future answered already keeps its first answer."""
    try:
        ok, value = pickle.loads(data)
    except Exception as exc:  # a class this process cannot import, say
        ok, value = False, SerializationError(f"the reply could not be unpickled here: {exc!r}")
    settle_future(future, ok, value)
