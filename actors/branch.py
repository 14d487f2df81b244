"""Branches: the user's unit of durable work, and what its context needs from a host.

``BranchActor`` is what users subclass. ``BranchContext`` (``actors.context``)
gives ``run`` its durable operations; ``run_branch`` (``actors.replay``) drives
one run of a branch over its log. Both reach the outside world only through a
``BranchHost``: a worker in production, ``actors.testing.InlineHost`` in tests.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from actors.errors import StepFailedError
from actors.messages import OperationUpdate, Update
from actors.policies import Completion
from actors.tracebacks import bounded, keep_traceback, traceback_text

MAX_MESSAGE_CHARS = 4_000  # of a logged failure's text; the exception itself is kept whole


class BranchActor(abc.ABC):
    """A unit of durable work: subclass it and implement ``run(ctx, item)``.

    Every effect belongs in a ``ctx`` operation, because ``run`` is replayed from
    the start after each suspension or crash and must call the same operations
    in the same order each time; logged results are returned without running
    again. A fresh instance runs each replay, so state kept on ``self`` does not
    survive a suspension: keep it in step results.

    Despite the name, a branch is not a pykka actor with a thread of its own: a
    worker actor hosts many branches on a bounded thread pool, and a suspended
    branch holds no thread at all, so a million branches cost a million log rows,
    not a million threads.

    ``run`` may be ``async def``: the branch then runs on its worker's event loop,
    gets an ``AsyncBranchContext`` and awaits every operation; while it is parked
    it is a suspended coroutine, not a parked thread.

        class Resize(BranchActor):
            def run(self, ctx: BranchContext, item: str) -> str:
                raw = ctx.step("download", download, item, retry=Retry(attempts=3))
                ctx.wait("cooldown", seconds=2)
                return ctx.step("resize", resize, raw)

        class Fetch(BranchActor):
            async def run(self, ctx: AsyncBranchContext, url: str) -> str:
                page = await ctx.step("get", http_get, url, timeout=30)
                await ctx.wait("cool", seconds=1)
                return page
    """

    @abc.abstractmethod
    def run(self, ctx: Any, item: Any) -> Any:
        """Do the branch's work through ``ctx``; the return value is the branch's result.

        ``ctx`` is a ``BranchContext``, or an ``AsyncBranchContext`` for ``async def run``.
        """


def check_branch_class(branch_cls: object) -> type[BranchActor]:
    """``branch_cls`` if it can run as a branch, else a ``TypeError`` that says why."""
    if not (isinstance(branch_cls, type) and issubclass(branch_cls, BranchActor)):
        raise TypeError(
            f"{branch_cls!r} is not a BranchActor subclass; define "
            "`class MyBranch(BranchActor)` with a run(self, ctx, item) method"
        )
    if getattr(branch_cls, "__abstractmethods__", None):
        raise TypeError(f"{branch_cls.__qualname__} does not implement run(self, ctx, item)")
    return branch_cls


def is_async_branch(branch_cls: type[BranchActor]) -> bool:
    """Whether ``branch_cls.run`` is ``async def``: the branch runs on an event loop."""
    return inspect.iscoroutinefunction(branch_cls.run)


@dataclass(frozen=True, slots=True)
class BranchSpec:
    """What a host needs to run (or replay) a branch.

    Child branches of the operation ``parent_op_id`` of ``parent_branch_id`` get
    the id ``f"{parent_branch_id}/{parent_op_id}/{index}"``.

        BranchSpec("nightly-1", "0", Resize, input="a.png")
    """

    execution_id: str
    branch_id: str
    branch_cls: type[BranchActor]
    input: Any = None
    index: int = 0
    parent_branch_id: str | None = None
    parent_op_id: str | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # A spec crosses two processes per dispatch; the dataclass default (__getstate__
        # over fields()) costs about as much as the rest of a RunBranch.
        return (BranchSpec, (self.execution_id, self.branch_id, self.branch_cls, self.input,
                             self.index, self.parent_branch_id, self.parent_op_id))


class BranchSuspended(BaseException):
    """Raised by ``BranchHost.suspend`` to unwind ``run`` once a suspension is durable.

    A ``BaseException`` so that ``except Exception`` in user code lets it through;
    ``run_branch`` turns it into a ``SUSPENDED`` outcome. The branch is replayed
    from its log when the host resumes it.
    """

    def __init__(self, op: OperationUpdate) -> None:
        super().__init__(f"branch {op.branch_id!r} suspended on {op.kind.lower()} {op.name!r}")
        self.op = op

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.op,))


class BranchHost(Protocol):
    """What a ``BranchContext`` needs from whoever runs its branch.

    One host may serve many branches on many threads: every call names its
    branch (in the update or the specs), and a context calls its host only from
    the thread that runs its branch.
    """

    # A host may also have ``epoch``, the number of the run it hosts: contexts then
    # stamp it on every update they make (the checkpoint actor fences by it); and
    # ``ensure_current()``, which a context calls before every operation and which
    # raises ``CheckpointError`` when the run is stale (``actors.fences``).

    def checkpoint(self, update: Update, *, sync: bool) -> None:
        """Make ``update`` durable, in order with the branch's earlier updates.

        ``sync=True`` returns once it is durable and raises ``CheckpointError`` if
        it cannot be. ``sync=False`` returns at once; the update is durable no
        later than the branch's next acknowledged sync checkpoint.
        """
        ...

    def suspend(self, op: OperationUpdate) -> bytes | None:
        """Park the branch on ``op`` until it may go on: return, or raise ``BranchSuspended``.

        ``op`` is the operation's new state: ``SUSPENDED`` with ``due_at`` for a
        wait or a condition's next poll (``payload`` = the condition's state),
        ``RETRYING`` with ``attempt``, ``error`` and ``due_at`` for a retry's
        backoff, ``SUSPENDED`` without ``due_at`` for ``CHILDREN`` (the dependency
        is the batch that ``start_children`` started for the same op).
        ``due_at`` is always in the future. The host records ``op`` (at once, or
        as a deferred checkpoint, with the branch's ``SUSPENDED`` status) and
        resumes the branch once, when ``due_at`` passes or the batch finishes:

        * if the branch is resumed before the suspension was written, the host
          cancels the write and RETURNS: ``None`` for a timer, the serialized
          ``BatchResult`` for ``CHILDREN`` (already durable as the operation's
          ``SUCCEEDED`` payload); the context goes on in place;
        * else, once ``op`` is durable, it RAISES ``BranchSuspended(op)``: ``run``
          unwinds, the thread is freed, and the host later replays the branch
          from its log.

        A replay that comes before the due time or before the batch finishes
        calls ``suspend`` again with the same op: keep one resume per suspension.
        """
        ...

    def start_children(
        self,
        parent: OperationUpdate,
        children: Sequence[BranchSpec],
        *,
        max_concurrency: int | None,
        completion: Completion,
    ) -> None:
        """Durably create the child branches of the ``CHILDREN`` op ``parent``, and schedule them.

        Returns once the children are durable (``CheckpointError`` otherwise). It
        is idempotent by child ``branch_id``: every replay that meets the op
        before the batch finished calls it again, and children that already
        exist are left as they are. At most ``max_concurrency`` children run at
        once; none starts after ``completion`` finished the batch
        (``actors.policies.BatchProgress`` decides). When the batch is finished,
        the host records ``parent`` as ``SUCCEEDED`` with the serialized
        ``BatchResult`` as payload, then resumes the parent.
        """
        ...

    def now(self) -> float:
        """Wall-clock seconds, the time that ``due_at`` is compared with."""
        ...

    def serialize(self, obj: object) -> bytes:
        """Bytes for ``obj`` (results, inputs, condition states, exceptions)."""
        ...

    def deserialize(self, data: bytes) -> Any:
        """The object ``serialize`` made these bytes from."""
        ...


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


__all__ = [
    "BranchActor",
    "BranchHost",
    "BranchSpec",
    "BranchSuspended",
    "StoredError",
    "check_branch_class",
    "decode_error",
    "encode_error",
    "is_async_branch",
]
