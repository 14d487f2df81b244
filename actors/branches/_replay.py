"""``run_branch``: one run of a branch over its log, to its end or to its next suspension.

A host calls it to start a branch and again, with the fresh log, each time it
resumes an evicted branch. The run replays what the log holds and goes on from
there; when ``run`` returns or raises, the branch's end is checkpointed
synchronously, so that an acknowledged end is never run again.
``run_branch_async`` is the same run of an async branch on an event loop: both
perform the effects of ``run_effects``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actors import spans, tracelog
from actors.branches._actor import is_async_branch
from actors.branches._async_context import AsyncBranchContext, AsyncBranchHost
from actors.branches._context import BranchContext
from actors.branches._effects import Effects, HostBasics, Invoke, Write
from actors.branches._host import BranchHost, BranchSuspended
from actors.branches._operations import OperationCore
from actors.branches._spec import BranchSpec
from actors.branches._stored_errors import decode_error, encode_error
from actors.errors import CheckpointError, StepFailedError
from actors.logcontext import bound_context
from actors.records._rows import BranchLog, BranchRecord
from actors.records._status import BranchStatus
from actors.records._updates import BranchUpdate, OperationUpdate
from actors.store._contract import is_finished
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
    replay the branch later. An async branch (``async def run``) runs with
    ``run_branch_async`` instead.

        outcome = run_branch(BranchSpec("e-1", "0", Resize, "a.png"), store.read_log("0"), host)
    """
    _check_log(spec, log)
    if is_async_branch(spec.branch_cls):
        raise TypeError(f"{spec.branch_cls.__qualname__} is an async branch (async def run): "
                        "run it with run_branch_async on an event loop")
    with bound_context(execution_id=spec.execution_id, branch_id=spec.branch_id):
        if is_finished(log.branch):
            assert log.branch is not None
            return _logged_end(log.branch, host)
        ctx = BranchContext(spec, log, host)
        span = _run_span(spec, log, host)
        if span is None:
            return ctx._drive(run_effects(spec, log, ctx))
        previous = spans.activate(span)
        try:
            outcome = ctx._drive(run_effects(spec, log, ctx))
        except BaseException as exc:
            _run_ended(span, None, exc)
            raise
        finally:
            spans.restore(previous)
        _run_ended(span, outcome, None)
        return outcome


async def run_branch_async(spec: BranchSpec, log: BranchLog,
                           host: AsyncBranchHost) -> BranchOutcome:
    """``run_branch`` for an async branch: the same run, its effects awaited on the loop.

        outcome = await run_branch_async(spec, store.read_log(spec.branch_id), host)
    """
    _check_log(spec, log)
    if not is_async_branch(spec.branch_cls):
        raise TypeError(f"{spec.branch_cls.__qualname__} is a sync branch (def run): run it "
                        "with run_branch on a thread")
    with bound_context(execution_id=spec.execution_id, branch_id=spec.branch_id):
        if is_finished(log.branch):
            assert log.branch is not None
            return _logged_end(log.branch, host)
        ctx = AsyncBranchContext(spec, log, host)
        span = _run_span(spec, log, host)
        if span is None:
            return await ctx._drive(run_effects(spec, log, ctx))
        previous = spans.activate(span)
        try:
            outcome = await ctx._drive(run_effects(spec, log, ctx))
        except BaseException as exc:
            _run_ended(span, None, exc)
            raise
        finally:
            spans.restore(previous)
        _run_ended(span, outcome, None)
        return outcome


def run_effects(spec: BranchSpec, log: BranchLog, ctx: OperationCore) -> Effects[BranchOutcome]:
    """The run's own decisions, for either kind of context to perform: run ``run``, then
    write how it ended (a success or a failure), or report the suspension that unwound it."""
    replayed = bool(log.operations)
    ctx._trace.info("branch.running", replay=replayed, logged_operations=len(log.operations))
    try:
        result = yield Invoke(spec.branch_cls(), spec.input)
    except BranchSuspended as suspended:
        return _suspended(ctx, suspended.op, replayed)
    except CheckpointError:
        raise
    except Exception as exc:
        if ctx.suspended_on is not None:  # run() wrapped our BranchSuspended in its own error
            return _suspended(ctx, ctx.suspended_on, replayed)
        return (yield from _fail(spec, ctx, exc, replayed))
    if ctx.suspended_on is not None:
        ctx._trace.error("branch.swallowed_suspension",
                         hint="do not catch BaseException around ctx operations in run()")
        return _suspended(ctx, ctx.suspended_on, replayed)
    if ctx.operations_called < len(log.operations):
        ctx._trace.warning("branch.unvisited_operations", called=ctx.operations_called,
                           logged=len(log.operations))
    try:
        payload = ctx._serialize(result)
    except Exception as exc:
        return (yield from _fail(spec, ctx, exc, replayed))
    yield Write(BranchUpdate(spec.execution_id, spec.branch_id, BranchStatus.SUCCEEDED,
                             result=payload, epoch=ctx._epoch), sync=True)
    ctx._trace.info("branch.succeeded", step_executions=ctx.step_executions)
    return BranchOutcome(BranchStatus.SUCCEEDED, result=result, replayed=replayed,
                         step_executions=ctx.step_executions)


