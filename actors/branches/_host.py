"""The host contract: what a branch's context needs from whoever runs it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from actors.branches._spec import BranchSpec
from actors.policies import Completion
from actors.records._updates import OperationUpdate, Update


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
    # raises ``CheckpointError`` when the run is stale (``actors.workers``).

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
