"""``run_branch``: one run of a branch over its log, to its end or to its next suspension.

A host calls it to start a branch and again, with the fresh log, each time it
resumes an evicted branch. The run replays what the log holds and goes on from
there; when ``run`` returns or raises, the branch's end is checkpointed
synchronously, so that an acknowledged end is never run again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actors import tracelog
from actors.branch import BranchHost, BranchSpec, BranchSuspended, decode_error, encode_error
from actors.context import BranchContext
from actors.errors import CheckpointError, StepFailedError
from actors.logcontext import bound_context
from actors.messages import BranchLog, BranchRecord, BranchStatus, BranchUpdate, OperationUpdate
from actors.store import is_finished
from actors.tracebacks import keep_traceback, traceback_text

_log = tracelog.get_logger("actors.branch")


@dataclass(frozen=True, slots=True)
class BranchOutcome:
    """How one run of a branch ended: ``SUCCEEDED``, ``FAILED`` or ``SUSPENDED``.

    ``replayed`` says the run started from a non-empty log (the counter
    ``branch.replays``); ``step_executions`` counts the step functions it
    actually called (the counter ``step.executions``).

        outcome = run_branch(spec, log, host)
        if outcome.status is BranchStatus.SUSPENDED:
            evict(spec.branch_id, outcome.suspended_on)
    """

    status: BranchStatus
    result: Any = None
    error: BaseException | None = None
    suspended_on: OperationUpdate | None = None
    replayed: bool = False
    step_executions: int = 0


def run_branch(spec: BranchSpec, log: BranchLog, host: BranchHost) -> BranchOutcome:
    """Run ``spec``'s branch from ``log`` until it ends or suspends.

    A branch whose log says it already ended is not run again: its logged end is
    returned. Any exception from ``run`` fails the branch, except
    ``CheckpointError``: then nothing after the last acknowledged checkpoint is
    durable, nothing is recorded, and the error propagates so that the host can
    replay the branch later.

        outcome = run_branch(BranchSpec("e-1", "0", Resize, "a.png"), store.read_log("0"), host)
    """
    if log.branch_id != spec.branch_id:
        raise ValueError(f"the log of branch {log.branch_id!r} cannot run {spec.branch_id!r}")
    with bound_context(execution_id=spec.execution_id, branch_id=spec.branch_id):
        if is_finished(log.branch):
            assert log.branch is not None
            return _logged_end(log.branch, host)
        replayed = bool(log.operations)
        ctx = BranchContext(spec, log, host)
        ctx._trace.info("branch.running", replay=replayed, logged_operations=len(log.operations))
        try:
            result = spec.branch_cls().run(ctx, spec.input)
        except BranchSuspended as suspended:
            return _suspended(ctx, suspended.op, replayed)
        except CheckpointError:
            raise
        except Exception as exc:
            if ctx.suspended_on is not None:  # run() wrapped our BranchSuspended in its own error
                return _suspended(ctx, ctx.suspended_on, replayed)
            return _fail(spec, ctx, host, exc, replayed)
        if ctx.suspended_on is not None:
            ctx._trace.error("branch.swallowed_suspension",
                             hint="do not catch BaseException around ctx operations in run()")
            return _suspended(ctx, ctx.suspended_on, replayed)
        if ctx.operations_called < len(log.operations):
            ctx._trace.warning("branch.unvisited_operations", called=ctx.operations_called,
                               logged=len(log.operations))
        try:
            payload = host.serialize(result)
        except Exception as exc:
            return _fail(spec, ctx, host, exc, replayed)
        host.checkpoint(BranchUpdate(spec.execution_id, spec.branch_id, BranchStatus.SUCCEEDED,
                                     result=payload, epoch=getattr(host, "epoch", None)),
                        sync=True)
        ctx._trace.info("branch.succeeded", step_executions=ctx.step_executions)
        return BranchOutcome(BranchStatus.SUCCEEDED, result=result, replayed=replayed,
                             step_executions=ctx.step_executions)


def _suspended(ctx: BranchContext, op: OperationUpdate, replayed: bool) -> BranchOutcome:
    ctx._trace.info("branch.suspended", op_id=op.op_id, kind=op.kind.value, due_at=op.due_at)
    return BranchOutcome(BranchStatus.SUSPENDED, suspended_on=op, replayed=replayed,
                         step_executions=ctx.step_executions)


def _fail(spec: BranchSpec, ctx: BranchContext, host: BranchHost, exc: Exception,
          replayed: bool) -> BranchOutcome:
    host.checkpoint(BranchUpdate(spec.execution_id, spec.branch_id, BranchStatus.FAILED,
                                 error=encode_error(exc, host.serialize),
                                 epoch=getattr(host, "epoch", None)), sync=True)
    text = traceback_text(exc)
    ctx._trace.error("branch.failed", error=repr(exc), step_executions=ctx.step_executions,
                     traceback=text)
    keep_traceback(exc, text, f"branch {spec.branch_id!r}")  # for whoever gets exc: the caller
    return BranchOutcome(BranchStatus.FAILED, error=exc, replayed=replayed,
                         step_executions=ctx.step_executions)


def _logged_end(branch: BranchRecord, host: BranchHost) -> BranchOutcome:
    _log.info("branch.already_ended", status=branch.status.value)
    if branch.status is BranchStatus.SUCCEEDED:
        result = None if branch.result is None else host.deserialize(branch.result)
        return BranchOutcome(BranchStatus.SUCCEEDED, result=result)
    if branch.error is None:
        missing = f"branch {branch.branch_id!r} failed without a logged error"
        return BranchOutcome(BranchStatus.FAILED, error=StepFailedError(missing, "unknown"))
    return BranchOutcome(BranchStatus.FAILED, error=decode_error(branch.error, host.deserialize))


__all__ = ["BranchOutcome", "run_branch"]
