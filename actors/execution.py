"""The coordinator: creates executions, dispatches branches to workers, keeps batches and timers.

One actor owns the whole life of every execution of a system:

* ``StartExecution`` writes the execution and its branches (create-only, so a
  restart never resets a finished branch) and dispatches them within
  ``max_concurrency``; a stored execution is resumed, a finished one answered.
* Dispatching a branch is sending its *empty checkpoint* with a ``LogDelivery``
  reply handle: the checkpoint actor hands the log to a worker. No thread waits,
  so a wave of resumes coalesces into one store call.
* Workers report ``BranchRan``. An evicted branch is resumed by the scheduler
  (``ResumeBranches``), never while its old run has not reported yet; children's
  results go to the scheduler as ``DependencyDone``. ``epoch`` fences reports of
  older runs. This actor's own timer thread only retries aborted runs.
* When a batch finishes (``Completion`` decides), its ``BatchResult`` is written
  through the checkpoint actor: the execution's result, or the parent's
  ``CHILDREN`` operation; the acknowledgement comes back as ``Durable``, a
  continuation, and only then are waiters answered or the parent resumed.
"""

from __future__ import annotations

import heapq
import pickle
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pykka

from actors import tracelog
from actors.batches import Batch, TrackedBranch, TrackedExecution, describe, seed
from actors.branch import BranchSpec, encode_error
from actors.clock import Clock, SystemClock, Ticker
from actors.errors import DurableActorsError, StepFailedError
from actors.fork_snapshot import unserializable_cause
from actors.messages import (
    ActorLike,
    AwaitResult,
    BranchAborted,
    BranchRan,
    BranchStatus,
    BranchUpdate,
    Bundle,
    Checkpoint,
    CheckpointLost,
    Checkpoints,
    DependencyDone,
    DescribeExecution,
    Durable,
    ExecutionStatus,
    ExecutionUpdate,
    Forward,
    LogDelivery,
    OperationUpdate,
    OpKind,
    OpStatus,
    ResumeBranches,
    RetryFinish,
    ScheduleResume,
    StartChildren,
    StartExecution,
    Tick,
    Wire,
    WorkerLost,
)
from actors.policies import BatchProgress, BatchResult, BatchStatus
from actors.store import Store

log = tracelog.get_logger("actors.execution")


class UnknownExecutionError(DurableActorsError, KeyError):
    """No execution with this id is known to the system or its store."""


