"""How the framework's records and messages pickle: as (class, field values), in C.

Every message crosses a process boundary, most of them on hot paths. A frozen,
slotted dataclass pickles through Python-level ``__getstate__``/``__setstate__``
by default, and an enum member through its ``__reduce_ex__``; the runtime's
pickler (``runtime.serialization``) reduces them instead to ``(class, field
values)`` and ``getattr(enum class, member name)``, which the C unpickler
rebuilds without running code of ours on load. The domain's classes stay plain
dataclasses: this is the transport's business, applied where it pickles.

Updates mostly travel one per message (a step's checkpoint), where each enum
member is the first of its class in the pickle: saving and loading it by name
costs ~4 µs a field on each side. Their enum fields travel as plain strings
instead, which ``rebuild_with_enums`` maps back in one call (a checkpoint message:
18 → 11 µs to pickle, 13.5 → 10 µs to unpickle). Records travel by the dozen in
logs, where the pickle memo makes repeated members free and a Python call per
object would cost more: they keep (class, field values).

    reduce = reducer_for(type(update))     # None for a class this does not cover
    reduce(update)                         # (rebuild_with_enums, (OperationUpdate, ...))
"""

from __future__ import annotations

import dataclasses
import operator
import sys
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeAlias

from actors.bundles import Bundle
from actors.clock import Tick
from actors.records._updates import BranchUpdate, ExecutionUpdate, OperationUpdate
from actors.refs._digest_actor import LoadBlob, StoreBlob

Reducer: TypeAlias = Callable[[Any], tuple[Any, ...]]

# The framework's messages and records: what crosses on the hot paths.
_COVERED_MODULES = ("actors.records.", "actors.protocol.", "actors.scheduling._verdicts",
                    "actors.coordinator._continuations")
_COVERED_CLASSES = frozenset({Bundle, Tick, LoadBlob, StoreBlob})
_ENUMS_AS_VALUES = frozenset({ExecutionUpdate, BranchUpdate, OperationUpdate})

# For each dataclass whose enum fields travel as values: (position, {value: member}) per field.
_EnumFields: TypeAlias = tuple[tuple[int, dict[Any, Enum]], ...]
_ENUM_FIELDS: dict[type, _EnumFields] = {}
reducers: dict[type, Reducer | None] = {}  # by class, once asked: the pickler looks here first
_KNOWN_LIMIT = 16_384  # a bound, should a program mint classes in a loop


def reducer_for(cls: type) -> Reducer | None:
    """The cheap reduce of ``cls``'s instances, or None when ``cls`` pickles the usual way."""
    try:
        return reducers[cls]
    except KeyError:
        reducer = _make_reducer(cls)
        if reducer is not None or len(reducers) < _KNOWN_LIMIT:
            reducers[cls] = reducer
        return reducer


def rebuild_with_enums(cls: type, *fields: Any) -> Any:
    """The ``cls`` whose enum fields travelled as their values."""
    values = list(fields)
    enum_fields = _ENUM_FIELDS.get(cls)
    if enum_fields is None:  # the first of its class this process loads, before any it saved
        if cls not in _ENUMS_AS_VALUES:
            raise TypeError(f"{cls!r} does not travel with its enum fields as values")
        reducer_for(cls)
        enum_fields = _ENUM_FIELDS[cls]
    for position, members in enum_fields:
        value = values[position]
        if value is not None:
            values[position] = members[value]
    return cls(*values)


def _covered(cls: type) -> bool:
    return cls in _COVERED_CLASSES or cls.__module__.startswith(_COVERED_MODULES)


def _reduce_enum(member: Enum) -> tuple[Any, ...]:
    return (getattr, (type(member), member.name))


def _make_reducer(cls: type) -> Reducer | None:
    if not _covered(cls):
        return None
    if issubclass(cls, Enum):
        return _reduce_enum
    if not dataclasses.is_dataclass(cls) or "__reduce__" in cls.__dict__:
        return None  # a handle with behaviour: it says how it pickles
    fields = dataclasses.fields(cls)
    if any(not f.init for f in fields):
        return None
    names = tuple(f.name for f in fields)
    if not names:
        return lambda _obj: (cls, ())
    values = operator.attrgetter(*names)
    if cls in _ENUMS_AS_VALUES:
        return _enums_as_values(cls, values)
    if len(names) == 1:
        return lambda obj: (cls, (values(obj),))
    return lambda obj: (cls, values(obj))


def _enums_as_values(cls: type, values: Callable[[Any], tuple[Any, ...]]) -> Reducer:
    found = []
    for position, field in enumerate(dataclasses.fields(cls)):
        enum = field.type if isinstance(field.type, type) else None
        if enum is None:  # a string annotation: "OpStatus", "OpStatus | None"
            name = str(field.type).removesuffix(" | None")
            enum = getattr(sys.modules[cls.__module__], name, None)
        if isinstance(enum, type) and issubclass(enum, Enum):
            found.append((position, {member.value: member for member in enum}))
    _ENUM_FIELDS[cls] = tuple(found)
    positions = tuple(position for position, _ in found)

    def reduce(obj: Any) -> tuple[Any, ...]:
        fields = list(values(obj))
        for position in positions:
            member = fields[position]
            if member is not None:
                fields[position] = member._value_
        return (rebuild_with_enums, (cls, *fields))

    return reduce


__all__ = ["rebuild_with_enums", "reducer_for"]
