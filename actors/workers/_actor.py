"""The worker: hosts branches on a bounded thread pool, checkpointing through the checkpoint actor.

A ``RunBranch`` arrives with the branch's log already fetched (the coordinator
sent the empty checkpoint on the branch's behalf), so a worker thread is taken
only to run user code. The branch talks to the checkpoint actor directly; a
suspension is written, the branch is evicted (its thread goes back to the
pool) and the coordinator is told, so a suspended branch holds no thread.
An async branch (``async def run``) runs on the worker's event loop instead
(``actors.workers``): the same sends, awaited (``actors.workers``).

    worker = WorkerActor.start(checkpoint=ckpt_ref, coordinator=coord_ref, scheduler=sched_ref,
                               threads=16)
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import pickle
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pykka

from actors import tracelog
from actors.branches._actor import is_async_branch
from actors.branches._host import BranchSuspended
from actors.branches._replay import BranchOutcome, run_branch, run_branch_async
from actors.branches._spec import BranchSpec
from actors.bundles import Bundle
from actors.checkpointing._gate import CheckpointGate
from actors.checkpointing._loop_outbox import LoopOutbox
from actors.checkpointing._outbox import CheckpointOutbox
from actors.clock import Clock, SystemClock
from actors.errors import CheckpointError
from actors.policies import Completion
from actors.protocol._checkpoint import Checkpoint, checkpoints
from actors.protocol._coordinator import BranchAborted, BranchRan, CheckpointLost, StartChildren
from actors.protocol._handles import ReportWhenDurable
from actors.protocol._scheduler import Suspend, SuspensionKey
from actors.protocol._worker import FenceRuns, LeaseValidUntil, RunBranch, RunsFrom
from actors.records._status import TERMINAL_BRANCH_STATUSES, BranchStatus, OpKind
from actors.records._updates import BranchUpdate, OperationUpdate, Update
from actors.replies import ActorLike, AwaitableReply
from actors.scheduling import Verdict, VerdictKind
from actors.spans import TraceContext
from actors.spans import current as current_span
from actors.workers._async_host import AsyncRunHost
from actors.workers._branch_loop import BranchLoop
from actors.workers._fences import RunFences
from actors.workers._pool import ThreadPool

log = tracelog.get_logger("actors.worker")

# A send that raised one of these never left: its recipient is gone, or its mailbox stayed full.
_UNSENT = (pykka.ActorDeadError, pykka.Timeout)

COUNTERS = ("branch.replays", "branch.evictions", "step.executions", "branch.runs")

# The kinds of suspension whose deferral delay can be set apart (SystemConfig.suspend_delays).
_DELAY_KINDS = {
    OpKind.WAIT: "wait",
    OpKind.STEP: "retry",
    OpKind.CONDITION: "condition",
    OpKind.CHILDREN: "children",
    OpKind.CALLBACK: "callback",
}


class _Host:
    """The ``BranchHost`` of one run of one branch, on the worker's pool thread."""

    def __init__(self, worker: WorkerActor, spec: BranchSpec, epoch: int,
                 trace: TraceContext | None = None) -> None:
        self._worker = worker
        self._spec = spec
        self.epoch = epoch  # branch contexts stamp their updates with it
        self.trace = trace  # the parent of the run's span (None: the execution is not traced)
        self.worker_id = worker.name
        self._suspensions = 0  # numbers this run's suspensions (SuspensionKey.seq)
        self.final: BranchUpdate | None = None  # the branch's end, written once the run returns
        self._final_trace: TraceContext | None = None
        # Holds checkpoints that name Refs still pending until their blobs are durable.
        self._gate = CheckpointGate(spec.branch_id)
        # Where this run's checkpoints and suspensions go (an async run's: its loop's outbox).
        self.to_checkpoint: Callable[[Any], None] = worker.outbox.send
        self.to_scheduler: Callable[[Any], None] = worker.scheduler_ref.tell

    def ensure_current(self, wait: float | None = None) -> None:
        """Raise ``CheckpointError`` if this run must not start another operation.

        The run was superseded or its execution fenced (see ``actors.workers``), or
        the system's leases stay unconfirmed past ``wait`` (default ``lease_wait``):
        nothing it would do now could be written, and another system may run it.
        """
        spec = self._spec
        reason = self._worker.fences.check(spec.execution_id, spec.branch_id, self.epoch,
                                           self._worker.lease_wait if wait is None else wait)
        if reason is not None:
            raise CheckpointError(
                f"run {self.epoch} of branch {spec.branch_id!r} stops before its next "
                f"operation: {reason}"
            )

    def _stamped(self, update: Update) -> Update:
        """This run's epoch on an update of its own branch: the checkpoint actor fences by it."""
        if (isinstance(update, OperationUpdate | BranchUpdate) and update.epoch is None
                and update.branch_id == self._spec.branch_id):
            return dataclasses.replace(update, epoch=self.epoch)
        return update

    def checkpoint(self, update: Update, *, sync: bool) -> None:
        reply = self.send_checkpoint(update, sync=sync)
        if reply is not None:
            try:
                reply.get()
            except CheckpointError:
                raise
            except Exception as exc:  # the checkpoint actor is gone: nothing was acknowledged
                raise self.not_acknowledged(exc) from exc

    def send_checkpoint(self, update: Update, *, sync: bool) -> Any:
        """Send ``update``; the reply that says it is durable, if ``sync``, else None."""
        worker = self._worker
        update = self._stamped(update)
        if isinstance(update, BranchUpdate) and update.status in TERMINAL_BRANCH_STATUSES:
            # The branch's end: written after the run returns, acknowledged as a continuation
            # (ReportWhenDurable), so this thread does not wait for it.
            self.final = update
            self._final_trace = current_span()
            return None
        if not sync:
            self._send(Checkpoint(self._spec.branch_id, update, trace=current_span()),
                       self.to_checkpoint, "a checkpoint")
            return None
        reply = worker.future_factory()
        self._send(Checkpoint(self._spec.branch_id, update, reply_to=reply, trace=current_span()),
                   self.to_checkpoint, "a checkpoint")
        return reply

    def not_acknowledged(self, exc: Exception) -> CheckpointError:
        if isinstance(exc, pykka.ActorDeadError):
            self._worker.checkpoint_lost()
        return CheckpointError(
            f"checkpoint of branch {self._spec.branch_id!r} was not acknowledged: {exc}", exc
        )

    def send_final(self, reply_to: ReportWhenDurable) -> None:
        assert self.final is not None
        self._send(Checkpoint(self._spec.branch_id, self.final, reply_to=reply_to,
                              trace=self._final_trace), self.to_checkpoint, "its end")

    def _send(self, message: Any, deliver: Callable[[Any], None], what: str) -> None:
        """``deliver`` through the gate; a recipient that is gone or full is a CheckpointError.

        Nothing of an unsent message is durable, so the run must not go on as if it
        were, nor be failed for it: ``run_branch`` lets a ``CheckpointError`` through,
        and the coordinator replays the branch from its log (as after a shutdown).
        """
        try:
            self._gate.send(message, deliver)
        except _UNSENT as exc:
            raise CheckpointError(
                f"{what} of branch {self._spec.branch_id!r} was not sent ({type(exc).__name__}: "
                f"{exc}); nothing of it is durable, and the branch is replayed from its log",
                exc,
            ) from exc

    def suspend(self, op: OperationUpdate) -> bytes | None:
        op, verdict = self.send_suspension(op)
        try:
            answer = verdict.get()  # parked: this thread waits for the scheduler
        except Exception as exc:  # the scheduler is gone: nothing says the suspension is durable
            raise self.unanswered(exc) from exc
        return self.take_verdict(op, answer)

    def send_suspension(self, op: OperationUpdate, *,
                        coroutine: bool = False) -> tuple[OperationUpdate, Any]:
        """Send ``op``'s suspension to the scheduler: the stamped op and the verdict's reply."""
        spec, worker = self._spec, self._worker
        op = self._stamped(op)  # type: ignore[assignment]
        key = SuspensionKey(spec.branch_id, self.epoch, self._suspensions)
        self._suspensions += 1
        verdict = worker.future_factory()
        # Through the gate: a suspension is a checkpoint too, and may name a pending Ref.
        self._send(Suspend(key, op, worker.delay_for(op), worker.name, verdict, coroutine,
                           current_span()), self.to_scheduler, "the suspension")
        return op, verdict

    def unanswered(self, exc: Exception) -> CheckpointError:
        return CheckpointError(
            f"the suspension of branch {self._spec.branch_id!r} was not answered: {exc}", exc
        )

    def take_verdict(self, op: OperationUpdate, verdict: Verdict) -> bytes | None:
        """Go on in place (the payload); unwind the run, evicted (the suspension is durable);
        or stop it, aborted (``UNWIND``: nothing of the suspension is durable)."""
        if verdict.kind is VerdictKind.RESUME:
            return verdict.payload
        if verdict.kind is VerdictKind.UNWIND:
            raise CheckpointError(
                f"the suspension of branch {self._spec.branch_id!r} was not made durable (the "
                "checkpoint process restarted, or a newer run took over, while it was parked); "
                "the branch is replayed from its log")
        self._worker.count("branch.evictions")
        raise BranchSuspended(op)

    def start_children(self, parent: OperationUpdate, children: Sequence[BranchSpec], *,
                       max_concurrency: int | None, completion: Completion) -> None:
        self.checkpoint(self.create_children(parent, children), sync=True)
        self.announce_children(parent, children, max_concurrency, completion)

    def create_children(self, parent: OperationUpdate,
                        children: Sequence[BranchSpec]) -> OperationUpdate:
        """Send the children's creation; ``parent``, whose sync checkpoint makes them durable."""
        for child in children:
            self.checkpoint(
                BranchUpdate(child.execution_id, child.branch_id, BranchStatus.PENDING,
                             child.parent_branch_id, child.parent_op_id, child.index,
                             input=self.serialize(child.input), create_only=True),
                sync=False,
            )
        return parent

    def announce_children(self, parent: OperationUpdate, children: Sequence[BranchSpec],
                          max_concurrency: int | None, completion: Completion) -> None:
        """Once the children are durable: have the coordinator schedule them."""
        self._send(StartChildren(parent, tuple(children), max_concurrency, completion,
                                 current_span()),
                   self._worker.coordinator_ref.tell, "the start of its children")

    def now(self) -> float:
        return self._worker.clock.time()

    def serialize(self, obj: object) -> bytes:
        with self._gate.tracking():  # pending Refs inside become tokens the gate patches
            return self._worker.serialize(obj)

    def deserialize(self, data: bytes) -> Any:
        return self._worker.deserialize(data)


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
        host = _Host(self, spec, epoch, message.trace)
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
        host = _Host(self, spec, epoch, message.trace)
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

    def _ran(self, spec: BranchSpec, epoch: int, host: _Host, outcome: BranchOutcome) -> None:
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
        except _UNSENT as exc:  # the coordinator is gone (a shutdown): nobody to report to
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
        except _UNSENT as exc:
            log.warning("branch.report_unsent", branch_id=report.branch_id, error=repr(exc))


def _call(task: Callable[[], None]) -> None:
    task()
