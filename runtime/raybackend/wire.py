"""What crosses between processes on Ray: messages as cloudpickle bytes.

Records are pickled by us, not by Ray, so that a message that cannot be pickled
fails at its sender with our ``SerializationError`` (naming the culprit), classes
defined in ``__main__`` or in functions travel by value as on the local backend,
and a ``runtime.remote.Future`` inside a message is turned into a reply handle
registered *at send time*, by the pickler that meets it (``reducer_override``).
Ray carries the bytes.

    data = dumps(("add", 1, reply_future))      # reply_future registered for its answer
    message = loads(data)                       # ... holds a RayReply in its place
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import cloudpickle

from runtime import serialization
from runtime.raybackend import replies
from runtime.raybackend.identity import own_reduction
from runtime.transport._future import Future

loads = pickle.loads


class _RecordPickler(cloudpickle.Pickler):  # type: ignore[misc]  # cloudpickle is untyped
    """cloudpickle, with each of our futures replaced by a reply handle for it."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=5)
        self.registered: list[int] = []  # reply ids of the futures met

    def reducer_override(self, obj: Any) -> Any:
        own = own_reduction(obj)
        if own is not None:
            return own
        if isinstance(obj, Future):
            return replies.handle_for(obj, self.registered)
        return super().reducer_override(obj)


def dumps(obj: Any, what: str = "message") -> bytes:
    """Pickle ``obj`` for another process; ``SerializationError`` names what cannot travel.

    The futures inside are registered for their answers; the caller sends the bytes.
    """
    buffer = io.BytesIO()
    pickler = _RecordPickler(buffer)
    try:
        pickler.dump(obj)
    except Exception as exc:
        replies.BOOK.forget(pickler.registered)
        raise serialization.unpicklable_error(obj, what, exc) from None
    replies.sent(pickler.registered)
    return buffer.getvalue()
