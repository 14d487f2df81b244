"""Recovering from lost processes: a worker, the checkpoint actor, the scheduler.

A lost worker's runs replay elsewhere from their logs; a lost checkpoint actor's
acknowledgements will never come, so every live run is fenced and dispatched
again and every request in flight asked again; a restarted scheduler is given
the evicted branches' timers again.

    coordinator.tell(WorkerLost("0"))  # its runs are dispatched to the others
"""

from __future__ import annotations

from actors import tracelog
from actors.coordinator._batches import (
    BranchState,
)
from actors.coordinator._core import CoordinatorCore
from actors.protocol._checkpoint import (
    HoldLeases,
)
from actors.protocol._coordinator import (
    CheckpointLost,
    SchedulerLost,
    WorkerBack,
    WorkerLost,
)
from actors.protocol._scheduler import ScheduleResume
from actors.protocol._worker import RunsFrom
from actors.records._leases import (
    held_epochs,
)
from actors.records._status import OpKind

log = tracelog.get_logger("actors.execution")


class ProcessRecovery(CoordinatorCore):
    """What the coordinator does when a process it works with is lost or back."""

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
