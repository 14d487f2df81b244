"""One branch body, run as both kinds of branch: the suites that pin replay run for each.

A test writes its branch once, with ``async def run`` and ``await ctx.<operation>(...)``,
and runs it through the ``kind`` fixture (``tests/conftest.py``):

* ``Kind.ASYNC(cls)`` is ``cls`` itself: an async branch, on an event loop;
* ``Kind.SYNC(cls)`` is its sync twin: a ``def run`` that hands the body the real sync
  ``BranchContext``, whose operations finish (or suspend, raising) before the body
  awaits them, so the body's coroutine is stepped to its end on the branch's thread.

A twin of a module-level class is made when the module is imported (``@both_kinds``)
and lives beside it, so a worker process unpickles it by reference like any branch.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

from actors.branch import BranchActor, is_async_branch

B = TypeVar("B", bound=type[BranchActor])

# The operations of a context that a body awaits; everything else passes through.
_OPERATIONS = frozenset({"step", "wait", "wait_for_condition", "create_callback",
                         "wait_for_callback", "map", "parallel", "save"})
_twins: dict[type[BranchActor], type[BranchActor]] = {}


class _Now:
    """An awaitable whose value is already there: what a sync operation hands the body."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, Any]:
        return self.value
        yield  # a generator that returns at its first step: nothing is ever awaited


class SyncOperations:
    """A sync ``BranchContext`` with the face of an async one: each operation runs now."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._ctx, name)
        if name not in _OPERATIONS:
            return found

        def operation(*args: Any, **kwargs: Any) -> _Now:
            return _Now(found(*args, **kwargs))

        return operation


def step_through(body: Coroutine[Any, Any, Any]) -> Any:
    """Run ``body`` to its end on this thread; it must never wait for anything."""
    try:
        body.send(None)
    except StopIteration as done:
        return done.value
    body.close()
    raise RuntimeError("the sync twin of a branch awaited something that is not a ctx "
                       "operation; give such a test Kind.ASYNC only")


def sync_twin(cls: type[BranchActor]) -> type[BranchActor]:
    """The sync branch that runs ``cls``'s async ``run`` body over a sync context."""
    twin = _twins.get(cls)
    if twin is not None:
        return twin
    if not is_async_branch(cls):
        raise TypeError(f"{cls.__qualname__}.run is not async def: write the body once, async")
    body = cls.run

    def run(self: BranchActor, ctx: Any, item: Any) -> Any:
        return step_through(body(self, SyncOperations(ctx), item))

    twin = type(f"{cls.__name__}Sync", (cls,), {
        "run": run, "__module__": cls.__module__, "__qualname__": f"{cls.__qualname__}Sync",
        "__doc__": cls.__doc__,
    })
    _twins[cls] = twin
    return twin


def both_kinds(cls: B) -> B:
    """Class decorator: make ``cls``'s sync twin now and put it beside ``cls`` in its module."""
    twin = sync_twin(cls)
    if "<locals>" not in cls.__qualname__:
        setattr(sys.modules[cls.__module__], twin.__qualname__, twin)
    return cls


class Kind(enum.Enum):
    """Which kind of branch a parametrized test runs its bodies as."""

    SYNC = "sync"
    ASYNC = "async"

    def __call__(self, cls: type[BranchActor]) -> type[BranchActor]:
        return sync_twin(cls) if self is Kind.SYNC else cls


def same_kind(branch: BranchActor, cls: type[BranchActor]) -> type[BranchActor]:
    """``cls`` as the kind ``branch`` runs as: a twin's children are twins too."""
    return cls if is_async_branch(type(branch)) else sync_twin(cls)



__all__ = ["Kind", "SyncOperations", "both_kinds", "same_kind", "step_through", "sync_twin"]
