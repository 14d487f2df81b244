"""The coordinator: runs the branches of the executions its system owns.

One actor per system. ``actors.coordinator`` (mixed in) decides which executions
this system runs (creating, claiming, observing, cancelling them, and the lease
rounds); this module runs their branches:

* Dispatching a branch is sending its *empty checkpoint* with a ``LogDelivery``
  reply handle: the checkpoint actor hands the log to a worker. No thread waits,
  so a wave of resumes coalesces into one store call.
* Workers report ``BranchRan``. An evicted branch is resumed by the scheduler
  (``ResumeBranches``), never while its old run has not reported yet; children's
  results go to the scheduler as ``DependencyDone``. ``epoch`` fences reports of
  older runs, and every redispatch of a run that may still be live fences it on
  the workers first (``FenceRuns``): it stops before its next operation.
* When a batch finishes (``Completion`` decides), its ``BatchResult`` is written
  through the checkpoint actor: the execution's result, or the parent's
  ``CHILDREN`` operation; the acknowledgement comes back as ``Durable``, a
  continuation, and only then are waiters answered or the parent resumed.
* A lost process is recovered from: a worker (its runs replay elsewhere), the
  checkpoint actor (every live run is fenced and dispatched again), the
  scheduler (the timers of evicted branches are given again).
"""

from __future__ import annotations

import heapq
import itertools
import pickle
import time
from collections.abc import Callable, Sequence
from typing import Any

import pykka

from actors import tracelog
from actors.branches._spec import BranchSpec
from actors.branches._stored_errors import encode_error
from actors.bundles import Bundle
from actors.clock import Clock, SystemClock, Tick, Ticker
from actors.coordinator._batches import Batch, BranchState, ExecutionMode, TrackedBranch, seed
from actors.coordinator._lease_keeper import LeaseKeeper
from actors.coordinator._lifecycle import ExecutionLifecycle
from actors.coordinator._spans import record_end
from actors.errors import LeaseLostError, StepFailedError
from actors.policies import BatchProgress, BatchResult, BatchStatus
from actors.protocol._checkpoint import Checkpoint, Checkpoints, DropLease, HoldLeases, WatchFaults
from actors.protocol._coordinator import (
    Answered,
    AwaitResult,
    BranchAborted,
    BranchRan,
    CancelExecution,
    CheckpointLost,
    CurrentFault,
    DeleteExecution,
    DescribeExecution,
    Durable,
    ResumeBranches,
    RetryExecution,
    RetryFinish,
    SchedulerLost,
    StartChildren,
    StartExecution,
    StoreChanged,
    StoreFault,
    SystemFault,
    Wire,
    WorkerBack,
    WorkerLost,
)
from actors.protocol._handles import Forward, LogDelivery
from actors.protocol._scheduler import DependencyDone, ScheduleResume
from actors.protocol._worker import FenceRuns, RunsFrom
from actors.records._leases import held_epochs
from actors.records._status import BranchStatus, ExecutionStatus, OpKind, OpStatus
from actors.records._updates import BranchUpdate, ExecutionUpdate, OperationUpdate
from actors.refs._fork_snapshot import unserializable_cause
from actors.replies import ActorLike
from actors.store._contract import Store

log = tracelog.get_logger("actors.execution")

_FINISH_RETRY = 1.0  # seconds before a batch result whose write failed is written again


