"""Effects: what a durable operation asks its driver to do, and what it needs of a host.

An operation (``OperationCore``) is a generator: it *yields* effects and gets
each one's outcome sent back (or its exception thrown in). ``BranchContext``
performs them by blocking its thread, ``AsyncBranchContext`` by awaiting them:

    value = yield Call("charge", charge, (order,))
    yield Write(update, sync=True)  # resumes once the update is durable
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from actors.branches._actor import BranchActor
from actors.branches._spec import BranchSpec
from actors.policies import Completion
from actors.records._updates import OperationUpdate, Update

T = TypeVar("T")
S = TypeVar("S")


class ConditionResult(NamedTuple, Generic[S]):
    """What a ``wait_for_condition`` check returns: whether it holds, and the state to keep.

    Any ``(done, state)`` tuple does as well.
    """

    done: bool
    state: S


# -- effects: what an operation asks its driver to do ------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """Call user code (a step function, a condition check); its outcome is the return value.

    ``timeout`` bounds one attempt (``StepTimeoutError`` past it); ``what`` names the
    operation for errors and for refusing nested operations.
    """

    what: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] | None = None
    timeout: float | None = None
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class Write:
    """Checkpoint ``update``; with ``sync`` the outcome comes once it is durable."""

    update: Update
    sync: bool


@dataclass(frozen=True, slots=True)
class Park:
    """Suspend on ``op`` (``BranchHost.suspend``): payload or None, or ``BranchSuspended``."""

    op: OperationUpdate


@dataclass(frozen=True, slots=True)
class Spawn:
    """Durably create and schedule the children of ``parent`` (``BranchHost.start_children``)."""

    parent: OperationUpdate
    children: tuple[BranchSpec, ...]
    max_concurrency: int | None
    completion: Completion


@dataclass(frozen=True, slots=True)
class Invoke:
    """Run the branch's own ``run(ctx, item)``; its outcome is what ``run`` returns."""

    branch: BranchActor
    item: Any


Effect = Call | Write | Park | Spawn | Invoke
# An operation as its driver sees it: effects out, their outcomes in, the result at the end.
Effects = Generator[Effect, Any, T]


class HostBasics(Protocol):
    """What the decisions need of a host directly: time and bytes (both kinds of host)."""

    def now(self) -> float: ...

    def serialize(self, obj: object) -> bytes: ...

    def deserialize(self, data: bytes) -> Any: ...

