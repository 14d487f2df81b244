"""The coordinator's executions: created, observed, claimed, cancelled, retried, deleted.

``ExecutionLifecycle`` is the half of the coordinator (``actors.coordinator``)
that decides *which* executions this system runs; the other half runs their
branches. Every store call it needs goes through the checkpoint actor (the
system's only writer) and comes back as an ``Answered`` continuation, so the
coordinator never waits.

* ``StartExecution``: create the execution with its branches and lease, or
  learn what is stored under its id: the same fingerprint and a free lease,
  claim it and resume; held by a live owner, observe it; another fingerprint,
  ``ExecutionMismatchError``.
* A **lease round** every ``lease_seconds / 3`` renews every lease, reports the
  lost ones (their runs are fenced and their callers get ``LeaseLostError``),
  takes the signals other systems wrote (a cancel, a completed callback) and,
  with ``recover``, claims orphaned executions and resumes them from the store.
* Observed executions answer ``status``/``progress`` from the store, and their
  ``result`` waiters are answered by polling it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from actors import spans, tracelog
from actors.branches._spec import BranchSpec
from actors.branches._stored_errors import decode_error
from actors.clock import Clock
from actors.coordinator._batches import (
    Batch,
    BranchState,
    ExecutionMode,
    TrackedBranch,
    TrackedExecution,
    describe,
    describe_stored,
)
from actors.coordinator._faults import describe_fault, is_lasting
from actors.coordinator._lease_keeper import LeaseKeeper
from actors.coordinator._spans import record_end, resumed_event, trace_to_run
from actors.errors import (
    ExecutionCancelledError,
    ExecutionMismatchError,
    ExecutionStateError,
    LeaseLostError,
    UnknownExecutionError,
)
from actors.protocol._checkpoint import (
    CancelInStore,
    Checkpoint,
    ClaimExecution,
    CreateExecution,
    DeleteInStore,
    DropLease,
    ReleaseLeases,
    RenewLeases,
    ReopenExecution,
)
from actors.protocol._coordinator import (
    Answered,
    AwaitResult,
    CancelExecution,
    CurrentFault,
    DeleteExecution,
    DescribeExecution,
    RetryExecution,
    StartExecution,
    StoreChanged,
    StoreFault,
    SystemFault,
    Wire,
)
from actors.protocol._handles import AnswerTo
from actors.protocol._scheduler import DependencyDone, ForgetExecution
from actors.protocol._worker import FENCE_ALL, FenceRuns, LeaseValidUntil
from actors.records._leases import (
    BranchInput,
    ExecutionClaim,
    LeaseRound,
    NewExecution,
    Signal,
    SignalKind,
)
from actors.records._rows import ExecutionRecord
from actors.records._specs import ExecutionSpec, class_ref, fingerprint_of
from actors.records._status import ExecutionStatus, OpKind, OpStatus
from actors.records._updates import ExecutionUpdate
from actors.replies import ActorLike, ReplyTo
from actors.store._contract import Store, claimable

log = tracelog.get_logger("actors.execution")


class ExecutionLifecycle:
    """Mixed into ``CoordinatorActor``; see the module docstring."""

    # Declared here, set by CoordinatorActor.__init__.
    _checkpoint: ActorLike
    _reader: Store
    _clock: Clock
    _serialize: Callable[[object], bytes]
    _deserialize: Callable[[bytes], Any]
    _executor: str
    _keeper: LeaseKeeper
    _poll_interval: float
    _executions: dict[str, TrackedExecution]
    _batches: dict[str, Batch]
    _branches: dict[str, TrackedBranch]
    _faults: dict[str, BaseException]

    def _init_lifecycle(self) -> None:
        self._pending_starts: dict[str, list[StartExecution]] = {}
        self._claiming: dict[str, list[StartExecution]] = {}
        self._requests: dict[int, ReplyTo] = {}
        self._request_ids = itertools.count(1)
        self._unloadable: set[str] = set()  # claimed executions whose classes did not load
        self._cancel_replies: dict[str, list[ReplyTo]] = {}  # cancels waiting for the write

    # -- what the actor half provides --------------------------------------------------

    def _wired(self) -> Wire:
        raise NotImplementedError

    def _me(self) -> ActorLike:
        return self._wired().self_ref

    def _after_change(self, batch: Batch) -> None:
        raise NotImplementedError

    def _new_batch(self, key: str, eid: str, specs: list[BranchSpec], completion: Any,
                   max_concurrency: int | None) -> Batch:
        raise NotImplementedError

    def _seed(self, batch: Batch, records: dict[str, Any]) -> None:
        raise NotImplementedError

    def _reload_timers(self, batch: Batch) -> int:
        raise NotImplementedError

    def _workers_tell(self, message: Any) -> None:
        raise NotImplementedError

    def _rearm(self) -> None:
        raise NotImplementedError

    # -- starting -----------------------------------------------------------------------

    def _start_execution(self, message: StartExecution) -> None:
        eid = message.execution_id
        tracked = self._executions.get(eid)
        if tracked is not None:
            self._answer_start(tracked, message)
            return
        waiting = self._pending_starts.get(eid) or self._claiming.get(eid)
        if waiting is not None:
            waiting.append(message)
            return
        self._pending_starts[eid] = [message]
        new = message.new or self._new_execution(message)
        self._to_checkpoint(CreateExecution(new, AnswerTo(self._me(), "created", eid)))

    def _new_execution(self, message: StartExecution) -> NewExecution:
        """The rows of an execution started without them (the runtime builds them itself)."""
        classes = [spec.branch_cls for spec in message.specs]
        spec = ExecutionSpec(message.kind, tuple(class_ref(c, self._serialize) for c in classes),
                             message.max_concurrency, message.completion, trace=message.trace)
        return NewExecution(
            message.execution_id, message.kind,
            fingerprint_of(message.kind, classes, [s.input for s in message.specs],
                           self._serialize),
            self._serialize(spec),
            tuple(BranchInput(s.branch_id, s.index, self._serialize(s.input))
                  for s in message.specs),
        )

    def _answer_start(self, tracked: TrackedExecution, message: StartExecution) -> None:
        new = message.new
        if new is not None and tracked.fingerprint is not None and (
                new.fingerprint != tracked.fingerprint):
            message.reply_to.set_exception(_mismatch(message))
            return
        if tracked.mode is ExecutionMode.OWNED and not tracked.status.finished:
            message.reply_to.set("resumed")
        elif tracked.mode is ExecutionMode.OBSERVED:
            message.reply_to.set("observing")
        else:
            message.reply_to.set("finished")

    def _created(self, eid: str, claim: ExecutionClaim | None, error: BaseException | None
                 ) -> None:
        starts = self._pending_starts.pop(eid, [])
        if claim is None:
            for start in starts:
                start.reply_to.set_exception(_error_of(error))
            return
        record = claim.record
        starts = self._refuse_mismatched(starts, record)
        tracked = self._executions.get(eid)
        if tracked is not None and tracked.active and not claim.created:
            for start in starts:  # a lease round took it over meanwhile: it runs here already
                self._answer_start(tracked, start)
            return
        if claim.created:
            assert claim.lease is not None
            first = starts[0]
            self._own(claim, list(first.specs), first.completion, first.max_concurrency,
                      trace=first.trace if spans.recording() else None)
            for start in starts:
                start.reply_to.set("created")
            log.info("execution.created", execution_id=eid, branches=len(first.specs))
            return
        if not starts:
            return
        if record.status.finished:
            tracked = self._finished_from(record)
            for start in starts:
                self._answer_start(tracked, start)
        else:  # the store decides: free, expired, ours, or its owner known dead
            self._claiming[eid] = starts
            self._to_checkpoint(ClaimExecution(eid, AnswerTo(self._me(), "claimed", eid)))

    def _refuse_mismatched(self, starts: list[StartExecution], record: ExecutionRecord,
                           ) -> list[StartExecution]:
        kept = []
        for start in starts:
            if record.fingerprint is not None and start.new is not None and (
                    start.new.fingerprint != record.fingerprint):
                start.reply_to.set_exception(_mismatch(start))
            else:
                kept.append(start)
        return kept

    def _claimed(self, eid: str, claim: ExecutionClaim | None, error: BaseException | None
                 ) -> None:
        starts = self._claiming.pop(eid, [])
        if claim is None:
            for start in starts:
                start.reply_to.set_exception(_error_of(error))
            return
        if claim.lease is None:  # another system took it first, or it finished meanwhile
            tracked = (self._finished_from(claim.record) if claim.record.status.finished
                       else self._observe(claim.record))
            for start in starts:
                self._answer_start(tracked, start)
            return
        given = starts[0] if starts else None
        try:
            self._resume_owned(claim, given)
        except Exception as exc:
            self._cannot_run(claim, exc)
            for start in starts:
                start.reply_to.set_exception(exc)
            return
        for start in starts:
            start.reply_to.set("resumed")

    def _ask_desk_again(self) -> None:
        """The checkpoint process died: the requests in its inbox will never be answered.

        Each is asked again (the new process's desk answers it): a creation, a claim, the
        lease round in flight, a cancel's write. Each is safe twice: a creation that had
        landed answers "exists" and is claimed, a claim of an execution already ours takes
        it at a new epoch, a round is only a round, a cancel is written once more.
        """
        self._keeper.unanswered()
        for eid, starts in self._pending_starts.items():
            new = starts[0].new or self._new_execution(starts[0])
            self._checkpoint.tell(CreateExecution(new, AnswerTo(self._me(), "created", eid)))
        for eid in self._claiming:
            self._checkpoint.tell(ClaimExecution(eid, AnswerTo(self._me(), "claimed", eid)))
        for tracked in self._executions.values():
            if tracked.cancelling:
                self._write_cancel(tracked.execution_id)

    # -- owning, resuming, observing ------------------------------------------------------

    def _own(self, claim: ExecutionClaim, specs: list[BranchSpec], completion: Any,
             max_concurrency: int | None, spec: ExecutionSpec | None = None,
             trace: spans.ExecutionTrace | None = None) -> TrackedExecution:
        assert claim.lease is not None
        record = claim.record
        eid = record.execution_id
        self._forget_branches(eid)
        batch = self._new_batch(eid, eid, specs, completion, max_concurrency)
        tracked = self._executions.get(eid)
        if tracked is None:
            tracked = self._executions[eid] = TrackedExecution(eid, ExecutionMode.OWNED)
        tracked.mode, tracked.batch, tracked.status = ExecutionMode.OWNED, batch, record.status
        tracked.result, tracked.cancelling = None, False
        tracked.fingerprint, tracked.deadline_at = record.fingerprint, record.deadline_at
        tracked.lease, tracked.spec = claim.lease, spec
        tracked.trace, tracked.trace_events = trace, []
        batch.trace = None if trace is None else trace.context
        # Runs from before (a cancel, a lost lease) stay stale; the runs from now on go.
        self._workers_tell(FenceRuns(executions=((eid, self._peek_epoch()),)))
        moved = self._keeper.hold(claim.lease, self._clock.monotonic() - 1.0)
        if moved is not None:
            self._workers_tell(LeaseValidUntil(moved))
        if claim.created:
            self._after_change(batch)
        return tracked

    def _resume_owned(self, claim: ExecutionClaim, given: StartExecution | None,
                      retried: bool = False) -> None:
        """Rebuild a claimed execution from the store (with the caller's classes, if any);
        ``retried``: reopened by ``system.retry`` after it had ended."""
        record = claim.record
        eid = record.execution_id
        spec: ExecutionSpec | None = (
            self._deserialize(record.spec) if record.spec is not None else None)
        if spec is None and given is None:
            raise LookupError(f"execution {eid!r} was stored without its spec; start it "
                              "with map() or parallel() to resume it")
        stored = {b.index: b for b in self._reader.read_branches(eid)
                  if b.parent_branch_id is None}
        specs = []
        for index in range(record.branch_count):
            cls = (given.specs[min(index, len(given.specs) - 1)].branch_cls if given is not None
                   else spec.class_at(index).load(self._deserialize))  # type: ignore[union-attr]
            branch = stored.get(index)
            if branch is not None and branch.input is not None:
                item = self._deserialize(branch.input)
            else:  # lost to a crash between creation transactions (stores of an older version)
                item = given.specs[index].input if given is not None and index < len(
                    given.specs) else None
            specs.append(BranchSpec(eid, f"{eid}/{index}", cls, item, index))
        completion = spec.completion if spec is not None else given.completion  # type: ignore[union-attr]
        concurrency = spec.max_concurrency if spec is not None else given.max_concurrency  # type: ignore[union-attr]
        now_ns = time.time_ns()
        trace = trace_to_run(spec, given, retried=retried, now_ns=now_ns)
        tracked = self._own(claim, specs, completion, concurrency, spec, trace)
        if trace is not None and not retried:
            tracked.trace_events.append(resumed_event(
                self._executor, claim.lease.epoch if claim.lease else None, now_ns))
        assert tracked.batch is not None
        self._seed(tracked.batch, {b.branch_id: b for b in stored.values()})
        timers = self._reload_timers(tracked.batch)
        log.info("execution.resumed", execution_id=eid, branches=len(specs), timers=timers,
                 epoch=claim.lease.epoch if claim.lease else None)
        self._after_change(tracked.batch)

    def _cannot_run(self, claim: ExecutionClaim, error: BaseException) -> None:
        """A claimed execution whose classes do not load here: give it back, never claim again."""
        eid = claim.record.execution_id
        log.error("execution.cannot_run", execution_id=eid, error=repr(error))
        self._unloadable.add(eid)
        self._keeper.drop(eid)
        self._to_checkpoint(ReleaseLeases((eid,)))
        self._executions.pop(eid, None)

    def _observe(self, record: ExecutionRecord) -> TrackedExecution:
        eid = record.execution_id
        tracked = self._executions.get(eid)
        if tracked is None:
            tracked = self._executions[eid] = TrackedExecution(eid, ExecutionMode.OBSERVED)
        tracked.mode, tracked.batch, tracked.status = (
            ExecutionMode.OBSERVED, None, record.status)
        tracked.fingerprint, tracked.deadline_at = record.fingerprint, record.deadline_at
        return tracked

    def _finished_from(self, record: ExecutionRecord) -> TrackedExecution:
        tracked = self._observe(record)
        tracked.mode, tracked.status = ExecutionMode.FINISHED, record.status
        if record.result is not None:
            tracked.result = self._deserialize(record.result)
        self._answer_waiters(tracked)
        return tracked

    def _known(self, execution_id: str) -> TrackedExecution:
        """The tracked execution, or one loaded from the store (observed or finished)."""
        tracked = self._executions.get(execution_id)
        if tracked is not None:
            return tracked
        record = self._reader.read_execution(execution_id)
        if record is None:
            raise UnknownExecutionError(
                f"no execution {execution_id!r} in this system's store; start it with map() "
                "or parallel()")
        if record.status.finished:
            return self._finished_from(record)
        return self._observe(record)

    # -- asking ---------------------------------------------------------------------------

    def _describe(self, message: DescribeExecution) -> dict[str, Any]:
        tracked = self._known(message.execution_id)
        if tracked.mode is ExecutionMode.OBSERVED:
            record = self._reader.read_execution(tracked.execution_id)
            if record is None:
                raise UnknownExecutionError(f"execution {tracked.execution_id!r} was deleted")
            if record.status.finished:
                tracked = self._finished_from(record)
            else:
                found = describe_stored(record, self._reader.read_branches(record.execution_id))
                return self._with_fault(found)
        return self._with_fault(describe(tracked, self._branches))

    def _with_fault(self, found: dict[str, Any]) -> dict[str, Any]:
        fault = self._current_fault()
        if fault is not None and not ExecutionStatus(found["status"]).finished:
            found["fault"] = describe_fault(fault)
        return found

    def _current_fault(self) -> BaseException | None:
        return next(iter(self._faults.values()), None)

    def _fault_of(self, message: CurrentFault) -> BaseException | None:
        return self._current_fault()

    def _await(self, message: AwaitResult) -> None:
        try:
            tracked = self._known(message.execution_id)
        except UnknownExecutionError as exc:
            message.reply_to.set_exception((type(exc), exc, None))
            return
        tracked.waiters.append(message.reply_to)
        if tracked.mode is ExecutionMode.OBSERVED:
            tracked.next_poll = self._clock.time()
            self._rearm()
        elif tracked.mode is ExecutionMode.OWNED:
            fault = self._current_fault()
            if fault is not None and is_lasting(fault):
                self._fail_waiters(tracked, fault)
        self._answer_waiters(tracked)

    def _answer_waiters(self, tracked: TrackedExecution) -> None:
        if tracked.mode is not ExecutionMode.FINISHED or not tracked.waiters:
            return
        waiters, tracked.waiters = tracked.waiters, []
        for waiter in waiters:
            if tracked.status is ExecutionStatus.CANCELLED:
                cancelled = ExecutionCancelledError(
                    f"execution {tracked.execution_id!r} was cancelled; system.retry(id) runs "
                    "it again from its log")
                waiter.set_exception((ExecutionCancelledError, cancelled, None))
            elif tracked.result is None:
                missing = ExecutionStateError(
                    f"execution {tracked.execution_id!r} is {tracked.status.value} without a "
                    "stored result")
                waiter.set_exception((ExecutionStateError, missing, None))
            else:
                waiter.set(tracked.result)

    def _fail_waiters(self, tracked: TrackedExecution, error: BaseException) -> None:
        waiters, tracked.waiters = tracked.waiters, []
        for waiter in waiters:
            waiter.set_exception((type(error), error, None))

    def _poll_observed(self) -> None:
        """Read the store for observed executions that someone waits on."""
        now = self._clock.time()
        for tracked in list(self._executions.values()):
            if tracked.mode is not ExecutionMode.OBSERVED or not tracked.waiters or (
                    tracked.next_poll > now):
                continue
            tracked.next_poll = now + self._poll_interval
            record = self._reader.read_execution(tracked.execution_id)
            if record is None:
                self._fail_waiters(tracked, UnknownExecutionError(
                    f"execution {tracked.execution_id!r} was deleted"))
            elif record.status.finished:
                self._finished_from(record)
            elif self._keeper.recover and claimable(record, self._executor, now) and (
                    tracked.execution_id not in self._claiming) and (
                    tracked.execution_id not in self._unloadable):
                self._claiming[tracked.execution_id] = []
                self._to_checkpoint(ClaimExecution(
                    tracked.execution_id, AnswerTo(self._me(), "claimed", tracked.execution_id)))

    def _store_changed(self, message: StoreChanged) -> None:
        """Read now what changed: observed executions' rows, and (owned) their signals."""
        now = self._clock.time()
        wanted = set(message.execution_ids)
        owned = False
        for tracked in self._executions.values():
            if wanted and tracked.execution_id not in wanted:
                continue
            if tracked.mode is ExecutionMode.OBSERVED:
                tracked.next_poll = now
            elif tracked.active:
                owned = True
        self._poll_observed()
        if owned or not wanted:
            self._keeper.soon()

    def _next_poll(self) -> float | None:
        return min((t.next_poll for t in self._executions.values()
                    if t.mode is ExecutionMode.OBSERVED and t.waiters), default=None)

    # -- lease rounds ---------------------------------------------------------------------

    def _maybe_renew(self) -> None:
        if not self._keeper.due():
            return
        self._keeper.sent()
        # Not taken as orphans: what this coordinator runs, or is creating or claiming now.
        busy = self._unloadable | set(self._claiming) | set(self._pending_starts) | {
            t.execution_id for t in self._executions.values() if t.active}
        self._to_checkpoint(RenewLeases(self._keeper.claim_batch,
                                        AnswerTo(self._me(), "renewed"), tuple(sorted(busy))))

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

    def _release(self, branch: TrackedBranch) -> None:
        raise NotImplementedError

    def _to_checkpoint(self, message: Any) -> None:
        raise NotImplementedError

    def _to_scheduler(self, message: Any) -> None:
        raise NotImplementedError

    def _peek_epoch(self) -> int:
        raise NotImplementedError

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

    # -- cancel, retry, delete ------------------------------------------------------------

    def _request(self, reply_to: ReplyTo) -> int:
        rid = next(self._request_ids)
        self._requests[rid] = reply_to
        return rid

    def _cancel(self, message: CancelExecution) -> None:
        try:
            tracked = self._known(message.execution_id)
        except UnknownExecutionError as exc:
            message.reply_to.set_exception((type(exc), exc, None))
            return
        if tracked.active:
            self._cancel_owned(tracked, message.reply_to)
        elif tracked.mode is ExecutionMode.FINISHED:
            message.reply_to.set(False)
        else:
            rid = self._request(message.reply_to)
            self._to_checkpoint(CancelInStore(tracked.execution_id,
                                                AnswerTo(self._me(), "cancelled_in_store", rid)))

    def _cancel_owned(self, tracked: TrackedExecution, reply_to: ReplyTo | None,
                      reason: str = "cancelled") -> None:
        eid = tracked.execution_id
        replies = self._cancel_replies.setdefault(eid, [])
        if reply_to is not None:
            replies.append(reply_to)
        if tracked.cancelling:
            return  # its write is in flight: answered together when it lands
        tracked.cancelling = True
        log.info("execution.cancelling", execution_id=eid, reason=reason)
        self._write_cancel(eid)

    def _write_cancel(self, eid: str) -> None:
        self._to_checkpoint(Checkpoint(eid, ExecutionUpdate(eid, ExecutionStatus.CANCELLED),
                                         reply_to=AnswerTo(self._me(), "cancel_written", eid)))

    def _cancel_written(self, eid: str, error: BaseException | None) -> None:
        replies = self._cancel_replies.pop(eid, [])
        tracked = self._executions.get(eid)
        if error is not None:
            if tracked is not None:
                tracked.cancelling = False
            if isinstance(error, LeaseLostError):
                self._lose(eid, self._reader.read_execution(eid))
            for reply in replies:
                reply.set_exception((type(error), error, None))
            return
        if tracked is not None and tracked.active:
            self._cancelled(tracked)
        for reply in replies:
            reply.set(True)

    def _cancelled(self, tracked: TrackedExecution) -> None:
        """The execution is CANCELLED in the store: stop its runs, answer its callers."""
        eid = tracked.execution_id
        self._stop_runs(eid)
        tracked.mode, tracked.status, tracked.batch = (
            ExecutionMode.FINISHED, ExecutionStatus.CANCELLED, None)
        tracked.cancelling = False
        record_end(tracked.trace, ExecutionStatus.CANCELLED, None, tracked.trace_events,
                   time.time_ns())
        tracked.trace = None
        self._keeper.drop(eid)
        self._to_checkpoint(DropLease(eid))
        log.info("execution.cancelled", execution_id=eid)
        self._answer_waiters(tracked)

    def _cancelled_in_store(self, rid: int, outcome: tuple[bool, ExecutionRecord] | None,
                            error: BaseException | None) -> None:
        reply = self._requests.pop(rid, None)
        if reply is None:
            return
        if outcome is None:
            reply.set_exception((type(error), error, None))
            return
        cancelled, record = outcome
        self._observe(record) if not record.status.finished else self._finished_from(record)
        reply.set(cancelled)

    def _retry(self, message: RetryExecution) -> None:
        eid = message.execution_id
        tracked = self._executions.get(eid)
        if tracked is not None and tracked.active:
            error = ExecutionStateError(
                f"execution {eid!r} is still running here; only a FAILED or CANCELLED "
                "execution can be retried")
            message.reply_to.set_exception((ExecutionStateError, error, None))
            return
        record = self._reader.read_execution(eid)
        if record is None:
            unknown = UnknownExecutionError(f"no execution {eid!r} in this system's store")
            message.reply_to.set_exception((UnknownExecutionError, unknown, None))
            return
        timeout = None
        if record.spec is not None:
            timeout = self._deserialize(record.spec).timeout
        deadline = None if timeout is None else self._clock.time() + timeout
        rid = self._request(message.reply_to)
        self._to_checkpoint(ReopenExecution(eid, deadline,
                                              AnswerTo(self._me(), "reopened", rid)))

    def _reopened(self, rid: int, claim: ExecutionClaim | None,
                  error: BaseException | None) -> None:
        reply = self._requests.pop(rid, None)
        if claim is None:
            if reply is not None:
                reply.set_exception((type(error), error, None))
            return
        record = claim.record
        if claim.lease is None:
            state = ExecutionStateError(
                f"execution {record.execution_id!r} is {record.status.value}; only a FAILED or "
                "CANCELLED execution can be retried")
            if reply is not None:
                reply.set_exception((ExecutionStateError, state, None))
            return
        try:
            self._resume_owned(claim, None, retried=True)
        except Exception as exc:
            self._cannot_run(claim, exc)
            if reply is not None:
                reply.set_exception((type(exc), exc, None))
            return
        log.info("execution.retried", execution_id=record.execution_id)
        if reply is not None:
            reply.set("resumed")

    def _delete(self, message: DeleteExecution) -> None:
        eid = message.execution_id
        tracked = self._executions.get(eid)
        if tracked is not None and (tracked.active or tracked.mode is ExecutionMode.OBSERVED):
            record = self._reader.read_execution(eid)
            if record is not None and not record.status.finished:
                error = ExecutionStateError(
                    f"execution {eid!r} is {record.status.value}; cancel it (system.cancel) "
                    "before deleting it")
                message.reply_to.set_exception((ExecutionStateError, error, None))
                return
        rid = self._request(message.reply_to)
        self._to_checkpoint(DeleteInStore(eid, AnswerTo(self._me(), "deleted", eid, rid)))

    def _deleted(self, eid: str, rid: int, value: Any, error: BaseException | None) -> None:
        reply = self._requests.pop(rid, None)
        if error is None:
            self._executions.pop(eid, None)
            self._forget_branches(eid)
        if reply is None:
            return
        if error is not None:
            if isinstance(error, ValueError):
                error = ExecutionStateError(str(error))
            reply.set_exception((type(error), error, None))
        else:
            reply.set(value)

    def _check_deadlines(self) -> None:
        now = self._clock.time()
        for tracked in list(self._executions.values()):
            if tracked.active and not tracked.cancelling and tracked.deadline_at is not None and (
                    tracked.deadline_at <= now):
                self._cancel_owned(tracked, None, reason="deadline")

    def _next_deadline(self) -> float | None:
        return min((t.deadline_at for t in self._executions.values()
                    if t.active and not t.cancelling and t.deadline_at is not None),
                   default=None)

    # -- faults ---------------------------------------------------------------------------

    def _store_fault(self, message: StoreFault) -> None:
        self._fault("store", message.error)

    def _system_fault(self, message: SystemFault) -> None:
        self._fault(message.process, message.error)

    def _fault(self, where: str, error: BaseException | None) -> None:
        if error is None:
            if self._faults.pop(where, None) is not None:
                log.info("fault.cleared", where=where)
            return
        self._faults[where] = error
        log.error("fault", where=where, error=repr(error), lasting=is_lasting(error))
        if is_lasting(error):
            for tracked in self._executions.values():
                if tracked.mode is ExecutionMode.OWNED:
                    self._fail_waiters(tracked, error)

    # -- continuations ----------------------------------------------------------------------

    def _answered(self, message: Answered) -> None:
        kind, *rest = message.what
        value, error = message.value, message.error
        if kind == "created":
            self._created(rest[0], value, error)
        elif kind == "claimed":
            self._claimed(rest[0], value, error)
        elif kind == "renewed":
            self._renewed(value, error)
        elif kind == "cancel_written":
            self._cancel_written(rest[0], error)
        elif kind == "cancelled_in_store":
            self._cancelled_in_store(rest[0], value, error)
        elif kind == "reopened":
            self._reopened(rest[0], value, error)
        elif kind == "deleted":
            self._deleted(rest[0], rest[1], value, error)
        else:
            log.warning("coordinator.unexpected_answer", what=repr(message.what))


def _mismatch(message: StartExecution) -> tuple[type[BaseException], BaseException, None]:
    error = ExecutionMismatchError(
        f"execution id {message.execution_id!r} already names an execution made of another "
        f"branch class or other items; give this {message.kind}() another execution_id, or "
        "call it with the class and items it was created with")
    return (ExecutionMismatchError, error, None)


def _error_of(error: BaseException | None) -> tuple[type[BaseException], BaseException, None]:
    found = error if error is not None else RuntimeError("no answer")
    return (type(found), found, None)
