"""What a stored execution is made of: its spec, its branch classes, its fingerprint."""

from __future__ import annotations

import hashlib
import importlib
import math
import pickle
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class BranchClassRef:
    """A branch class as stored: by importable name, and by value when it has no such name.

    ``load()`` imports ``module.qualname`` when it can (a new deploy's code runs
    recovered executions) and falls back to the pickled class otherwise.
    """

    module: str
    qualname: str
    by_value: bytes | None

    def load(self, deserialize: Callable[[bytes], Any]) -> type:
        if self.module != "__main__" and "<locals>" not in self.qualname:
            found = _import(self.module, self.qualname)
            if found is not None:
                return found
        if self.by_value is None:
            raise LookupError(
                f"branch class {self.module}.{self.qualname} cannot be imported here; run "
                "this execution on a system whose code has it"
            )
        cls = deserialize(self.by_value)
        if not isinstance(cls, type):
            raise TypeError(f"the stored branch class {self.qualname} loaded as {cls!r}")
        return cls


def _import(module: str, qualname: str) -> type | None:
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception:
        return None
    return found if isinstance(found, type) else None


def class_ref(cls: type, serialize: Callable[[object], bytes]) -> BranchClassRef:
    """How ``cls`` is stored: its name, and its pickled self when the name cannot find it."""
    module, qualname = cls.__module__, cls.__qualname__
    importable = module != "__main__" and "<locals>" not in qualname and (
        _import(module, qualname) is cls
    )
    return BranchClassRef(module, qualname, None if importable else serialize(cls))


@dataclass(frozen=True, slots=True)
class ExecutionSpec:
    """What any system needs to run a stored execution besides its branches' inputs.

    ``classes`` holds one class for ``map`` and one per branch for ``parallel``.
    A spec stored before a field was added lacks it: read new fields with ``getattr``.
    """

    kind: str
    classes: tuple[BranchClassRef, ...]
    max_concurrency: int | None
    completion: Any  # actors.policies.Completion
    timeout: float | None = None
    trace: Any = None  # actors.spans.ExecutionTrace: its span, kept across restarts and takeovers

    def class_at(self, index: int) -> BranchClassRef:
        return self.classes[0] if len(self.classes) == 1 else self.classes[index]


def fingerprint_of(kind: str, classes: Iterable[type], items: Iterable[Any],
                   serialize: Callable[[object], bytes]) -> str:
    """A digest of what an execution is made of: its kind, branch classes and items.

    Equal items give equal fingerprints in any process: containers are hashed
    by their contents (sets and dicts in an order of their own), other objects
    by their pickled bytes.

        fingerprint_of("map", [Resize], ["a.png"], pickle.dumps)
    """
    digest = hashlib.sha256(kind.encode())
    for cls in classes:
        digest.update(f"\0class:{cls.__module__}.{cls.__qualname__}".encode())
    for item in items:
        digest.update(b"\0item:")
        digest.update(_canonical(item, serialize, 0))
    return digest.hexdigest()


def _canonical(obj: Any, serialize: Callable[[object], bytes], depth: int) -> bytes:
    """Bytes that are equal for equal values, whatever the process's hash seed."""
    if obj is None or isinstance(obj, bool):
        return repr(obj).encode()
    kind = type(obj)
    if kind is int:
        return b"i" + str(obj).encode()
    if kind is float:
        return b"f" + (b"nan" if math.isnan(obj) else struct.pack("!d", obj))
    if kind is str:
        return b"s" + hashlib.sha256(obj.encode("utf-8", "surrogatepass")).digest()
    if kind is bytes:
        return b"b" + hashlib.sha256(obj).digest()
    if depth < 32:
        if kind in (list, tuple):
            parts = [_canonical(v, serialize, depth + 1) for v in obj]
            return _joined(b"l" if kind is list else b"t", parts)
        if kind in (set, frozenset):
            parts = sorted(_canonical(v, serialize, depth + 1) for v in obj)
            return _joined(b"S", parts)
        if kind is dict:
            pairs = sorted(_joined(b"p", [_canonical(k, serialize, depth + 1),
                                          _canonical(v, serialize, depth + 1)])
                           for k, v in obj.items())
            return _joined(b"d", pairs)
    try:
        data = serialize(obj)
    except Exception:
        data = pickle.dumps(repr(obj))
    return b"o" + hashlib.sha256(data).digest()


def _joined(tag: bytes, parts: list[bytes]) -> bytes:
    digest = hashlib.sha256(tag)
    for part in parts:
        digest.update(struct.pack("!I", len(part)))
        digest.update(part)
    return tag + digest.digest()
