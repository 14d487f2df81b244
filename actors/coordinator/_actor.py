"""The coordinator: the actor that runs the executions its system owns.

One actor per system, composed of parts that share its state
(``CoordinatorCore``) and run on its one thread, one concept a module:

* ``ExecutionStarts`` (``_starts``): create, claim, resume or observe;
* ``ExecutionObserving`` (``_observing``): status, progress, result waiters;
* ``LeaseRounds`` (``_lease_rounds``): renew, lose, take orphans, signals;
* ``ExecutionManagement`` (``_management``): cancel, retry, delete, deadlines;
* ``FaultWatch`` (``_faults``): store and process faults told to callers;
* ``BranchDispatch`` (``_dispatch``): batches, dispatches, run reports;
* ``BatchFinishing`` (``_finishing``): results written, then waiters told;
* ``ProcessRecovery`` (``_recovery``): a lost worker, checkpoint actor, scheduler.

This module routes messages to them, sends what they send (to the checkpoint
actor, the scheduler, the workers) and wakes them on time (``Tick``).
"""

from __future__ import annotations

import heapq
import itertools
import pickle
from collections.abc import Callable
from typing import Any

import pykka

from actors import tracelog
from actors.bundles import Bundle
from actors.clock import Clock, SystemClock, Tick, Ticker
from actors.coordinator._batches import Batch, BranchState, TrackedBranch
from actors.coordinator._continuations import (
    CancelledInStore,
    CancelWritten,
    Claimed,
    Created,
    Deleted,
    Renewed,
    Reopened,
)
from actors.coordinator._dispatch import BranchDispatch
from actors.coordinator._faults import FaultWatch
from actors.coordinator._finishing import BatchFinishing
from actors.coordinator._lease_keeper import LeaseKeeper
from actors.coordinator._lease_rounds import LeaseRounds
from actors.coordinator._management import ExecutionManagement
from actors.coordinator._observing import ExecutionObserving
from actors.coordinator._recovery import ProcessRecovery
from actors.coordinator._starts import ExecutionStarts
from actors.protocol._checkpoint import Checkpoint, Checkpoints, HoldLeases, WatchFaults
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
from actors.protocol._worker import RunsFrom
from actors.records._leases import held_epochs
from actors.replies import ActorLike
from actors.store._contract import Store

log = tracelog.get_logger("actors.execution")


class CoordinatorActor(
    ExecutionStarts,
    ExecutionObserving,
    LeaseRounds,
    ExecutionManagement,
    FaultWatch,
    BranchDispatch,
    BatchFinishing,
    ProcessRecovery,
    pykka.ThreadingActor,
):
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
        self._pending_starts = {}
        self._claiming = {}
        self._requests = {}
        self._request_ids = itertools.count(1)
        self._unloadable = set()
        self._cancel_replies = {}
        self._batches: dict[str, Batch] = {}
        self._branches: dict[str, TrackedBranch] = {}
        self._faults: dict[str, BaseException] = {}
        self._ticker: Ticker | None = None
        self._retries: list[tuple[float, str, int]] = []  # (when, branch, epoch) after an abort
        self._finish_retries: list[tuple[float, str, int]] = []  # (when, batch key, serial)
        self._batch_serials = itertools.count(1)
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

    def _answered(self, message: Answered) -> None:
        """An ``AnswerTo`` request of a part came back: its continuation goes on."""
        value, error = message.value, message.error
        match message.what:
            case (Created(eid),):
                self._created(eid, value, error)
            case (Claimed(eid),):
                self._claimed(eid, value, error)
            case (Renewed(),):
                self._renewed(value, error)
            case (CancelWritten(eid),):
                self._cancel_written(eid, error)
            case (CancelledInStore(rid),):
                self._cancelled_in_store(rid, value, error)
            case (Reopened(rid),):
                self._reopened(rid, value, error)
            case (Deleted(eid, rid),):
                self._deleted(eid, rid, value, error)
            case _:
                log.warning("coordinator.unexpected_answer", what=repr(message.what))


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