class ExecutionActor(pykka.ThreadingActor):
    """Coordinates executions; see the module docstring.

        coordinator = ExecutionActor.start(checkpoint=ckpt, reader=store)
        coordinator.tell(Wire(self_ref=coordinator, workers=(worker,), scheduler=scheduler))
    """

    def __init__(
        self,
        *,
        checkpoint: ActorLike,
        reader: Store,
        clock: Clock | None = None,
        serialize: Callable[[object], bytes] = pickle.dumps,
        deserialize: Callable[[bytes], Any] = pickle.loads,
    ) -> None:
        super().__init__()
        self._checkpoint = checkpoint
        self._reader = reader
        self._clock = clock or SystemClock()
        self._serialize = serialize
        self._deserialize = deserialize
        self._wiring: Wire | None = None  # its own ref, the workers' and the scheduler's
        self._load: list[int] = []
        self._executions: dict[str, TrackedExecution] = {}
        self._batches: dict[str, Batch] = {}
        self._branches: dict[str, TrackedBranch] = {}
        self._ticker: Ticker | None = None
        self._retries: list[tuple[float, str, int]] = []  # (when, branch, epoch) after an abort
        self._wave: list[Checkpoint] = []  # dispatches of the message being handled

    def on_start(self) -> None:
        self._ticker = Ticker(self._clock, self._tell_tick, "coordinator-ticker")

    def _tell_tick(self) -> None:
        self.actor_ref.tell(Tick())

    def on_stop(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()

    def on_receive(self, message: Any) -> Any:
        handler = _HANDLERS.get(type(message))
        if handler is None:
            return super().on_receive(message)
        try:
            return handler(self, message)
        finally:
            self._send_dispatches()

    def _send_dispatches(self) -> None:
        """Send the empty checkpoints of this message's dispatches as one message (a wave)."""
        wave, self._wave = self._wave, []
        if len(wave) == 1:
            self._checkpoint.tell(wave[0])
        elif wave:
            self._checkpoint.tell(Checkpoints(tuple(wave)))

    # -- wiring and queries --------------------------------------------------------

    def _wired(self) -> Wire:
        if self._wiring is None or not self._wiring.workers:
            raise RuntimeError("the coordinator is not wired: send Wire(...) with workers first")
        return self._wiring

    def _wire(self, message: Wire) -> None:
        self._wiring = message
        self._load = [0] * len(message.workers)

    def _describe(self, message: DescribeExecution) -> dict[str, Any]:
        return describe(self._known(message.execution_id), self._branches)

    def _await(self, message: AwaitResult) -> None:
        try:
            execution = self._known(message.execution_id)
        except UnknownExecutionError as exc:
            message.reply_to.set_exception((type(exc), exc, None))
            return
        if execution.result is not None:
            message.reply_to.set(execution.result)
        else:
            execution.waiters.append(message.reply_to)

    def _known(self, execution_id: str) -> TrackedExecution:
        execution = self._executions.get(execution_id)
        if execution is None:
            raise UnknownExecutionError(
                f"no execution {execution_id!r} in this system; start it with map() or parallel()"
            )
        return execution

    # -- starting and resuming --------------------------------------------------------

    def _start_execution(self, message: StartExecution) -> None:
        eid = message.execution_id
        if eid in self._executions:
            done = self._executions[eid].result is not None
            message.reply_to.set("finished" if done else "resumed")
            return
        stored = self._reader.read_execution(eid)
        specs = list(message.specs)
        if stored is None:
            self._create(message, specs)
            return
        if stored.status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED):
            batch = self._new_batch(eid, eid, None, stored.branch_count, message, [])
            result = self._deserialize(stored.result) if stored.result is not None else None
            self._executions[eid] = TrackedExecution(eid, batch, stored.status, result)
            message.reply_to.set("finished")
            return
        self._resume(message, specs, stored.branch_count)
        message.reply_to.set("resumed")

    def _create(self, message: StartExecution, specs: list[BranchSpec]) -> None:
        eid = message.execution_id
        batch = self._new_batch(eid, eid, None, len(specs), message, specs)
        self._executions[eid] = TrackedExecution(eid, batch)
        created = ExecutionUpdate(eid, ExecutionStatus.RUNNING, kind=message.kind,
                                  branch_count=len(specs))
        writes = [Checkpoint(eid, created, sync=False)]
        writes += [
            Checkpoint(spec.branch_id, BranchUpdate(eid, spec.branch_id, BranchStatus.PENDING,
                                                    index=spec.index,
                                                    input=self._serialize(spec.input),
                                                    create_only=True), sync=False)
            for spec in specs
        ]
        # The last write answers the caller: everything before it is durable by then.
        last = writes[-1]
        writes[-1] = Checkpoint(last.branch_id, last.update, sync=True, reply_to=message.reply_to)
        self._checkpoint.tell(Checkpoints(tuple(writes)))  # one message, however many branches
        log.info("execution.created", execution_id=eid, branches=len(specs))
        self._start_more(batch)

    def _resume(self, message: StartExecution, specs: list[BranchSpec], count: int) -> None:
        eid = message.execution_id
        records = [b for b in self._reader.read_branches(eid) if b.parent_branch_id is None]
        by_index = {b.index: b for b in records}
        rebuilt = []
        missing = []
        for index in range(count):
            record = by_index.get(index)
            given = specs[index] if index < len(specs) else None
            cls = given.branch_cls if given is not None else specs[0].branch_cls
            if record is not None:
                item = self._deserialize(record.input) if record.input else None
            else:  # created in a later transaction that a crash cut off: take the caller's
                item = given.input if given is not None else None
                missing.append(BranchSpec(eid, f"{eid}/{index}", cls, item, index))
            rebuilt.append(BranchSpec(eid, f"{eid}/{index}", cls, item, index))
        if missing:
            self._checkpoint.tell(Checkpoints(tuple(
                Checkpoint(m.branch_id, BranchUpdate(eid, m.branch_id, BranchStatus.PENDING,
                                                     index=m.index,
                                                     input=self._serialize(m.input),
                                                     create_only=True), sync=False)
                for m in missing
            )))
        batch = self._new_batch(eid, eid, None, count, message, rebuilt)
        self._executions[eid] = TrackedExecution(eid, batch)
        self._seed(batch, {b.branch_id: b for b in records})
        timers = self._reload_timers(batch)
        log.info("execution.resumed", execution_id=eid, branches=count, timers=timers,
                 finished=batch.progress.total - len(batch.waiting) - timers)
        self._after_change(batch)

    def _reload_timers(self, batch: Batch) -> int:
        """Branches evicted on a timer that is not due yet wait for it, not for a replay now.

        The store's pending timers decide, not the branch rows: a row's status is written
        by the worker and the scheduler, whose updates may reach the store in either order.
        """
        scheduler = self._wired().scheduler
        now, reloaded = self._clock.time(), 0
        pending = {op.branch_id: op for op in self._reader.read_due_timers()
                   if op.execution_id == batch.execution_id and (op.due_at or 0.0) > now}
        for branch_id in list(batch.waiting):
            timer = pending.get(branch_id)
            if timer is None or timer.due_at is None:
                continue
            branch = self._branches[branch_id]
            batch.waiting.remove(branch_id)
            batch.running += 1
            batch.progress.start(branch.spec.index)
            branch.state = "suspended"
            scheduler.tell(ScheduleResume(branch_id, branch.epoch, timer.op_id, timer.due_at))
            reloaded += 1
        return reloaded

    def _new_batch(self, key: str, eid: str, parent: OperationUpdate | None, total: int,
                   source: StartExecution | StartChildren, specs: Sequence[BranchSpec]) -> Batch:
        batch = Batch(key, eid, parent, BatchProgress(total, source.completion),
                       [s.branch_id for s in specs], source.max_concurrency)
        self._batches[key] = batch
        for spec in specs:
            self._branches[spec.branch_id] = TrackedBranch(spec, batch)
            batch.waiting.append(spec.branch_id)
        return batch

    def _seed(self, batch: Batch, records: dict[str, Any]) -> None:
        seed(batch, self._branches, records, self._deserialize)

    def _start_children(self, message: StartChildren) -> None:
        parent = message.parent
        key = f"{parent.branch_id}/{parent.op_id}"
        if key in self._batches:
            return  # a replay announcing the same batch again
        batch = self._new_batch(key, parent.execution_id, parent, len(message.specs), message,
                                message.specs)
        stored = {b.branch_id: b for b in self._reader.read_branches(parent.execution_id)
                  if b.parent_branch_id == parent.branch_id}
        self._seed(batch, stored)
        self._after_change(batch)

    # -- dispatching ------------------------------------------------------------------

    def _after_change(self, batch: Batch) -> None:
        if batch.progress.finished:
            self._finish(batch)
        else:
            self._start_more(batch)

    def _start_more(self, batch: Batch) -> None:
        limit = batch.max_concurrency
        while batch.waiting and not batch.progress.finished and (
            limit is None or batch.running < limit
        ):
            branch_id = batch.waiting.popleft()
            batch.running += 1
            batch.progress.start(self._branches[branch_id].spec.index)
            self._dispatch(branch_id)

    def _dispatch(self, branch_id: str) -> None:
        wiring = self._wired()
        branch = self._branches[branch_id]
        branch.epoch += 1
        branch.state = "dispatched"
        worker = min(range(len(self._load)), key=self._load.__getitem__)
        self._load[worker] += 1
        branch.worker = worker
        delivery = LogDelivery(wiring.workers[worker], wiring.self_ref, branch.spec, branch.epoch)
        # The epoch sets the branch's fence: writes of any older run of it are refused.
        self._wave.append(Checkpoint(branch_id, None, sync=True, reply_to=delivery,
                                     epoch=branch.epoch))

    def _current(self, branch_id: str, epoch: int) -> TrackedBranch | None:
        branch = self._branches.get(branch_id)
        if branch is None or branch.epoch != epoch or branch.state != "dispatched":
            log.info("branch.stale_report", branch_id=branch_id, epoch=epoch)
            return None
        self._release_worker(branch)
        return branch

    def _release_worker(self, branch: TrackedBranch) -> None:
        """The branch no longer counts towards its worker's load (its run ended or was lost)."""
        if branch.worker is not None:
            self._load[branch.worker] -= 1
            branch.worker = None

    def _branch_ran(self, message: BranchRan, current: TrackedBranch | None = None) -> None:
        branch = current or self._current(message.branch_id, message.epoch)
        if branch is None:
            return
        if message.status is BranchStatus.SUSPENDED:
            self._suspended(branch)
            return
        branch.state = "done"
        batch = branch.batch
        batch.running -= 1
        if message.status is BranchStatus.SUCCEEDED:
            batch.progress.succeed(branch.spec.index, message.result)
        else:
            batch.progress.fail(branch.spec.index, message.error or RuntimeError("branch failed"))
        self._after_change(batch)

    def _suspended(self, branch: TrackedBranch) -> None:
        """Evicted: the scheduler resumes it (``ResumeBranches``) when its wait is over."""
        branch.state = "suspended"
        if branch.resume_pending:  # the scheduler resumed it before this eviction report came
            branch.resume_pending = False
            self._dispatch(branch.spec.branch_id)

    def _resume_branches(self, message: ResumeBranches) -> None:
        for branch_id, epoch in message.branches:
            branch = self._branches.get(branch_id)
            if branch is None:
                log.warning("resume.unknown_branch", branch_id=branch_id)
            elif branch.state == "suspended":
                self._dispatch(branch_id)
            elif branch.state == "dispatched" and branch.epoch == epoch:
                branch.resume_pending = True  # live until its run reports; never two copies

    def _aborted(self, message: BranchAborted) -> None:
        branch = self._current(message.branch_id, message.epoch)
        if branch is None:
            return
        unserializable = unserializable_cause(message.error)
        if unserializable is not None:
            # A saved value its forked snapshot could not serialize: a replay would save it
            # again and fail the same way, so the branch fails instead of retrying for ever.
            log.error("branch.failed_unserializable", branch_id=message.branch_id,
                      error=str(unserializable))
            self._checkpoint.tell(Checkpoint(message.branch_id, BranchUpdate(
                branch.spec.execution_id, message.branch_id, BranchStatus.FAILED,
                error=encode_error(unserializable, self._serialize), epoch=branch.epoch),
                sync=False))
            self._branch_ran(BranchRan(message.branch_id, branch.epoch, BranchStatus.FAILED,
                                       error=unserializable), current=branch)
            return
        branch.aborts += 1
        branch.state = "aborted"
        delay = min(30.0, 0.05 * 2 ** min(branch.aborts, 10))
        log.warning("branch.retry_after_abort", branch_id=message.branch_id,
                    error=repr(message.error), attempt=branch.aborts, delay=delay)
        heapq.heappush(self._retries, (self._clock.time() + delay, message.branch_id, branch.epoch))
        if self._ticker is not None:
            self._ticker.wake_at(self._retries[0][0])

    def _tick(self, message: Tick) -> None:
        """Retry the aborted runs whose back-off is over."""
        now = self._clock.time()
        while self._retries and self._retries[0][0] <= now:
            _, branch_id, epoch = heapq.heappop(self._retries)
            branch = self._branches.get(branch_id)
            if branch is not None and branch.epoch == epoch and branch.state == "aborted":
                self._dispatch(branch_id)
        if self._ticker is not None:
            self._ticker.wake_at(self._retries[0][0] if self._retries else None)

    def _checkpoint_lost(self, message: CheckpointLost) -> None:
        """Acknowledgements it held will never come: dispatch and write again what was in flight.

        A branch counted as running may in fact still run; dispatching it under a new
        epoch fences that copy at its next checkpoint, so it is live in one place only.
        """
        for branch_id, branch in self._branches.items():
            if branch.state == "dispatched":
                self._release_worker(branch)
                self._dispatch(branch_id)
        for batch in self._batches.values():
            if batch.progress.finished and not batch.result_durable:
                self._finish(batch)
        log.warning("checkpoint.lost", redispatched=len(self._wave))

    def _worker_lost(self, message: WorkerLost) -> None:
        index = int(message.worker_id)
        for branch_id, branch in self._branches.items():
            if branch.state == "dispatched" and branch.worker == index:
                self._release_worker(branch)
                log.warning("branch.worker_lost", branch_id=branch_id, worker=index)
                self._dispatch(branch_id)  # replays from its log on another run

    # -- finishing ------------------------------------------------------------------------

    def _finish(self, batch: Batch) -> None:
        result = batch.progress.result()
        payload = self._serialize_result(result)
        batch.result_payload = payload
        if batch.parent is None:
            failed = result.status is BatchStatus.FAILURE_TOLERANCE_EXCEEDED
            status = ExecutionStatus.FAILED if failed else ExecutionStatus.SUCCEEDED
            update: Any = ExecutionUpdate(batch.execution_id, status, result=payload)
            what = ("execution", batch.key, status.value)
        else:
            p = batch.parent
            update = OperationUpdate(p.execution_id, p.branch_id, p.op_id, OpKind.CHILDREN, p.name,
                                     OpStatus.SUCCEEDED, attempt=p.attempt, payload=payload)
            what = ("children", batch.key, "")
        branch_id = batch.key if batch.parent is None else batch.parent.branch_id
        self._checkpoint.tell(Checkpoint(branch_id, update, sync=True,
                                         reply_to=Forward(self._wired().self_ref, *what)))
        if batch.parent is not None:
            # A parent still parked may go on now; an evicted one waits for the durable word.
            parent = batch.parent
            early = DependencyDone(parent.branch_id, parent.op_id, payload, durable=False)
            self._wired().scheduler.tell(early)

    def _serialize_result(self, result: BatchResult) -> bytes:
        try:
            return self._serialize(result)
        except Exception:  # an error that cannot be kept: keep its name and text instead
            errors = tuple(None if e is None else StepFailedError(str(e), type(e).__qualname__)
                           for e in result.errors)
            return self._serialize(BatchResult(result.results, errors, result.statuses,
                                               result.status))

    def _durable(self, message: Durable) -> None:
        kind, key, status = message.what
        batch = self._batches[key]
        if message.error is not None:
            # Nobody is told the batch ended until its result is durable; try again later.
            log.error("batch.result_not_durable", batch=key, error=repr(message.error))
            retry = threading.Timer(1.0, self.actor_ref.tell, args=(RetryFinish(key),))
            retry.daemon = True
            retry.start()
            return
        batch.result_durable = True
        if kind == "execution":
            execution = self._executions[key]
            execution.status = ExecutionStatus(status)
            execution.result = batch.progress.result()
            for waiter in execution.waiters:
                waiter.set(execution.result)
            execution.waiters.clear()
            log.info("execution.finished", execution_id=key, status=status)
        elif batch.parent is not None:
            # The scheduler resumes the parent once: in place if parked, else by replay.
            parent = batch.parent
            self._wired().scheduler.tell(DependencyDone(parent.branch_id, parent.op_id,
                                                        batch.result_payload))


def _retry_finish(actor: ExecutionActor, message: RetryFinish) -> None:
    actor._finish(actor._batches[message.batch_key])


def _bundle(actor: ExecutionActor, message: Bundle) -> None:
    """Reports answered together (one checkpoint batch): handled in order; one dispatch wave."""
    for item in message.items:
        handler = _HANDLERS.get(type(item))
        if handler is None:
            log.warning("coordinator.unexpected_message", message=type(item).__name__)
        else:
            handler(actor, item)


_HANDLERS: dict[type, Callable[[ExecutionActor, Any], Any]] = {
    RetryFinish: _retry_finish,
    Bundle: _bundle,
    ResumeBranches: ExecutionActor._resume_branches,
    Wire: ExecutionActor._wire,
    StartExecution: ExecutionActor._start_execution,
    StartChildren: ExecutionActor._start_children,
    BranchRan: ExecutionActor._branch_ran,
    BranchAborted: ExecutionActor._aborted,
    Tick: ExecutionActor._tick,
    CheckpointLost: ExecutionActor._checkpoint_lost,
    WorkerLost: ExecutionActor._worker_lost,
    Durable: ExecutionActor._durable,
    AwaitResult: ExecutionActor._await,
    DescribeExecution: ExecutionActor._describe,
}
