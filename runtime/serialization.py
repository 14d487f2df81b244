"""cloudpickle at the process boundary, with errors that name the offending object.

cloudpickle (not ``multiprocess``'s dill-based ``send``) because it is ~3x
faster for messages and still ships classes and closures defined in
``__main__`` by value.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import cloudpickle

from runtime.errors import SerializationError

loads = cloudpickle.loads


def dumps(obj: Any) -> bytes:
    """Pickle ``obj``; raises whatever cloudpickle raises (callers wrap it)."""
    data: bytes = cloudpickle.dumps(obj, protocol=5)
    return data


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
