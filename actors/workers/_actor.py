"""The worker: hosts branches on a bounded thread pool, checkpointing through the checkpoint actor.

A ``RunBranch`` arrives with the branch's log already fetched (the coordinator
sent the empty checkpoint on the branch's behalf), so a worker thread is taken
only to run user code. The branch talks to the checkpoint actor directly; a
suspension is written, the branch is evicted (its thread goes back to the
pool) and the coordinator is told, so a suspended branch holds no thread.
An async branch (``async def run``) runs on the worker's event loop instead
(``BranchLoop``): the same sends, awaited (``AsyncRunHost``). Each run's
``BranchHost`` is a ``RunHost`` (``_run_host``); which runs are stale, the
``RunFences``.

    worker = WorkerActor.start(checkpoint=ckpt_ref, coordinator=coord_ref, scheduler=sched_ref,
                               threads=16)
"""

from __future__ import annotations

import asyncio
import functools
import pickle
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pykka

from actors import tracelog
from actors.branches._actor import is_async_branch
from actors.branches._replay import BranchOutcome, run_branch, run_branch_async
from actors.branches._spec import BranchSpec
from actors.bundles import Bundle
from actors.checkpointing._loop_outbox import LoopOutbox
from actors.checkpointing._outbox import CheckpointOutbox
from actors.clock import Clock, SystemClock
from actors.errors import CheckpointError
from actors.protocol._checkpoint import Checkpoint, checkpoints
from actors.protocol._coordinator import BranchAborted, BranchRan, CheckpointLost
from actors.protocol._handles import ReportWhenDurable
from actors.protocol._worker import FenceRuns, LeaseValidUntil, RunBranch, RunsFrom
from actors.records._status import BranchStatus, OpKind
from actors.records._updates import BranchUpdate, OperationUpdate
from actors.replies import ActorLike, AwaitableReply
from actors.workers._async_host import AsyncRunHost
from actors.workers._branch_loop import BranchLoop
from actors.workers._fences import RunFences
from actors.workers._pool import ThreadPool
from actors.workers._run_host import UNSENT, RunHost

log = tracelog.get_logger("actors.worker")

COUNTERS = ("branch.replays", "branch.evictions", "step.executions", "branch.runs")

# The kinds of suspension whose deferral delay can be set apart (SystemConfig.suspend_delays).
_DELAY_KINDS = {
    OpKind.WAIT: "wait",
    OpKind.STEP: "retry",
    OpKind.CONDITION: "condition",
    OpKind.CHILDREN: "children",
    OpKind.CALLBACK: "callback",
}


