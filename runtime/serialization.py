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

from runtime.errors import SerializationError

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


def _children(obj: Any) -> list[tuple[str, Any]]:
    if isinstance(obj, dict):
        return [(f"[{k!r}]", v) for k, v in obj.items()]
    if isinstance(obj, list | tuple | set | frozenset):
        return [(f"[{i}]", v) for i, v in enumerate(obj)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [(f".{f.name}", getattr(obj, f.name)) for f in dataclasses.fields(obj)]
    closure = getattr(obj, "__closure__", None)
    if closure:
        names = getattr(getattr(obj, "__code__", None), "co_freevars", ())
        return [(f"<captures {n}>", c.cell_contents) for n, c in zip(names, closure, strict=False)]
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        return [(f".{k}", v) for k, v in state.items()]
    return []


def find_unpicklable(obj: Any, path: str = "message", depth: int = 0) -> tuple[str, Any]:
    """The deepest part of ``obj`` that cannot be pickled, as (path, object)."""
    if depth < 8:
        for suffix, child in _children(obj):
            try:
                dumps(child)
            except Exception:
                return find_unpicklable(child, path + suffix, depth + 1)
    return path, obj


def describe(obj: Any) -> str:
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    if callable(obj) and not isinstance(obj, type):
        return f"<{name}>"
    return f"a {type(obj).__qualname__}"


def dumps_or_raise(obj: Any, what: str) -> bytes:
    """Pickle ``obj`` or raise ``SerializationError`` naming ``what`` and the culprit.

    ``what`` reads like "message to 'counter'".
    """
    try:
        return dumps(obj)
    except Exception as exc:  # pickling raises many types: TypeError, PicklingError, ...
        path, culprit = find_unpicklable(obj)
        raise SerializationError(
            f"{what} could not be pickled: {path} is {describe(culprit)} ({exc}); "
            "send plain data, or give the object a __reduce__"
        ) from exc
