"""Lease rounds: keep this system's executions, take orphans, hear other systems.

A round every ``lease_seconds / 3`` (``LeaseKeeper`` decides when) renews every
lease, reports the lost ones (their runs are fenced and their callers get
``LeaseLostError``), takes the signals other systems wrote (a cancel, a
completed callback) and, with ``recover``, claims orphaned executions and
resumes them from the store.

    self._maybe_renew()  # after every message: sends RenewLeases when one is due
"""

from __future__ import annotations

from actors import tracelog
from actors.branches._stored_errors import decode_error
from actors.coordinator._batches import (
    BranchState,
    ExecutionMode,
)
from actors.coordinator._continuations import Renewed
from actors.coordinator._core import CoordinatorCore
from actors.errors import (
    LeaseLostError,
)
from actors.protocol._checkpoint import (
    RenewLeases,
)
from actors.protocol._handles import AnswerTo
from actors.protocol._scheduler import DependencyDone, ForgetExecution
from actors.protocol._worker import FENCE_ALL, FenceRuns, LeaseValidUntil
from actors.records._leases import (
    LeaseRound,
    Signal,
    SignalKind,
)
from actors.records._rows import ExecutionRecord
from actors.records._status import OpKind, OpStatus

log = tracelog.get_logger("actors.execution")


class LeaseRounds(CoordinatorCore):
    """The lease rounds' sending and answers; see the module docstring."""

    def _maybe_renew(self) -> None:
        if not self._keeper.due():
            return
        self._keeper.sent()
        # Not taken as orphans: what this coordinator runs, or is creating or claiming now.
        busy = self._unloadable | set(self._claiming) | set(self._pending_starts) | {
            t.execution_id for t in self._executions.values() if t.active}
        self._to_checkpoint(RenewLeases(self._keeper.claim_batch,
                                        AnswerTo(self._me(), Renewed()), tuple(sorted(busy))))

    def _renewed(self, found: LeaseRound | None, error: BaseException | None) -> None:
        if found is None:
            self._keeper.failed()
            log.warning("lease.round_failed", error=repr(error))
            return
        moved = self._keeper.done(found)
        if moved is not None:
            self._workers_tell(LeaseValidUntil(moved))
        for eid, record in found.lost:
            self._lose(eid, record)
        for claim in found.claimed:
            tracked = self._executions.get(claim.record.execution_id)
            if tracked is not None and tracked.active and claim.lease is not None:
                tracked.lease = claim.lease  # ours already (a claim raced the round): keep it
                self._keeper.hold(claim.lease, self._clock.monotonic() - 1.0)
                continue
            try:
                self._resume_owned(claim, None)
            except Exception as exc:
                self._cannot_run(claim, exc)
        for signal in found.signals:
            self._signalled(signal)

    def _lose(self, eid: str, record: ExecutionRecord | None) -> None:
        """Another system took ``eid``: fence our runs of it and tell our callers."""
        self._keeper.drop(eid)
        tracked = self._executions.get(eid)
        if tracked is None or tracked.mode is not ExecutionMode.OWNED:
            return
        owner = record.owner if record is not None else None
        log.warning("lease.lost", execution_id=eid, owner=owner)
        self._stop_runs(eid)
        error = LeaseLostError(
            f"execution {eid!r} is now run by executor {owner!r}: this system lost its lease "
            "(it was paused or cut off past lease_seconds); nothing it did after that was "
            "written; observe the execution with system.execution(id)", (eid,))
        self._fail_waiters(tracked, error)
        if record is None:
            self._executions.pop(eid, None)
        else:
            self._observe(record)

    def _stop_runs(self, eid: str) -> None:
        """No run of ``eid`` starts another operation; its timers and parked branches go."""
        self._workers_tell(FenceRuns(executions=((eid, FENCE_ALL),)))
        self._to_scheduler(ForgetExecution(eid))
        self._forget_branches(eid)

    def _forget_branches(self, eid: str) -> None:
        prefix = f"{eid}/"
        for key in [k for k in self._batches if k == eid or k.startswith(prefix)]:
            del self._batches[key]
        for branch_id in [b for b in self._branches if b.startswith(prefix)]:
            branch = self._branches.pop(branch_id)
            if branch.state is BranchState.DISPATCHED:
                self._release(branch)

    def _signalled(self, signal: Signal) -> None:
        tracked = self._executions.get(signal.execution_id)
        if tracked is None or not tracked.active:
            return
        if signal.kind is SignalKind.CANCEL:
            log.info("execution.cancelled_elsewhere", execution_id=signal.execution_id)
            self._cancelled(tracked)
            return
        if signal.branch_id is None or signal.op_id is None:
            return
        op = self._reader.read_log(signal.branch_id).by_op_id().get(signal.op_id)
        if op is None or op.kind is not OpKind.CALLBACK:
            return
        if op.status is OpStatus.SUCCEEDED:
            payload = op.payload
        elif op.status is OpStatus.FAILED and op.error is not None:
            payload = self._serialize((False, decode_error(op.error, self._deserialize)))
        else:
            return
        self._to_scheduler(DependencyDone(signal.branch_id, signal.op_id, payload))