class CoordinatorActor(ExecutionLifecycle, pykka.ThreadingActor):
    """Coordinates executions; see the module docstring.

        coordinator = CoordinatorActor.start(checkpoint=ckpt, reader=store, executor="svc-1")
        coordinator.tell(Wire(self_ref=coordinator, workers=(worker,), scheduler=scheduler))

    ``executor`` is this system's executor id (the checkpoint actor must hold
    leases for the same one); ``epoch_base`` starts run epochs above those of an
    earlier coordinator of the same system (a restart after a failure).
    """

    def __init__(
        self,
        *,
        checkpoint: ActorLike,
        reader: Store,
        clock: Clock | None = None,
        serialize: Callable[[object], bytes] = pickle.dumps,
        deserialize: Callable[[bytes], Any] = pickle.loads,
        executor: str = "local",
        lease_seconds: float = 10.0,
        recover: bool = True,
        poll_interval: float = 0.25,
        epoch_base: int = 0,
    ) -> None:
        super().__init__()
        self._checkpoint = checkpoint
        self._reader = reader
        self._clock = clock or SystemClock()
        self._serialize = serialize
        self._deserialize = deserialize
        self._executor = executor
        self._keeper = LeaseKeeper(self._clock, lease_seconds=lease_seconds, recover=recover)
        self._poll_interval = poll_interval
        self._epoch = epoch_base  # run epochs grow across every branch: a floor fences them all
        self._wiring: Wire | None = None  # its own ref, the workers' and the scheduler's
        self._load: list[int] = []
        self._down: set[int] = set()  # workers lost and not back yet: nothing is sent to them
        self._executions = {}
        self._batches: dict[str, Batch] = {}
        self._branches: dict[str, TrackedBranch] = {}
        self._faults: dict[str, BaseException] = {}
        self._ticker: Ticker | None = None
        self._retries: list[tuple[float, str, int]] = []  # (when, branch, epoch) after an abort
        self._finish_retries: list[tuple[float, str, int]] = []  # (when, batch key, serial)
        self._batch_serials = itertools.count(1)
        self._wave: list[Checkpoint] = []  # dispatches of the message being handled
        self._init_lifecycle()

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
            if self._wiring is not None:
                self._maybe_renew()
                self._rearm()

    def _to_checkpoint(self, message: Any) -> None:
        """Tell the checkpoint actor; if it cannot take it (gone, past its restarts), every
        reply handle in the message is failed here, so that its continuation still runs."""
        try:
            self._checkpoint.tell(message)
        except (pykka.ActorDeadError, pykka.Timeout) as exc:
            log.warning("checkpoint.unsent", message=type(message).__name__, error=repr(exc))
            items = message.items if isinstance(message, Checkpoints) else (message,)
            for item in items:
                reply_to = getattr(item, "reply_to", None)
                if reply_to is not None:
                    try:
                        reply_to.set_exception((type(exc), exc, None))
                    except Exception as err:
                        log.warning("checkpoint.unsent_reply_failed", error=repr(err))

    def _to_scheduler(self, message: Any) -> None:
        """Tell the scheduler; one that is gone is given everything again when it is back."""
        try:
            self._wired().scheduler.tell(message)
        except (pykka.ActorDeadError, pykka.Timeout) as exc:
            log.warning("scheduler.unsent", message=type(message).__name__, error=repr(exc))

    def _send_dispatches(self) -> None:
        """Send the empty checkpoints of this message's dispatches as one message (a wave)."""
        wave, self._wave = self._wave, []
        if len(wave) == 1:
            self._to_checkpoint(wave[0])
        elif wave:
            self._to_checkpoint(Checkpoints(tuple(wave)))

    def _rearm(self) -> None:
        if self._ticker is None:
            return
        times = [self._keeper.wake_time(), self._next_poll(), self._next_deadline()]
        if self._retries:
            times.append(self._retries[0][0])
        if self._finish_retries:
            times.append(self._finish_retries[0][0])
        found = [t for t in times if t is not None]
        self._ticker.wake_at(min(found) if found else None)

    # -- wiring ------------------------------------------------------------------------

    def _wired(self) -> Wire:
        if self._wiring is None or not self._wiring.workers:
            raise RuntimeError("the coordinator is not wired: send Wire(...) with workers first")
        return self._wiring

    def _wire(self, message: Wire) -> None:
        self._wiring = message
        self._load = [0] * len(message.workers)
        self._to_checkpoint(WatchFaults(message.self_ref))
        # The writer holds what this coordinator holds: nothing yet. Executions this
        # executor owned before (an earlier life, a failed coordinator) are claimed
        # again at a new epoch by the first lease round, and resumed.
        self._to_checkpoint(HoldLeases(held_epochs(self._keeper.held)))
        # Workers hold their runs until told which are current: none from before this
        # coordinator (a restarted coordinator's runs start at a new epoch base).
        self._workers_tell(RunsFrom(self._peek_epoch()))

    def _workers_tell(self, message: Any) -> None:
        for index in range(len(self._wired().workers)):
            self._tell_worker(index, message)

    def _tell_worker(self, index: int, message: Any) -> None:
        try:
            self._wired().workers[index].tell(message)
        except Exception as exc:  # a worker being restarted: told again when it is back
            log.warning("worker.tell_failed", message=type(message).__name__,
                        worker=index, error=repr(exc))

    # -- batches ------------------------------------------------------------------------

    def _new_batch(self, key: str, eid: str, specs: Sequence[BranchSpec], completion: Any,
                   max_concurrency: int | None, parent: OperationUpdate | None = None) -> Batch:
        batch = Batch(key, eid, parent, BatchProgress(len(specs), completion),
                      [s.branch_id for s in specs], max_concurrency,
                      serial=next(self._batch_serials))
        self._batches[key] = batch
        for spec in specs:
            self._branches[spec.branch_id] = TrackedBranch(spec, batch)
            batch.waiting.append(spec.branch_id)
        return batch

    def _seed(self, batch: Batch, records: dict[str, Any]) -> None:
        seed(batch, self._branches, records, self._deserialize)

    def _reload_timers(self, batch: Batch) -> int:
        """Branches evicted on a timer that is not due yet wait for it, not for a replay now.

        The store's pending timers decide, not the branch rows: a row's status is written
        by the worker and the scheduler, whose updates may reach the store in either order.
        """
        now, reloaded = self._clock.time(), 0
        pending = {op.branch_id: op for op in self._reader.read_due_timers(batch.execution_id)
                   if (op.due_at or 0.0) > now}
        for branch_id in list(batch.waiting):
            timer = pending.get(branch_id)
            if timer is None or timer.due_at is None:
                continue
            branch = self._branches[branch_id]
            branch.epoch = self._new_epoch()
            batch.waiting.remove(branch_id)
            batch.running += 1
            batch.progress.start(branch.spec.index)
            branch.state = BranchState.SUSPENDED
            branch.suspended_on = _timer_update(timer)
            self._to_scheduler(ScheduleResume(branch_id, branch.epoch, timer.op_id, timer.due_at))
            reloaded += 1
        return reloaded

    def _start_children(self, message: StartChildren) -> None:
        parent = message.parent
        key = f"{parent.branch_id}/{parent.op_id}"
        tracked = self._executions.get(parent.execution_id)
        if key in self._batches or tracked is None or not tracked.active:
            return  # a replay announcing the same batch again, or a stale run's
        batch = self._new_batch(key, parent.execution_id, message.specs, message.completion,
                                message.max_concurrency, parent)
        batch.trace = message.trace if tracked.trace is not None else None
        stored = {b.branch_id: b for b in self._reader.read_branches(parent.execution_id)
                  if b.parent_branch_id == parent.branch_id}
        self._seed(batch, stored)
        self._after_change(batch)

    # -- dispatching ------------------------------------------------------------------

    def _after_change(self, batch: Batch) -> None:
        if batch.progress.finished:
            if not batch.finishing:  # a branch that ends after its batch finished adds nothing
                self._finish(batch)
        else:
            self._start_more(batch)

    def _runs(self, execution_id: str) -> bool:
        tracked = self._executions.get(execution_id)
        return tracked is not None and tracked.active and not tracked.cancelling

    def _start_more(self, batch: Batch) -> None:
        if not self._runs(batch.execution_id):
            return
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
        if not self._runs(branch.spec.execution_id):
            return
        branch.epoch = self._new_epoch()
        live = [w for w in range(len(self._load)) if w not in self._down]
        if not live:  # every worker is being restarted: try again in a moment
            branch.state = BranchState.ABORTED
            heapq.heappush(self._retries, (self._clock.time() + 0.2, branch_id, branch.epoch))
            return
        branch.state = BranchState.DISPATCHED
        branch.suspended_on = None
        worker = min(live, key=self._load.__getitem__)
        self._load[worker] += 1
        branch.worker = worker
        trace = branch.batch.trace
        delivery = LogDelivery(wiring.workers[worker], wiring.self_ref, branch.spec, branch.epoch,
                               trace)
        # The epoch sets the branch's fence: writes of any older run of it are refused.
        self._wave.append(Checkpoint(branch_id, None, reply_to=delivery,
                                     epoch=branch.epoch, trace=trace))

    def _new_epoch(self) -> int:
        self._epoch += 1
        return self._epoch

    def _peek_epoch(self) -> int:
        """The epoch the next run will get: every run before it is older."""
        return self._epoch + 1

    def _redispatch(self, branch_ids: Sequence[str]) -> None:
        """Dispatch runs that may still be live elsewhere: fence those copies first."""
        if not branch_ids:
            return
        for branch_id in branch_ids:
            self._release(self._branches[branch_id])
            self._dispatch(branch_id)
        fences = tuple((b, self._branches[b].epoch) for b in branch_ids)
        self._workers_tell(FenceRuns(branches=fences))

    def _current(self, branch_id: str, epoch: int) -> TrackedBranch | None:
        branch = self._branches.get(branch_id)
        if branch is None or branch.epoch != epoch or branch.state is not BranchState.DISPATCHED:
            log.info("branch.stale_report", branch_id=branch_id, epoch=epoch)
            return None
        self._release(branch)
        return branch

    def _release(self, branch: TrackedBranch) -> None:
        """The branch no longer counts towards its worker's load (its run ended or was lost)."""
        if branch.worker is not None:
            self._load[branch.worker] -= 1
            branch.worker = None

    def _branch_ran(self, message: BranchRan, current: TrackedBranch | None = None) -> None:
        branch = current or self._current(message.branch_id, message.epoch)
        if branch is None:
            return
        if message.status is BranchStatus.SUSPENDED:
            self._suspended(branch, message.suspended_on)
            return
        branch.state = BranchState.DONE
        batch = branch.batch
        batch.running -= 1
        if message.status is BranchStatus.SUCCEEDED:
            batch.progress.succeed(branch.spec.index, message.result)
        else:
            batch.progress.fail(branch.spec.index, message.error or RuntimeError("branch failed"))
        self._after_change(batch)

    def _suspended(self, branch: TrackedBranch, op: OperationUpdate | None) -> None:
        """Evicted: the scheduler resumes it (``ResumeBranches``) when its wait is over."""
        branch.state = BranchState.SUSPENDED
        branch.suspended_on = op
        if branch.resume_pending:  # the scheduler resumed it before this eviction report came
            branch.resume_pending = False
            self._dispatch(branch.spec.branch_id)

    def _resume_branches(self, message: ResumeBranches) -> None:
        for branch_id, epoch in message.branches:
            branch = self._branches.get(branch_id)
            if branch is None:
                log.info("resume.unknown_branch", branch_id=branch_id)
            elif branch.state is BranchState.SUSPENDED:
                self._dispatch(branch_id)
            elif branch.state is BranchState.DISPATCHED and branch.epoch == epoch:
                branch.resume_pending = True  # live until its run reports; never two copies

    def _aborted(self, message: BranchAborted) -> None:
        branch = self._current(message.branch_id, message.epoch)
        if isinstance(message.error, LeaseLostError):
            self._keeper.failed()  # ask the store who owns it now: a round at once
        if branch is None:
            return
        unserializable = unserializable_cause(message.error)
        if unserializable is not None:
            # A saved value its forked snapshot could not serialize: a replay would save it
            # again and fail the same way, so the branch fails instead of retrying for ever.
            log.error("branch.failed_unserializable", branch_id=message.branch_id,
                      error=str(unserializable))
            self._to_checkpoint(Checkpoint(message.branch_id, BranchUpdate(
                branch.spec.execution_id, message.branch_id, BranchStatus.FAILED,
                error=encode_error(unserializable, self._serialize), epoch=branch.epoch)))
            self._branch_ran(BranchRan(message.branch_id, branch.epoch, BranchStatus.FAILED,
                                       error=unserializable), current=branch)
            return
        branch.aborts += 1
        branch.state = BranchState.ABORTED
        delay = min(30.0, 0.05 * 2 ** min(branch.aborts, 10))
        log.warning("branch.retry_after_abort", branch_id=message.branch_id,
                    error=repr(message.error), attempt=branch.aborts, delay=delay)
        heapq.heappush(self._retries, (self._clock.time() + delay, message.branch_id, branch.epoch))

    def _tick(self, message: Tick) -> None:
        """Retry aborted runs and unwritten results; lease rounds, deadlines, observers."""
        now = self._clock.time()
        while self._retries and self._retries[0][0] <= now:
            _, branch_id, epoch = heapq.heappop(self._retries)
            branch = self._branches.get(branch_id)
            if branch is not None and branch.epoch == epoch and (
                    branch.state is BranchState.ABORTED):
                self._dispatch(branch_id)
        while self._finish_retries and self._finish_retries[0][0] <= now:
            _, key, serial = heapq.heappop(self._finish_retries)
            batch = self._batches.get(key)
            if batch is not None and batch.serial == serial and not batch.result_durable:
                self._finish(batch)
        self._check_deadlines()
        self._poll_observed()

    def _checkpoint_lost(self, message: CheckpointLost) -> None:
        """Acknowledgements it held will never come: dispatch and write again what was in flight.

        A branch counted as running may in fact still run, or wait in a worker's queue;
        it is fenced on the workers and dispatched under a new epoch, so that it stops
        before its next operation and is live in one place only.
        """
        # It restarted empty; what it took again meanwhile (a round sent before this) stays.
        self._to_checkpoint(HoldLeases(held_epochs(self._keeper.held), keep_newer=True))
        self._ask_desk_again()
        live = [b for b, branch in self._branches.items()
                if branch.state is BranchState.DISPATCHED]
        self._redispatch(live)
        for branch_id, branch in self._branches.items():  # it is back: no need to wait
            if branch.state is BranchState.ABORTED:
                self._dispatch(branch_id)
        for batch in self._batches.values():
            if batch.finishing and not batch.result_durable:
                self._finish(batch)
        log.warning("checkpoint.lost", redispatched=len(live))

    def _worker_back(self, message: WorkerBack) -> None:
        """A restarted worker runs nothing dispatched to its previous process (each of those
        was dispatched again elsewhere when it died), then takes new runs."""
        index = int(message.worker_id)
        self._tell_worker(index, RunsFrom(self._peek_epoch()))
        self._down.discard(index)

    def _worker_lost(self, message: WorkerLost) -> None:
        index = int(message.worker_id)
        self._down.add(index)
        for branch_id, branch in self._branches.items():
            if branch.state is BranchState.DISPATCHED and branch.worker == index:
                self._release(branch)
                log.warning("branch.worker_lost", branch_id=branch_id, worker=index)
                self._dispatch(branch_id)  # replays from its log on another run

    def _scheduler_lost(self, message: SchedulerLost) -> None:
        """The scheduler restarted empty: give it the evicted branches' timers again.

        A branch evicted on a timer waits for it again (one already due fires at once);
        one evicted on a dependency (children, a callback) is replayed, which finds the
        dependency done or suspends on it again. Parked runs lose their scheduler's
        answer and abort, and are dispatched again like any aborted run.
        """
        timers = 0
        replay = []
        for branch_id, branch in self._branches.items():
            if branch.state is not BranchState.SUSPENDED:
                continue
            op = branch.suspended_on
            if op is not None and op.due_at is not None and op.kind is not OpKind.CALLBACK:
                self._to_scheduler(ScheduleResume(branch_id, branch.epoch, op.op_id, op.due_at))
                timers += 1
            else:
                replay.append(branch_id)
        for branch_id in replay:
            self._dispatch(branch_id)
        log.warning("scheduler.lost", timers=timers, replayed=len(replay))

    # -- finishing ------------------------------------------------------------------------

    def _finish(self, batch: Batch) -> None:
        """Write the batch's result (again, after a failed write or a lost checkpoint actor)."""
        if not self._runs(batch.execution_id):
            return
        batch.finishing = True
        result = batch.progress.result()
        payload = self._serialize_result(result)
        batch.result_payload = payload
        if batch.parent is None:
            failed = result.status is BatchStatus.FAILURE_TOLERANCE_EXCEEDED
            status = ExecutionStatus.FAILED if failed else ExecutionStatus.SUCCEEDED
            update: Any = ExecutionUpdate(batch.execution_id, status, result=payload)
            what = ("execution", batch.key, status.value, batch.serial)
        else:
            p = batch.parent
            update = OperationUpdate(p.execution_id, p.branch_id, p.op_id, OpKind.CHILDREN, p.name,
                                     OpStatus.SUCCEEDED, attempt=p.attempt, payload=payload)
            what = ("children", batch.key, "", batch.serial)
        branch_id = batch.key if batch.parent is None else batch.parent.branch_id
        self._to_checkpoint(Checkpoint(branch_id, update,
                                         reply_to=Forward(self._wired().self_ref, *what)))
        if batch.parent is not None:
            # A parent still parked may go on now; an evicted one waits for the durable word.
            parent = batch.parent
            early = DependencyDone(parent.branch_id, parent.op_id, payload, durable=False)
            self._to_scheduler(early)

    def _serialize_result(self, result: BatchResult) -> bytes:
        try:
            return self._serialize(result)
        except Exception:  # an error that cannot be kept: keep its name and text instead
            errors = tuple(None if e is None else StepFailedError(str(e), type(e).__qualname__)
                           for e in result.errors)
            return self._serialize(BatchResult(result.results, errors, result.statuses,
                                               result.status))

    def _durable(self, message: Durable) -> None:
        kind, key, status, serial = message.what
        batch = self._batches.get(key)
        if batch is None or batch.serial != serial:
            return  # its execution was cancelled, lost or retried meanwhile: not this batch's
        if message.error is not None:
            if isinstance(message.error, LeaseLostError):
                self._lose(batch.execution_id,
                           self._reader.read_execution(batch.execution_id))
                return
            # Nobody is told the batch ended until its result is durable; try again later.
            log.error("batch.result_not_durable", batch=key, error=repr(message.error))
            heapq.heappush(self._finish_retries,
                           (self._clock.time() + _FINISH_RETRY, key, batch.serial))
            return
        batch.result_durable = True
        if kind == "execution":
            execution = self._executions[key]
            execution.mode = ExecutionMode.FINISHED
            execution.status = ExecutionStatus(status)
            execution.result = batch.progress.result()
            record_end(execution.trace, execution.status, execution.result,
                       execution.trace_events, time.time_ns())
            execution.trace = None
            self._keeper.drop(key)
            self._to_checkpoint(DropLease(key))
            log.info("execution.finished", execution_id=key, status=status)
            self._answer_waiters(execution)
        elif batch.parent is not None:
            # The scheduler resumes the parent once: in place if parked, else by replay.
            parent = batch.parent
            self._to_scheduler(DependencyDone(parent.branch_id, parent.op_id,
                                                        batch.result_payload))


