"""The answer to an ask, as bytes: its value, or the exception it raised.

The same error encoding as every transport (``runtime.transport.caller_exception``):
an exception carries the remote traceback as a note; one that does not pickle
(or not back) becomes a ``RemoteError`` with its type name and text; a value
that does not pickle becomes a ``SerializationError``.

A ``Future`` inside an answer (pykka's "return the future of your own ask") is
*exported*: kept here by id, it travels as the host's handle and that id, and
the receiver's own ``Future`` is answered by one Ray call to the host's
``exported``, which returns once the exported future has its answer.

    future = Future(); settle(future, outcome(True, 42)); future.get() == 42
"""

from __future__ import annotations

import io
import itertools
import pickle
import threading
from typing import Any

import cloudpickle
import ray

from runtime.errors import ActorDeadError, RemoteError, SerializationError
from runtime.raybackend.identity import own_reduction
from runtime.transport import Future, caller_exception, reply_not_pickled
from runtime.transport import settle as settle_future

_exports: dict[int, Future[Any]] = {}  # futures answered to an asker, by export id
_export_ids = itertools.count(1)
_exports_lock = threading.Lock()


def dead_error(name: str, exc: BaseException) -> ActorDeadError:
    """Ray's "actor died/unavailable" as our ``ActorDeadError``, with Ray's cause kept."""
    cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ActorDeadError(f"actor {name!r} is gone: {type(exc).__name__}: {cause}")


def settle_call(future: Future[Any], done: Any, name: str) -> None:
    """Answer ``future`` from a finished Ray call whose value is ``outcome`` bytes."""
    error = done.exception()
    if error is None:
        settle(future, done.result())
    elif isinstance(error, ray.exceptions.RayActorError):
        future.set_exception(dead_error(name, error))
    else:  # Ray failed the call itself (it could not deliver or run it)
        future.set_exception(RemoteError(type(error).__name__, str(error), ""))


def take_export(export_id: int) -> Future[Any] | None:
    """The future exported as ``export_id`` (once: a second taker gets None)."""
    with _exports_lock:
        return _exports.pop(export_id, None)


def _imported(host: Any, export_id: int) -> Future[Any]:
    """The receiving side of an exported future: answered by the host's ``exported``.

    The call is made from a thread of its own: this runs while an answer is unpickled,
    which may be on Ray's callback thread, where submitting a call can deadlock.
    """
    future: Future[Any] = Future()

    def call() -> None:
        done = host.exported.remote(export_id).future()
        done.add_done_callback(lambda done: settle_call(future, done, "the future's actor"))

    threading.Thread(target=call, name="da-ray-import", daemon=True).start()
    return future


class _AnswerPickler(cloudpickle.Pickler):  # type: ignore[misc]  # cloudpickle is untyped
    """cloudpickle, with each of our futures exported from this host."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=5)
        self.exported: list[int] = []  # export ids made while pickling (taken back if it fails)

    def reducer_override(self, obj: Any) -> Any:
        own = own_reduction(obj)
        if own is not None:
            return own
        if isinstance(obj, Future):
            host = ray.get_runtime_context().current_actor
            with _exports_lock:
                export_id = next(_export_ids)
                _exports[export_id] = obj
            self.exported.append(export_id)
            return (_imported, (host, export_id))
        return super().reducer_override(obj)


def in_actor() -> bool:
    """Whether this process is a Ray actor's (a host), not a driver's or no Ray's."""
    return ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None


def _dumps(value: Any) -> bytes:
    if not in_actor():
        return bytes(cloudpickle.dumps(value, protocol=5))
    buffer = io.BytesIO()
    pickler = _AnswerPickler(buffer)
    try:
        pickler.dump(value)
    except BaseException:
        with _exports_lock:  # the answer is not sent: nobody will ask for those futures
            for export_id in pickler.exported:
                _exports.pop(export_id, None)
        raise
    return buffer.getvalue()


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
