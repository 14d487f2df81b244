"""Pickling at the process boundary, with errors that name the offending object.

cloudpickle semantics (not ``multiprocess``'s dill-based ``send``, ~3x slower):
classes and closures defined in ``__main__`` or in functions travel by value.
The C pickler does the rest, so a framework message costs a few microseconds.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import types
from typing import Any

import cloudpickle
import pykka

from runtime.errors import DurableActorsError, SerializationError

loads = pickle.loads

try:  # cloudpickle's own test of what an importable name can stand for
    from cloudpickle.cloudpickle import _should_pickle_by_reference as _by_reference
except ImportError:  # pragma: no cover - an older cloudpickle: a conservative test of our own
    def _by_reference(obj: Any, name: str | None = None) -> bool:
        qualname = getattr(obj, "__qualname__", "")
        return getattr(obj, "__module__", "__main__") != "__main__" and "<" not in qualname


_CODE = (type, types.FunctionType)  # what may travel by value; a tuple: cheaper than a union
# ... and pykka's own refs and futures, which become the system's when they cross
# (``runtime.exports``), unless they are the system's already (they pickle themselves).
_SPECIAL = (type, types.FunctionType, pykka.ActorRef, pykka.Future)
_pickles_itself: tuple[type, ...] = ()


def pickles_itself(cls: type) -> type:
    """Mark a subclass of a pykka type that crosses by its own ``__reduce__``."""
    global _pickles_itself
    _pickles_itself = (*_pickles_itself, cls)
    return cls


class _Pickler(pickle.Pickler):
    """The C pickler, handing cloudpickle only what must travel by value.

    Classes and functions that cloudpickle would pickle by value (defined in
    ``__main__``, in a function, lambdas) go through cloudpickle; everything else,
    most of all the framework's own messages, stays in C: about 3x cheaper per
    message than cloudpickle for the same bytes on the receiving side.
    """

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, _SPECIAL):
            if not isinstance(obj, _CODE):
                if isinstance(obj, _pickles_itself):
                    return NotImplemented
                from runtime.exports import crossing

                return crossing(obj)
            if obj not in _known_by_reference:
                if not _by_reference(obj):
                    return cloudpickle.loads, (cloudpickle.dumps(obj, protocol=5),)
                if len(_known_by_reference) < _KNOWN_LIMIT:
                    _known_by_reference.add(obj)
        return NotImplemented


# Classes and functions already found to pickle by reference. cloudpickle's test looks
# the name up in its module each time (~9 µs); a framework message names about four
# classes, so without this the test cost more than the rest of the pickling. Only
# by-reference answers are kept: those name importable, module-level objects that
# live as long as their module; closures and lambdas are asked again each time.
_known_by_reference: set[Any] = set()
_KNOWN_LIMIT = 16_384  # a bound, should a program mint importable classes in a loop


def dumps(obj: Any) -> bytes:
    """Pickle ``obj`` (protocol 5); raises what pickling raises (callers wrap it)."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=5).dump(obj)
    return buffer.getvalue()


class _Nowhere:
    """A file that keeps nothing: pickling into it checks an object without holding its bytes."""

    def write(self, data: Any) -> int:
        return len(data)


def check_picklable(obj: Any) -> None:
    """Raise what ``dumps(obj)`` would raise, holding one pickle frame at most in memory."""
    _Pickler(_Nowhere(), protocol=5).dump(obj)


def _children(obj: Any) -> list[tuple[str, Any]]:
    if isinstance(obj, dict):
        return [(f"[{k!r}]", v) for k, v in obj.items()]
    if isinstance(obj, list | tuple | set | frozenset):
        return [(f"[{i}]", v) for i, v in enumerate(obj)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [(f".{f.name}", getattr(obj, f.name)) for f in dataclasses.fields(obj)]
    if isinstance(obj, type):  # a class that travels by value: its methods and attributes
        return [(f".{k}", v) for k, v in vars(obj).items()
                if not (k.startswith("__") and k.endswith("__"))]
    if isinstance(obj, types.FunctionType):  # travels by value: its closure and the globals it uses
        cells = zip(obj.__code__.co_freevars, obj.__closure__ or (), strict=False)
        found = [(f"<captures {n}>", c.cell_contents) for n, c in cells]
        found += [(f"<uses global {n}>", obj.__globals__[n]) for n in obj.__code__.co_names
                  if n in obj.__globals__]
        return found
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        return [(f".{k}", v) for k, v in state.items()]
    return []


def find_unpicklable(obj: Any, path: str = "message", depth: int = 0,
                     seen: set[int] | None = None) -> tuple[str, Any]:
    """The deepest part of ``obj`` that cannot be pickled, as (path, object)."""
    seen = set() if seen is None else seen
    seen.add(id(obj))  # a method's class is in its closure (super()): never walk a cycle
    if depth < 8:
        for suffix, child in _children(obj):
            if id(child) in seen:
                continue
            try:
                dumps(child)
            except Exception:
                return find_unpicklable(child, path + suffix, depth + 1, seen)
    return path, obj


def describe(obj: Any) -> str:
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    if callable(obj) and not isinstance(obj, type):
        return f"<{name}>"
    cls = type(obj)
    module = "" if cls.__module__ == "builtins" else f"{cls.__module__}."
    return f"a {module}{cls.__qualname__}"


def dumps_or_raise(obj: Any, what: str, root: str = "message") -> bytes:
    """Pickle ``obj`` or raise ``SerializationError`` naming ``what`` and the culprit.

    ``what`` reads like "message to 'counter'"; ``root`` names ``obj`` in the path
    to the culprit ("message.conn is a socket").
    """
    try:
        return dumps(obj)
    except Exception as exc:  # pickling raises many types: TypeError, PicklingError, ...
        raise unpicklable_error(obj, what, exc, root) from exc


def dumps_naming_culprit(obj: Any) -> bytes:
    """``dumps``, failing with a ``SerializationError`` that names the path to the culprit.

    For hosts that serialize values for a caller who adds what they were
    (a step's result): the message reads "value['conn'] is a socket.socket (...)".
    """
    try:
        return dumps(obj)
    except DurableActorsError:
        raise  # typed already (a saved value whose snapshot failed): it says what happened
    except Exception as exc:
        path, culprit = find_unpicklable(obj, "value")
        raise SerializationError(f"{path} is {describe(culprit)} ({exc})") from exc


def unpicklable_error(obj: Any, what: str, exc: Exception, root: str = "message",
                      advice: str = "send plain data, or give the object a __reduce__",
                      ) -> SerializationError:
    """The ``SerializationError`` for ``obj``, which failed to pickle with ``exc``."""
    path, culprit = find_unpicklable(obj, root)
    return SerializationError(
        f"{what} could not be pickled: {path} is {describe(culprit)} ({exc}); {advice}"
    )
