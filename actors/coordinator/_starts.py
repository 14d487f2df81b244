"""Starting an execution: create it, or learn what is stored under its id and act on it.

``StartExecution`` creates the execution with its branches and lease, or learns
what is stored under its id: the same fingerprint and a free lease, claim it and
resume; held by a live owner, observe it; another fingerprint,
``ExecutionMismatchError``. Every store call goes through the checkpoint actor
(the system's only writer) and comes back as an ``Answered`` continuation
(``Created``, ``Claimed``), so the coordinator never waits.

    coordinator.tell(StartExecution(...))  # answered "created", "resumed", "observing"...
"""

from __future__ import annotations

import time
from typing import Any

from actors import spans, tracelog
from actors.branches._spec import BranchSpec
from actors.coordinator._batches import (
    ExecutionMode,
    TrackedExecution,
)
from actors.coordinator._continuations import Claimed, Created
from actors.coordinator._core import CoordinatorCore
from actors.coordinator._spans import resumed_event, trace_to_run
from actors.errors import (
    ExecutionMismatchError,
)
from actors.protocol._checkpoint import (
    ClaimExecution,
    CreateExecution,
    ReleaseLeases,
)
from actors.protocol._coordinator import (
    StartExecution,
)
from actors.protocol._handles import AnswerTo
from actors.protocol._worker import FenceRuns, LeaseValidUntil
from actors.records._leases import (
    BranchInput,
    ExecutionClaim,
    NewExecution,
)
from actors.records._rows import ExecutionRecord
from actors.records._specs import ExecutionSpec, class_ref, fingerprint_of

log = tracelog.get_logger("actors.execution")


class ExecutionStarts(CoordinatorCore):
    """Starting executions: created, claimed and resumed, or observed (module docstring)."""

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
        self._to_checkpoint(CreateExecution(new, AnswerTo(self._me(), Created(eid))))

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
            self._to_checkpoint(ClaimExecution(eid, AnswerTo(self._me(), Claimed(eid))))

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
            self._checkpoint.tell(CreateExecution(new, AnswerTo(self._me(), Created(eid))))
        for eid in self._claiming:
            self._checkpoint.tell(ClaimExecution(eid, AnswerTo(self._me(), Claimed(eid))))
        for tracked in self._executions.values():
            if tracked.cancelling:
                self._write_cancel(tracked.execution_id)

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


def _mismatch(message: StartExecution) -> tuple[type[BaseException], BaseException, None]:
    error = ExecutionMismatchError(
        f"execution id {message.execution_id!r} already names an execution made of another "
        f"branch class or other items; give this {message.kind}() another execution_id, or "
        "call it with the class and items it was created with")
    return (ExecutionMismatchError, error, None)


def _error_of(error: BaseException | None) -> tuple[type[BaseException], BaseException, None]:
    found = error if error is not None else RuntimeError("no answer")
    return (type(found), found, None)