def _timer_update(record: Any) -> OperationUpdate:
    return OperationUpdate(record.execution_id, record.branch_id, record.op_id, record.kind,
                           record.name, record.status, due_at=record.due_at)


def _retry_finish(actor: CoordinatorActor, message: RetryFinish) -> None:
    batch = actor._batches.get(message.batch_key)
    if batch is not None and batch.finishing and not batch.result_durable:
        actor._finish(batch)


def _bundle(actor: CoordinatorActor, message: Bundle) -> None:
    """Reports answered together (one checkpoint batch): handled in order; one dispatch wave."""
    for item in message.items:
        handler = _HANDLERS.get(type(item))
        if handler is None:
            log.warning("coordinator.unexpected_message", message=type(item).__name__)
        else:
            handler(actor, item)


_HANDLERS: dict[type, Callable[[CoordinatorActor, Any], Any]] = {
    RetryFinish: _retry_finish,
    Bundle: _bundle,
    ResumeBranches: CoordinatorActor._resume_branches,
    Wire: CoordinatorActor._wire,
    StartExecution: CoordinatorActor._start_execution,
    StartChildren: CoordinatorActor._start_children,
    BranchRan: CoordinatorActor._branch_ran,
    BranchAborted: CoordinatorActor._aborted,
    Tick: CoordinatorActor._tick,
    CheckpointLost: CoordinatorActor._checkpoint_lost,
    WorkerLost: CoordinatorActor._worker_lost,
    WorkerBack: CoordinatorActor._worker_back,
    SchedulerLost: CoordinatorActor._scheduler_lost,
    Durable: CoordinatorActor._durable,
    AwaitResult: CoordinatorActor._await,
    DescribeExecution: CoordinatorActor._describe,
    Answered: CoordinatorActor._answered,
    CancelExecution: CoordinatorActor._cancel,
    RetryExecution: CoordinatorActor._retry,
    DeleteExecution: CoordinatorActor._delete,
    CurrentFault: CoordinatorActor._fault_of,
    StoreFault: CoordinatorActor._store_fault,
    SystemFault: CoordinatorActor._system_fault,
    StoreChanged: CoordinatorActor._store_changed,
}
