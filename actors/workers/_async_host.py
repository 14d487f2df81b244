"""``AsyncRunHost``: the ``AsyncBranchHost`` of one run of an async branch on a worker's loop.

The run's sync host (``actors.workers``) does every send — through the run's
checkpoint gate, stamped with its epoch — exactly as for a sync branch; this
host only waits differently: it awaits the reply (``actors.replies.awaited``)
where the sync host blocks its thread on it. A suspension is sent marked
``coroutine=True``: the scheduler bounds such parked branches by memory, not by
threads.

    host = AsyncRunHost(run_host, loop.call_blocking)
    outcome = await run_branch_async(spec, log, host)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from actors.branches._spec import BranchSpec
from actors.errors import CheckpointError
from actors.policies import Completion
from actors.records._updates import OperationUpdate, Update
from actors.replies import awaited
from actors.scheduling import Verdict

T = TypeVar("T")


class RunLink(Protocol):
    """What the sync host of a run offers to send for it (``actors.workers``'s)."""

    epoch: int

    def ensure_current(self, wait: float | None = None) -> None: ...

    def send_checkpoint(self, update: Update, *, sync: bool) -> Any: ...

    def not_acknowledged(self, exc: Exception) -> CheckpointError: ...

    def send_suspension(self, op: OperationUpdate, *,
                        coroutine: bool = False) -> tuple[OperationUpdate, Any]: ...

    def unanswered(self, exc: Exception) -> CheckpointError: ...

    def take_verdict(self, op: OperationUpdate, verdict: Verdict) -> bytes | None: ...

    def create_children(self, parent: OperationUpdate,
                        children: Sequence[BranchSpec]) -> OperationUpdate: ...

    def announce_children(self, parent: OperationUpdate, children: Sequence[BranchSpec],
                          max_concurrency: int | None, completion: Completion) -> None: ...

    def now(self) -> float: ...

    def serialize(self, obj: object) -> bytes: ...

    def deserialize(self, data: bytes) -> Any: ...


class AsyncRunHost:
    """Sends through ``link``; awaits its replies; runs sync callables with ``call_blocking``."""

    def __init__(self, link: RunLink,
                 call_blocking: Callable[[Callable[[], Any]], Awaitable[Any]]) -> None:
        self._link = link
        self._call_blocking = call_blocking
        self.epoch = link.epoch  # branch contexts stamp their updates with it
        self.trace = getattr(link, "trace", None)  # the parent of the run's span
        self.worker_id = getattr(link, "worker_id", None)

    def ensure_current(self) -> None:
        """The run's fence, without waiting: on the loop, a run whose leases are not
        confirmed stops at once (and is dispatched again) rather than stall the loop."""
        self._link.ensure_current(wait=0.0)

    async def checkpoint(self, update: Update, *, sync: bool) -> None:
        reply = self._link.send_checkpoint(update, sync=sync)
        if reply is None:
            return
        try:
            await awaited(reply)
        except CheckpointError:
            raise
        except Exception as exc:  # the checkpoint actor is gone: nothing was acknowledged
            raise self._link.not_acknowledged(exc) from exc

    async def suspend(self, op: OperationUpdate) -> bytes | None:
        op, verdict = self._link.send_suspension(op, coroutine=True)
        try:
            answer = await awaited(verdict)  # parked: a suspended coroutine
        except Exception as exc:  # the scheduler is gone: nothing says the suspension is durable
            raise self._link.unanswered(exc) from exc
        return self._link.take_verdict(op, answer)

    async def start_children(self, parent: OperationUpdate, children: Sequence[BranchSpec], *,
                             max_concurrency: int | None, completion: Completion) -> None:
        await self.checkpoint(self._link.create_children(parent, children), sync=True)
        self._link.announce_children(parent, children, max_concurrency, completion)

    async def call_blocking(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the worker's pool. It may wait there behind other runs' steps: a fence
        set meanwhile stops it before it starts (``CheckpointError``), as ``_begin``'s does."""
        def when_current() -> T:
            self.ensure_current()
            return fn()

        value: T = await self._call_blocking(when_current)
        return value

    def now(self) -> float:
        return self._link.now()

    def serialize(self, obj: object) -> bytes:
        return self._link.serialize(obj)

    def deserialize(self, data: bytes) -> Any:
        return self._link.deserialize(data)
