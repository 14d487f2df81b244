"""Dispatching branches and taking their runs' reports.

* Dispatching a branch is sending its *empty checkpoint* with a ``LogDelivery``
  reply handle: the checkpoint actor hands the log to a worker. No thread waits,
  so a wave of resumes coalesces into one store call.
* Workers report ``BranchRan``. An evicted branch is resumed by the scheduler
  (``ResumeBranches``), never while its old run has not reported yet. ``epoch``
  fences reports of older runs, and every redispatch of a run that may still be
  live fences it on the workers first (``FenceRuns``): it stops before its next
  operation.

    batch = self._new_batch(eid, eid, specs, completion, max_concurrency)
    self._after_change(batch)  # dispatches up to max_concurrency, or finishes it
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

from actors import tracelog
from actors.branches._spec import BranchSpec
from actors.branches._stored_errors import encode_error
from actors.coordinator._batches import (
    Batch,
    BranchState,
    TrackedBranch,
    seed,
)
from actors.coordinator._core import CoordinatorCore
from actors.errors import (
    LeaseLostError,
)
from actors.policies import BatchProgress
from actors.protocol._checkpoint import (
    Checkpoint,
)
from actors.protocol._coordinator import (
    BranchAborted,
    BranchRan,
    ResumeBranches,
    StartChildren,
)
from actors.protocol._handles import LogDelivery
from actors.protocol._scheduler import ScheduleResume
from actors.protocol._worker import FenceRuns
from actors.records._status import BranchStatus
from actors.records._updates import BranchUpdate, OperationUpdate
from actors.refs._fork_snapshot import unserializable_cause

log = tracelog.get_logger("actors.execution")


class BranchDispatch(CoordinatorCore):
    """Batches, dispatches and run reports; see the module docstring."""

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


def _timer_update(record: Any) -> OperationUpdate:
    return OperationUpdate(record.execution_id, record.branch_id, record.op_id, record.kind,
                           record.name, record.status, due_at=record.due_at)
