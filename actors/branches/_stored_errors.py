"""How a failure is kept in a log, and loaded back as an exception."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors.errors import StepFailedError
from actors.tracebacks import bounded, keep_traceback, traceback_text

MAX_MESSAGE_CHARS = 4_000  # of a logged failure's text; the exception itself is kept whole


@dataclass(frozen=True, slots=True)
class StoredError:
    """How a failure is kept in a log: plain text that always loads, and the exception.

    ``exception`` is ``None`` when it could not be serialized; loading it can
    fail too (its class is gone), and then the text still says what happened.
    ``message`` and ``traceback`` are bounded (``MAX_MESSAGE_CHARS``,
    ``actors.tracebacks.MAX_TRACEBACK_CHARS``): their start and end are kept.
    """

    type_name: str
    message: str
    traceback: str
    exception: bytes | None


def encode_error(exc: BaseException, serialize: Callable[[object], bytes]) -> bytes:
    """Serialize ``exc`` for an ``error`` field of the log; never fails for an odd exception.

        data = encode_error(KeyError("x"), host.serialize)
        decode_error(data, host.deserialize)   # KeyError('x')
    """
    cls = type(exc)
    try:
        inner: bytes | None = serialize(exc)
    except Exception:
        inner = None  # an exception holding a socket or a lock; its text is kept below
    text = traceback_text(exc)  # bounded: a deep recursion must not fill every log row
    return serialize(StoredError(f"{cls.__module__}.{cls.__qualname__}",
                                 bounded(str(exc), MAX_MESSAGE_CHARS), text, inner))


def decode_error(data: bytes, deserialize: Callable[[bytes], Any]) -> BaseException:
    """The exception ``encode_error`` stored, or a ``StepFailedError`` that names it.

    The original traceback is attached as ``remote_traceback`` and as a note,
    since pickling drops it.
    """
    stored = deserialize(data)
    if isinstance(stored, BaseException):
        return stored  # written by a host that stores bare exceptions
    if not isinstance(stored, StoredError):
        return StepFailedError(f"a failure was logged as {stored!r}", type(stored).__name__)
    if stored.exception is not None:
        try:
            exc = deserialize(stored.exception)
        except Exception as err:
            reason = f"its class could not be loaded ({err!r})"
        else:
            if isinstance(exc, BaseException):
                return keep_traceback(exc, stored.traceback, "the logged failure")
            reason = f"it loaded as {type(exc).__name__}"
    else:
        reason = "it could not be serialized"
    return StepFailedError(
        f"{stored.type_name}: {stored.message} (re-raised as StepFailedError: {reason}; "
        "its traceback is in .remote_traceback)",
        stored.type_name,
        stored.traceback,
    )
