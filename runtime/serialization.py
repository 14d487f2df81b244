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
from collections.abc import Callable
from typing import Any

import cloudpickle
import pykka

from actors._compat.cloudpickle import should_pickle_by_reference
from runtime.cheap_pickling import reducer_for, reducers
from runtime.errors import DurableActorsError, SerializationError
from runtime.moved_names import load_moved, names_a_moved_module


def loads(data: bytes | bytearray | memoryview) -> Any:
    """Unpickle ``data``; a pickle of an earlier version's layout loads too (``moved_names``)."""
    try:
        return pickle.loads(data)
    except (ModuleNotFoundError, AttributeError) as exc:
        if not names_a_moved_module(exc):
            raise
        return load_moved(data)

_cheap = reducers  # class -> its cheap reduce, or None (runtime.cheap_pickling)
_UNSEEN: Any = object()
_CODE = (type, types.FunctionType)  # what may travel by value; a tuple: cheaper than a union
# ... and pykka's refs and futures, which a transport's pickler turns into its own (``cross``).
_SPECIAL = (type, types.FunctionType, pykka.ActorRef, pykka.Future)


class Pickler(pickle.Pickler):
    """The C pickler, handing cloudpickle only what must travel by value.

    Classes and functions that cloudpickle would pickle by value (defined in
    ``__main__``, in a function, lambdas) go through cloudpickle; everything else,
    most of all the framework's own messages, stays in C: about 3x cheaper per
    message than cloudpickle for the same bytes on the receiving side.

    A transport subclasses it and overrides ``cross``, which meets every pykka
    ``ActorRef`` and ``Future`` (the system's own included) in what is pickled.
    """

    def reducer_override(self, obj: Any) -> Any:
        cls = type(obj)
        cheap = _cheap.get(cls, _UNSEEN)
        if cheap is _UNSEEN:
            cheap = reducer_for(cls)
        if cheap is not None:
            return cheap(obj)
        if isinstance(obj, _SPECIAL):
            if not isinstance(obj, _CODE):
                return self.cross(obj)
            if obj not in _known_by_reference:
                if not should_pickle_by_reference(obj):
                    return cloudpickle.loads, (cloudpickle.dumps(obj, protocol=5),)
                if len(_known_by_reference) < _KNOWN_LIMIT:
                    _known_by_reference.add(obj)
        return NotImplemented

    def cross(self, obj: Any) -> Any:
        """How a pykka ref or future pickles here: a reduction, or NotImplemented (its own)."""
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
    Pickler(buffer, protocol=5).dump(obj)
    return buffer.getvalue()


class _Nowhere:
    """A file that keeps nothing: pickling into it checks an object without holding its bytes."""

    def write(self, data: Any) -> int:
        return len(data)


def check_picklable(obj: Any) -> None:
    """Raise what ``dumps(obj)`` would raise, holding one pickle frame at most in memory."""
    Pickler(_Nowhere(), protocol=5).dump(obj)


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
                     seen: set[int] | None = None,
                     check: Callable[[Any], Any] | None = None) -> tuple[str, Any]:
    """The deepest part of ``obj`` that cannot be pickled, as (path, object).

    ``check`` pickles a part (default ``dumps``; a transport passes its own).
    """
    check = dumps if check is None else check
    seen = set() if seen is None else seen
    seen.add(id(obj))  # a method's class is in its closure (super()): never walk a cycle
    if depth < 8:
        for suffix, child in _children(obj):
            if id(child) in seen:
                continue
            try:
                check(child)
            except Exception:
                return find_unpicklable(child, path + suffix, depth + 1, seen, check)
    return path, obj


def describe(obj: Any) -> str:
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    if callable(obj) and not isinstance(obj, type):
        return f"<{name}>"
    cls = type(obj)
    module = "" if cls.__module__ == "builtins" else f"{cls.__module__}."
    return f"a {module}{cls.__qualname__}"


def dumps_or_raise(obj: Any, what: str, root: str = "message",
                   check: Callable[[Any], bytes] | None = None) -> bytes:
    """Pickle ``obj`` or raise ``SerializationError`` naming ``what`` and the culprit.

    ``what`` reads like "message to 'counter'"; ``root`` names ``obj`` in the path
    to the culprit ("message.conn is a socket").
    """
    check = dumps if check is None else check
    try:
        return check(obj)
    except Exception as exc:  # pickling raises many types: TypeError, PicklingError, ...
        raise unpicklable_error(obj, what, exc, root, check=check) from exc


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
                      check: Callable[[Any], Any] | None = None) -> SerializationError:
    """The ``SerializationError`` for ``obj``, which failed to pickle with ``exc``."""
    path, culprit = find_unpicklable(obj, root, check=check)
    return SerializationError(
        f"{what} could not be pickled: {path} is {describe(culprit)} ({exc}); {advice}"
    )
