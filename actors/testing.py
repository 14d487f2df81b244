"""``InlineHost``: a ``BranchHost`` that runs branches in the calling thread, for tests.

It writes every update to a ``MemoryStore`` at once, keeps timers on a
``FakeClock``, evicts a suspended branch by raising ``BranchSuspended`` and
resumes it by replaying it from the store's log, and runs child batches with
their ``max_concurrency`` and ``Completion``. Nothing runs until the test
calls ``run_until_idle`` or ``advance``, so every test is deterministic.

Async branches (``async def run``) run too, each run on an event loop of its
own, their sync step functions on a thread each; a test mixes both kinds freely.

    host = InlineHost()
    host.start(Resize, "a.png", branch_id="b")
    host.run_until_idle()        # runs until Resize suspends on ctx.wait("cooldown", seconds=2)
    host.advance(2)              # the timer fires; Resize is replayed from its log
    assert host.outcomes["b"].status is BranchStatus.SUCCEEDED
"""

from __future__ import annotations

import asyncio
import contextvars
import pickle
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from actors.async_context import wait_in_thread
from actors.branch import BranchActor, BranchSpec, BranchSuspended, is_async_branch
from actors.clock import FakeClock
from actors.errors import CheckpointError
from actors.messages import BranchStatus, BranchUpdate, OperationUpdate, OpKind, OpStatus, Update
from actors.policies import BatchProgress, Completion
from actors.replay import BranchOutcome, run_branch, run_branch_async
from actors.store import MemoryStore

_MAX_RUNS = 100_000  # a test that runs more branch runs than this is looping
T = TypeVar("T")


@dataclass
class _Batch:
    parent: OperationUpdate
    progress: BatchProgress
    waiting: deque[BranchSpec]
    max_concurrency: int | None
    running: int = 0
    in_place: bool = False  # the parent is parked in suspend(), not evicted
    payload: bytes | None = None
    children: list[str] = field(default_factory=list)


