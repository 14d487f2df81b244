"""The worker: hosts branches on a bounded thread pool, checkpointing through the checkpoint actor.

A ``RunBranch`` arrives with the branch's log already fetched (the coordinator
sent the empty checkpoint on the branch's behalf), so a worker thread is taken
only to run user code. The branch talks to the checkpoint actor directly; a
suspension is written, the branch is evicted (its thread goes back to the
pool) and the coordinator is told, so a suspended branch holds no thread.

    worker = WorkerActor.start(checkpoint=ckpt_ref, coordinator=coord_ref, scheduler=sched_ref,
                               threads=16)
"""

from __future__ import annotations

import dataclasses
import pickle
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pykka
import structlog

from actors.branch import BranchSpec, BranchSuspended
from actors.clock import Clock, SystemClock
from actors.control import FenceRuns, LeaseValidUntil
from actors.errors import CheckpointError
from actors.fences import RunFences
from actors.gate import CheckpointGate
from actors.messages import (
    TERMINAL_BRANCH_STATUSES,
    ActorLike,
    BranchAborted,
    BranchRan,
    BranchStatus,
    BranchUpdate,
    Bundle,
    Checkpoint,
    OperationUpdate,
    OpKind,
    ReportWhenDurable,
    RunBranch,
    StartChildren,
    Suspend,
    SuspensionKey,
    Update,
    checkpoints,
)
from actors.outbox import CheckpointOutbox
from actors.policies import Completion
from actors.pool import ThreadPool
from actors.replay import run_branch

log = structlog.get_logger("actors.worker")

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

    def __init__(self, worker: WorkerActor, spec: BranchSpec, epoch: int) -> None:
        self._worker = worker
        self._spec = spec
        self.epoch = epoch  # branch contexts stamp their updates with it
        self._suspensions = 0  # numbers this run's suspensions (SuspensionKey.seq)
        self.final: BranchUpdate | None = None  # the branch's end, written once the run returns
        # Holds checkpoints that name Refs still pending until their blobs are durable.
        self._gate = CheckpointGate(spec.branch_id)

    def ensure_current(self) -> None:
        """Raise ``CheckpointError`` if this run must not start another operation.

        The run was superseded or its execution fenced (see ``actors.fences``), or
        the system's leases stay unconfirmed past ``lease_wait``: nothing it would do
        now could be written, and another system may be running it.
        """
        fences = self._worker.fences
        spec = self._spec
        reason = fences.stale(spec.execution_id, spec.branch_id, self.epoch)
        if reason is None and not fences.wait_confirmed(self._worker.lease_wait):
            reason = "this system's leases were not confirmed in time (the store is down?)"
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
        worker = self._worker
        update = self._stamped(update)
        if isinstance(update, BranchUpdate) and update.status in TERMINAL_BRANCH_STATUSES:
            # The branch's end: written after the run returns, acknowledged as a continuation
            # (ReportWhenDurable), so this thread does not wait for it.
            self.final = update
            return
        if not sync:
            self._send(Checkpoint(self._spec.branch_id, update, sync=False), worker.outbox.send,
                       "a checkpoint")
            return
        reply = worker.future_factory()
        self._send(Checkpoint(self._spec.branch_id, update, True, reply), worker.outbox.send,
                   "a checkpoint")
        try:
            reply.get()
        except CheckpointError:
            raise
        except Exception as exc:  # the checkpoint actor is gone: nothing was acknowledged
            raise CheckpointError(
                f"checkpoint of branch {self._spec.branch_id!r} was not acknowledged: {exc}", exc
            ) from exc

    def send_final(self, reply_to: ReportWhenDurable) -> None:
        assert self.final is not None
        self._send(Checkpoint(self._spec.branch_id, self.final, True, reply_to),
                   self._worker.outbox.send, "its end")

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
        spec, worker = self._spec, self._worker
        op = self._stamped(op)  # type: ignore[assignment]
        key = SuspensionKey(spec.branch_id, self.epoch, self._suspensions)
        self._suspensions += 1
        verdict = worker.future_factory()
        # Through the gate: a suspension is a checkpoint too, and may name a pending Ref.
        self._send(Suspend(key, op, worker.delay_for(op), worker.name, verdict),
                   worker.scheduler_ref.tell, "the suspension")
        try:
            outcome, payload = verdict.get()  # parked: this thread waits for the scheduler
        except Exception as exc:  # the scheduler is gone: nothing says the suspension is durable
            raise CheckpointError(
                f"the suspension of branch {spec.branch_id!r} was not answered: {exc}", exc
            ) from exc
        if outcome == "resume":
            return payload  # type: ignore[no-any-return]
        worker.count("branch.evictions")
        raise BranchSuspended(op)

    def start_children(self, parent: OperationUpdate, children: Sequence[BranchSpec], *,
                       max_concurrency: int | None, completion: Completion) -> None:
        for child in children:
            self.checkpoint(
                BranchUpdate(child.execution_id, child.branch_id, BranchStatus.PENDING,
                             child.parent_branch_id, child.parent_op_id, child.index,
                             input=self.serialize(child.input), create_only=True),
                sync=False,
            )
        self.checkpoint(parent, sync=True)  # the children are durable no later than this
        self._send(StartChildren(parent, tuple(children), max_concurrency, completion),
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
        future_factory: Callable[[], Any] = pykka.ThreadingFuture,
        worker_id: str = "worker",  # distinct per worker: the scheduler bounds parking per worker
        scheduler: ActorLike,
        suspend_delay: float = 0.1,
        suspend_delays: dict[str, float] | None = None,
        lease_wait: float = 5.0,
    ) -> None:
        super().__init__()
        self.fences = RunFences()
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
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._counters_lock = threading.Lock()  # branch threads count concurrently

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
        return super().on_receive(message)

    def _start(self, runs: Sequence[RunBranch]) -> None:
        """Mark every run's branch RUNNING under its epoch, in one message; then run each."""
        if not runs:
            return
        running = [Checkpoint(m.spec.branch_id, BranchUpdate(
            m.spec.execution_id, m.spec.branch_id, BranchStatus.RUNNING, epoch=m.epoch),
            sync=False) for m in runs]
        try:
            self.checkpoint_ref.tell(checkpoints(running))
        except Exception as exc:  # the checkpoint actor is gone: none of these can run
            log.warning("branch.not_started", branches=len(runs), error=repr(exc))
            for m in runs:
                self._tell_aborted(m.spec.branch_id, m.epoch, exc)
            return
        for message in runs:
            self._pool.submit(self._run, message)

    def on_stop(self) -> None:
        self._pool.shutdown()

    def _run(self, message: RunBranch) -> None:
        spec, epoch = message.spec, message.epoch
        stale = self.fences.stale(spec.execution_id, spec.branch_id, epoch)
        if stale is not None:  # queued before it was superseded: it never starts
            log.info("branch.stale_run_dropped", branch_id=spec.branch_id, epoch=epoch,
                     reason=stale)
            return
        host = _Host(self, spec, epoch)
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