def _run_span(spec: BranchSpec, log: BranchLog, host: object) -> spans.Span | None:
    """The span of this run of the branch, under the parent its host was given (if any)."""
    parent = getattr(host, "trace", None)
    if parent is None:
        return None
    attributes: spans.Attributes = {
        "durable.execution.id": spec.execution_id,
        "durable.branch.id": spec.branch_id,
        "durable.branch.class": spec.branch_cls.__qualname__,
        "durable.branch.index": spec.index,
        "durable.branch.replay": bool(log.operations),
    }
    epoch = getattr(host, "epoch", None)
    if epoch is not None:
        attributes["durable.run.epoch"] = epoch
    worker = getattr(host, "worker_id", None)
    if worker is not None:
        attributes["durable.worker.id"] = worker
    if spec.parent_branch_id is not None:
        attributes["durable.branch.parent_id"] = spec.parent_branch_id
    return spans.start(f"branch {spec.branch_cls.__qualname__}", parent, attributes)


def _run_ended(span: spans.Span, outcome: BranchOutcome | None,
               error: BaseException | None) -> None:
    """Record how the run ended: its outcome, or the error that aborted it (replayed later)."""
    if outcome is None:
        span.attributes["durable.branch.outcome"] = "aborted"
        spans.finish(span, error)
        return
    span.attributes["durable.branch.outcome"] = outcome.status.value.lower()
    span.attributes["durable.branch.step_executions"] = outcome.step_executions
    if outcome.suspended_on is not None:
        span.attributes["durable.branch.suspended_on"] = outcome.suspended_on.op_id
    if outcome.status is BranchStatus.FAILED and outcome.error is not None:
        spans.finish(span, outcome.error)
    else:
        spans.finish(span, status=spans.SpanStatus.UNSET)


def _check_log(spec: BranchSpec, log: BranchLog) -> None:
    if log.branch_id != spec.branch_id:
        raise ValueError(f"the log of branch {log.branch_id!r} cannot run {spec.branch_id!r}")


def _suspended(ctx: OperationCore, op: OperationUpdate, replayed: bool) -> BranchOutcome:
    ctx._trace.info("branch.suspended", op_id=op.op_id, kind=op.kind.value, due_at=op.due_at)
    return BranchOutcome(BranchStatus.SUSPENDED, suspended_on=op, replayed=replayed,
                         step_executions=ctx.step_executions)


def _fail(spec: BranchSpec, ctx: OperationCore, exc: Exception,
          replayed: bool) -> Effects[BranchOutcome]:
    yield Write(BranchUpdate(spec.execution_id, spec.branch_id, BranchStatus.FAILED,
                             error=encode_error(exc, ctx._serialize), epoch=ctx._epoch),
                sync=True)
    text = traceback_text(exc)
    ctx._trace.error("branch.failed", error=repr(exc), step_executions=ctx.step_executions,
                     traceback=text)
    keep_traceback(exc, text, f"branch {spec.branch_id!r}")  # for whoever gets exc: the caller
    return BranchOutcome(BranchStatus.FAILED, error=exc, replayed=replayed,
                         step_executions=ctx.step_executions)


def _logged_end(branch: BranchRecord, host: HostBasics) -> BranchOutcome:
    _log.info("branch.already_ended", status=branch.status.value)
    if branch.status is BranchStatus.SUCCEEDED:
        result = None if branch.result is None else host.deserialize(branch.result)
        return BranchOutcome(BranchStatus.SUCCEEDED, result=result)
    if branch.error is None:
        missing = f"branch {branch.branch_id!r} failed without a logged error"
        return BranchOutcome(BranchStatus.FAILED, error=StepFailedError(missing, "unknown"))
    return BranchOutcome(BranchStatus.FAILED, error=decode_error(branch.error, host.deserialize))