class InlineHost:
    """A ``BranchHost`` over a ``MemoryStore`` and a ``FakeClock``, driven by the test.

    ``in_place=True`` plays a scheduler whose deferred checkpoints are always
    cancelled by an early resume: ``suspend`` writes nothing and returns (timers
    move the clock to their due time; child batches run to their end first).
    ``outcomes`` keeps each branch's last outcome, ``aborted`` the branches whose
    run ended in ``CheckpointError``; ``replays`` and ``step_executions`` add up
    the counters of every run.
    """

    def __init__(
        self,
        store: MemoryStore | None = None,
        clock: FakeClock | None = None,
        *,
        in_place: bool = False,
    ) -> None:
        self.store = store if store is not None else MemoryStore()
        self.clock = clock if clock is not None else FakeClock()
        self.in_place = in_place
        self.specs: dict[str, BranchSpec] = {}
        self.outcomes: dict[str, BranchOutcome] = {}
        self.aborted: dict[str, CheckpointError] = {}
        self.suspensions: list[OperationUpdate] = []
        self.runs = 0
        self.replays = 0
        self.step_executions = 0
        self._runnable: deque[str] = deque()
        self._timers: dict[str, float] = {}
        self._batches: dict[tuple[str, str], _Batch] = {}
        self._batch_of: dict[str, _Batch] = {}

    # -- BranchHost -------------------------------------------------------------------

    def checkpoint(self, update: Update, *, sync: bool) -> None:
        # Sync or not, the fake applies at once: nothing is ever pending here.
        self._commit([update])

    def suspend(self, op: OperationUpdate) -> bytes | None:
        self.suspensions.append(op)
        if self.in_place:
            return self._resume_in_place(op)
        self._commit([op, BranchUpdate(op.execution_id, op.branch_id, BranchStatus.SUSPENDED)])
        if op.kind is OpKind.CHILDREN:
            batch = self._batches[(op.branch_id, op.op_id)]
            if batch.progress.finished:  # ended before the parent parked: resume at once
                self._enqueue(op.branch_id)
        else:
            self._timers[op.branch_id] = op.due_at if op.due_at is not None else self.now()
        raise BranchSuspended(op)

    def start_children(
        self,
        parent: OperationUpdate,
        children: Sequence[BranchSpec],
        *,
        max_concurrency: int | None,
        completion: Completion,
    ) -> None:
        key = (parent.branch_id, parent.op_id)
        if key in self._batches:
            return  # a replay announcing the batch again
        self._commit([
            BranchUpdate(c.execution_id, c.branch_id, BranchStatus.PENDING, c.parent_branch_id,
                         c.parent_op_id, c.index, input=self.serialize(c.input))
            for c in children
            if c.branch_id not in self.store.branches
        ])
        batch = _Batch(parent, BatchProgress(len(children), completion), deque(children),
                       max_concurrency, children=[c.branch_id for c in children])
        self._batches[key] = batch
        for child in children:
            self.specs[child.branch_id] = child
            self._batch_of[child.branch_id] = batch
        self._start_more(batch)

    def now(self) -> float:
        return self.clock.time()

    def serialize(self, obj: object) -> bytes:
        return pickle.dumps(obj)

    def deserialize(self, data: bytes) -> Any:
        return pickle.loads(data)

    # -- driving, for tests -------------------------------------------------------------

    def start(
        self,
        branch_cls: type[BranchActor],
        item: Any = None,
        *,
        branch_id: str = "branch",
        execution_id: str = "execution",
    ) -> BranchSpec:
        """Create a top-level branch and queue it; ``run_until_idle`` runs it."""
        spec = BranchSpec(execution_id, branch_id, branch_cls, item)
        self._commit([BranchUpdate(execution_id, branch_id, BranchStatus.PENDING,
                                   input=self.serialize(item))])
        self.specs[branch_id] = spec
        self._enqueue(branch_id)
        return spec

    def run_until_idle(self) -> None:
        """Run queued branches, and timers already due, until nothing is left to run."""
        while self._run_next():
            pass

    def advance(self, seconds: float) -> None:
        """Move the clock, then run every branch whose timer is due."""
        self.clock.advance(seconds)
        self.run_until_idle()

    def replay(self, branch_id: str) -> BranchOutcome:
        """Run ``branch_id`` again from its log now, as a restarted worker would."""
        self.aborted.pop(branch_id, None)
        self._timers.pop(branch_id, None)
        self._run(branch_id)
        self.run_until_idle()
        return self.outcomes[branch_id]

    def children_of(self, branch_id: str, op_id: str) -> list[str]:
        """The child branch ids of the batch started by ``op_id`` of ``branch_id``."""
        return list(self._batches[(branch_id, op_id)].children)

    # -- internals ------------------------------------------------------------------------

    def _commit(self, updates: Sequence[Update]) -> None:
        if not updates:
            return
        try:
            self.store.commit(updates, (), self.clock.time())
        except Exception as exc:
            raise CheckpointError(f"the store failed: {exc!r}", exc) from exc

    def _enqueue(self, branch_id: str) -> None:
        if branch_id not in self._runnable:
            self._runnable.append(branch_id)

    def _run_next(self) -> bool:
        if not self._runnable:
            now = self.clock.time()
            for branch_id, due in sorted(self._timers.items(), key=lambda t: t[1]):
                if due <= now:
                    del self._timers[branch_id]
                    self._enqueue(branch_id)
        if not self._runnable:
            return False
        self._run(self._runnable.popleft())
        return True

    def _run(self, branch_id: str) -> None:
        self.runs += 1
        if self.runs > _MAX_RUNS:
            raise RuntimeError(f"more than {_MAX_RUNS} branch runs: the test is looping")
        spec, log = self.specs[branch_id], self.store.read_log(branch_id)
        try:
            if is_async_branch(spec.branch_cls):
                outcome = _on_a_loop(run_branch_async(spec, log, _AwaitingHost(self)))
            else:
                outcome = run_branch(spec, log, self)
        except CheckpointError as err:
            self.aborted[branch_id] = err
            return
        self.outcomes[branch_id] = outcome
        self.replays += outcome.replayed
        self.step_executions += outcome.step_executions
        batch = self._batch_of.get(branch_id)
        if batch is not None and outcome.status is not BranchStatus.SUSPENDED:
            self._child_ended(batch, self.specs[branch_id], outcome)

    def _start_more(self, batch: _Batch) -> None:
        while batch.waiting and not batch.progress.finished and (
            batch.max_concurrency is None or batch.running < batch.max_concurrency
        ):
            child = batch.waiting.popleft()
            batch.progress.start(child.index)
            batch.running += 1
            self._enqueue(child.branch_id)

    def _child_ended(self, batch: _Batch, child: BranchSpec, outcome: BranchOutcome) -> None:
        if batch.progress.finished:
            return  # a straggler of a batch that already ended
        batch.running -= 1
        if outcome.status is BranchStatus.SUCCEEDED:
            batch.progress.succeed(child.index, outcome.result)
        else:
            batch.progress.fail(child.index, outcome.error or RuntimeError("failed"))
        if not batch.progress.finished:
            self._start_more(batch)
            return
        batch.payload = self.serialize(batch.progress.result())
        parent = batch.parent
        self._commit([OperationUpdate(parent.execution_id, parent.branch_id, parent.op_id,
                                      parent.kind, parent.name, OpStatus.SUCCEEDED,
                                      payload=batch.payload)])
        if not batch.in_place:
            self._enqueue(parent.branch_id)

    def _resume_in_place(self, op: OperationUpdate) -> bytes | None:
        if op.kind is not OpKind.CHILDREN:
            if op.due_at is not None and op.due_at > self.clock.time():
                self.clock.advance(op.due_at - self.clock.time())
            return None
        batch = self._batches[(op.branch_id, op.op_id)]
        batch.in_place = True
        while not batch.progress.finished:
            # A fresh context: the parked parent's op_id must not leak into its children's events.
            if not contextvars.Context().run(self._run_next):
                raise RuntimeError(f"children {op.name!r} cannot finish: nothing left to run")
        return batch.payload