class WorkerActor(pykka.ThreadingActor):
    """Runs ``RunBranch`` messages on at most ``threads`` threads; reports to the coordinator."""

    def __init__(
        self,
        *,
        checkpoint: ActorLike,
        coordinator: ActorLike,
        threads: int = 16,
        clock: Clock | None = None,
        serialize: Callable[[object], bytes] = pickle.dumps,
        deserialize: Callable[[bytes], Any] = pickle.loads,
        future_factory: Callable[[], Any] = AwaitableReply,
        worker_id: str = "worker",  # distinct per worker: the scheduler bounds parking per worker
        scheduler: ActorLike,
        suspend_delay: float = 0.1,
        suspend_delays: dict[str, float] | None = None,
        lease_wait: float = 5.0,
        hold_runs: bool = False,
    ) -> None:
        super().__init__()
        self.fences = RunFences()
        # Runs held until the coordinator says which are current (RunsFrom); None: run all.
        self._held: list[RunBranch] | None = [] if hold_runs else None
        self._latest_epoch = 0  # the newest run epoch this worker was given
        self.lease_wait = lease_wait  # seconds an operation waits for unconfirmed leases
        self.scheduler_ref = scheduler
        self._delays = {kind: suspend_delay for kind in _DELAY_KINDS.values()}
        self._delays.update(suspend_delays or {})
        self.checkpoint_ref = checkpoint
        # The branch threads' checkpoints, combined into one message when they queue up.
        self.outbox = CheckpointOutbox(checkpoint.tell)
        self.coordinator_ref = coordinator
        self.clock = clock or SystemClock()
        self.serialize = serialize
        self.deserialize = deserialize
        self.future_factory = future_factory
        self.name = worker_id
        self._pool = ThreadPool(threads, name=f"{worker_id}-branch")
        # Async branches: one event loop; their sync step functions go to the same pool.
        self._loop = BranchLoop(worker_id, submit=self._run_blocking)
        self._loop_outbox = LoopOutbox(self._loop.loop, self.outbox.send_all, scheduler.tell)
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._counters_lock = threading.Lock()  # branch threads count concurrently

    def checkpoint_lost(self) -> None:
        """The checkpoint process went away: every run given so far is dispatched again by
        the coordinator, so none of them starts another step here (queued ones included)."""
        if self.fences.floor_all <= self._latest_epoch:
            log.warning("worker.checkpoint_lost", fenced_before=self._latest_epoch + 1)
            self.fences.fence_all_before(
                self._latest_epoch + 1,
                "the checkpoint process it wrote to went away; it is dispatched again")

    def delay_for(self, op: OperationUpdate) -> float:
        """How long the suspension checkpoint of ``op`` is deferred (per kind of suspension)."""
        return self._delays[_DELAY_KINDS[op.kind]]

    def count(self, counter: str, amount: int = 1) -> None:
        with self._counters_lock:
            self._counters[counter] += amount

    def metrics(self) -> dict[str, int]:
        """``branch.replays``, ``branch.evictions``, ``step.executions``, ``branch.runs``;
        ``worker.checkpoint_messages`` told and ``worker.checkpoints_combined`` into them."""
        counters = dict(self._counters)
        counters["worker.checkpoint_messages"] = self.outbox.messages
        counters["worker.checkpoints_combined"] = self.outbox.combined
        counters["worker.loop_flushes"] = self._loop_outbox.flushes
        return counters

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, RunBranch):
            self._start([message])
            return None
        if isinstance(message, Bundle):  # a wave's logs for this worker, in one message
            self._start([m for m in message.items if isinstance(m, RunBranch)])
            for other in (m for m in message.items if not isinstance(m, RunBranch)):
                self.on_receive(other)
            return None
        if isinstance(message, FenceRuns):
            self.fences.update(message)
            return None
        if isinstance(message, LeaseValidUntil):
            self.fences.confirm(message.deadline)
            return None
        if isinstance(message, CheckpointLost):  # told by the service as the crash is seen
            self.checkpoint_lost()
            return None
        if isinstance(message, RunsFrom):
            self._runs_from(message.epoch)
            return None
        return super().on_receive(message)

    def _runs_from(self, epoch: int) -> None:
        """Runs older than ``epoch`` were given to an earlier process of this worker (or by
        an earlier coordinator): dropped; the held ones that are current start now."""
        self.fences.fence_all_before(
            epoch, "it was dispatched to an earlier process of this worker; it runs elsewhere")
        held, self._held = self._held, None
        if held:
            log.info("worker.runs_released", runs=len(held), fenced_before=epoch)
            self._start(held)

    def _start(self, runs: Sequence[RunBranch]) -> None:
        """Mark every run's branch RUNNING under its epoch, in one message; then run each."""
        if self._held is not None:  # not told which runs are current yet
            self._held.extend(runs)
            return
        runs = [m for m in runs if not self._stale_run(m.spec, m.epoch)]
        if not runs:
            return
        self._latest_epoch = max(self._latest_epoch, *(m.epoch for m in runs))
        running = [Checkpoint(m.spec.branch_id, BranchUpdate(
            m.spec.execution_id, m.spec.branch_id, BranchStatus.RUNNING, epoch=m.epoch))
            for m in runs]
        try:
            self.checkpoint_ref.tell(checkpoints(running))
        except Exception as exc:  # the checkpoint actor is gone: none of these can run
            log.warning("branch.not_started", branches=len(runs), error=repr(exc))
            for m in runs:
                self._tell_aborted(m.spec.branch_id, m.epoch, exc)
            return
        on_loop = [m for m in runs if is_async_branch(m.spec.branch_cls)]
        if on_loop:
            self._loop.start([functools.partial(self._run_async, m) for m in on_loop])
        for message in runs:
            if not is_async_branch(message.spec.branch_cls):
                self._pool.submit(self._run, message)

    def on_stop(self) -> None:
        self._loop.stop()
        self._pool.shutdown()

    def _run_blocking(self, task: Callable[[], None]) -> None:
        self._pool.submit(_call, task)

    def _stale_run(self, spec: BranchSpec, epoch: int) -> bool:
        """A run queued before it was superseded never starts: it is reported aborted."""
        stale = self.fences.stale(spec.execution_id, spec.branch_id, epoch)
        if stale is None:
            return False
        log.info("branch.stale_run_dropped", branch_id=spec.branch_id, epoch=epoch, reason=stale)
        self._tell_aborted(spec.branch_id, epoch, CheckpointError(
            f"run {epoch} of branch {spec.branch_id!r} did not start: {stale}"))
        return True

    def _run(self, message: RunBranch) -> None:
        spec, epoch = message.spec, message.epoch
        if self._stale_run(spec, epoch):
            return
        host = RunHost(self, spec, epoch, message.trace)
        try:
            outcome = run_branch(spec, message.log, host)
        except CheckpointError as exc:
            # The coordinator replays an aborted branch, or fails it if a replay cannot help.
            log.warning("branch.aborted", branch_id=spec.branch_id, error=repr(exc))
            self._tell_aborted(spec.branch_id, epoch, exc)
            return
        except BaseException as exc:  # a bug here must not lose the branch: report it failed
            log.exception("branch.crashed", branch_id=spec.branch_id)
            self._tell_aborted(spec.branch_id, epoch, exc)
            return
        self._ran(spec, epoch, host, outcome)

    async def _run_async(self, message: RunBranch) -> None:
        """``_run`` for an async branch, on the loop; a run cancelled by a stop reports nothing."""
        spec, epoch = message.spec, message.epoch
        if self._stale_run(spec, epoch):
            return
        host = RunHost(self, spec, epoch, message.trace)
        host.to_checkpoint = self._loop_outbox.checkpoint
        host.to_scheduler = self._loop_outbox.suspension
        try:
            outcome = await run_branch_async(spec, message.log,
                                             AsyncRunHost(host, self._loop.call_blocking))
        except CheckpointError as exc:
            log.warning("branch.aborted", branch_id=spec.branch_id, error=repr(exc))
            self._tell_aborted(spec.branch_id, epoch, exc)
            return
        except asyncio.CancelledError:
            log.info("branch.cancelled", branch_id=spec.branch_id, reason="the worker stopped")
            raise
        except BaseException as exc:
            log.exception("branch.crashed", branch_id=spec.branch_id)
            self._tell_aborted(spec.branch_id, epoch, exc)
            return
        self._ran(spec, epoch, host, outcome)

    def _ran(self, spec: BranchSpec, epoch: int, host: RunHost, outcome: BranchOutcome) -> None:
        """Count a finished run and report it, once its end is durable."""
        with self._counters_lock:
            self._counters["branch.runs"] += 1
            self._counters["branch.replays"] += int(outcome.replayed)
            self._counters["step.executions"] += outcome.step_executions
        report = BranchRan(spec.branch_id, epoch, outcome.status, outcome.result, outcome.error,
                           outcome.suspended_on)
        try:
            if host.final is not None:  # report once the end is durable; free the thread now
                host.send_final(ReportWhenDurable(self.coordinator_ref, report))
            else:
                self.coordinator_ref.tell(report)
        except UNSENT as exc:  # the coordinator is gone (a shutdown): nobody to report to
            log.warning("branch.report_unsent", branch_id=spec.branch_id, error=repr(exc))
        except CheckpointError as exc:  # its end was not sent: not durable, replay it
            log.warning("branch.aborted", branch_id=spec.branch_id, error=repr(exc))
            self._tell_aborted(spec.branch_id, epoch, exc)
        except Exception as exc:  # e.g. a result that cannot be pickled: say so, as a failure
            self._tell_coordinator(BranchRan(spec.branch_id, epoch, BranchStatus.FAILED,
                                             error=RuntimeError(repr(exc))))

    def _tell_aborted(self, branch_id: str, epoch: int, error: BaseException) -> None:
        """Tell the coordinator to replay the branch; gone (a shutdown), it replays all anyway."""
        self._tell_coordinator(BranchAborted(branch_id, epoch, error))

    def _tell_coordinator(self, report: BranchRan | BranchAborted) -> None:
        """A report that a gone coordinator (a shutdown) cannot take is logged, not raised."""
        try:
            self.coordinator_ref.tell(report)
        except UNSENT as exc:
            log.warning("branch.report_unsent", branch_id=report.branch_id, error=repr(exc))


def _call(task: Callable[[], None]) -> None:
    task()