class _AwaitingHost:
    """An ``InlineHost`` as an ``AsyncBranchHost``: every call is answered at once, as there."""

    def __init__(self, host: InlineHost) -> None:
        self._host = host

    async def checkpoint(self, update: Update, *, sync: bool) -> None:
        self._host.checkpoint(update, sync=sync)

    async def suspend(self, op: OperationUpdate) -> bytes | None:
        return self._host.suspend(op)

    async def start_children(self, parent: OperationUpdate, children: Sequence[BranchSpec], *,
                             max_concurrency: int | None, completion: Completion) -> None:
        self._host.start_children(parent, children, max_concurrency=max_concurrency,
                                  completion=completion)

    async def call_blocking(self, fn: Callable[[], T]) -> T:
        return await wait_in_thread(fn, _on_a_new_thread)

    def now(self) -> float:
        return self._host.now()

    def serialize(self, obj: object) -> bytes:
        return self._host.serialize(obj)

    def deserialize(self, data: bytes) -> Any:
        return self._host.deserialize(data)


def _on_a_new_thread(task: Callable[[], None]) -> None:
    threading.Thread(target=task, name="inline-step", daemon=True).start()


def _on_a_loop(run: Coroutine[Any, Any, T]) -> T:
    """Run ``run`` on a new event loop: here, or, when this thread's loop is busy (an async
    parent parked in place while its children run), on a thread of its own, waited for."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run)
    outcome: list[tuple[bool, Any]] = []

    def in_thread() -> None:
        try:
            outcome.append((True, asyncio.run(run)))
        except BaseException as exc:
            outcome.append((False, exc))

    thread = threading.Thread(target=in_thread, name="inline-loop", daemon=True)
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


__all__ = ["InlineHost"]
