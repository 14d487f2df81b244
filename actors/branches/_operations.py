"""The decisions of every durable operation, written once for sync and async branches.

Each operation of a branch context is a generator here. It reads what the log
holds for the operation, decides, and *yields effects* — call the step function,
write an update, park on a suspension, start child branches — and gets each
effect's outcome sent back (or its exception thrown in). ``BranchContext``
(``actors.branches``) performs the effects by blocking its thread;
``AsyncBranchContext`` (``actors.branches``) by awaiting them. Replay,
determinism checks, retries, what is written and when a branch suspends are
this code, so the two kinds of branch cannot drift apart.

Effects live in ``_effects``, the run's place in its log and the replay
machinery in ``_operation_state``. Everything that must wait (a timer, a retry's
backoff, a condition's next poll, child branches) is a suspension, handed to the
host.

    def _wait(self, name, seconds):  # a decision: effects out, outcomes in
        yield from self._sleep(timer)
        yield Write(done, sync=False)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from actors import spans
from actors.branches._actor import BranchActor
from actors.branches._callbacks import Callback, callback_id
from actors.branches._callbacks import as_record as _as_record
from actors.branches._effects import (
    Call,
    Effects,
    Spawn,
    Write,
)
from actors.branches._operation_state import OperationState
from actors.branches._spec import BranchSpec
from actors.branches._stored_errors import decode_error, encode_error
from actors.errors import (
    CallbackFailedError,
    CallbackTimeoutError,
    ConditionTimeoutError,
    DurableActorsError,
    SerializationError,
)
from actors.logcontext import bound_context
from actors.policies import BatchResult, BatchStatus, Completion, Retry
from actors.records._status import OpKind, OpStatus
from actors.refs._ref import spill_if_large

T = TypeVar("T")
S = TypeVar("S")


class OperationCore(OperationState):
    """Each durable operation's decisions, as a generator of effects (module docstring).

    ``execution_id``, ``branch_id``, ``input`` (alias ``item``) and ``logger`` (a
    structlog logger of the application's configuration, bound with the execution
    and the branch, whose events also reach the system's trace; it logs nothing
    while ``is_replaying``) describe the run.
    """

    def _step(self, name: str, fn: Callable[..., T], args: tuple[Any, ...],
              kwargs: dict[str, Any], retry: Retry | None,
              timeout: float | None) -> Effects[T]:
        if timeout is not None and not timeout > 0:
            raise ValueError(f"ctx.step({name!r}, timeout={timeout}): give None or seconds > 0")
        op_id, record = self._begin(OpKind.STEP, name)
        with bound_context(op_id=op_id):
            attempt = 1
            if record is not None:
                if record.status is OpStatus.SUCCEEDED:
                    self._trace.debug("step.replayed", op_id=op_id, step=name)
                    return self._load(record.payload)  # type: ignore[no-any-return]
                if record.status is OpStatus.FAILED:
                    raise self._logged_error(record)
                if record.status is OpStatus.RETRYING:
                    yield from self._sleep(self._as_update(record))
                    attempt = record.attempt + 1
            while True:
                started = time.perf_counter()  # for the trace's step span
                self._step_executions += 1
                parent = spans.current()
                span = None if parent is None else self._attempt_span(parent, op_id, name,
                                                                      attempt)
                previous = spans.activate(span)  # the attempt's checkpoints hang off its span
                try:
                    value = yield Call(name, fn, args, kwargs, timeout, attempt)
                except Exception as exc:
                    if retry is None or not retry.should_retry(exc, attempt):
                        try:
                            yield from self._fail(op_id, OpKind.STEP, name, attempt, exc)
                        finally:
                            _attempt_ended(span, previous, exc)
                        raise
                    delay = retry.delay(attempt)
                    if span is not None:
                        span.attributes["durable.step.retry_delay_s"] = delay
                    _attempt_ended(span, previous, exc, escaped=False)  # handled: retried
                    self._trace.info(
                        "step.retrying", op_id=op_id, step=name, attempt=attempt,
                        delay=delay, error=repr(exc), duration_ms=_ms_since(started),
                    )
                    yield from self._sleep(self._update(
                        op_id, OpKind.STEP, name, OpStatus.RETRYING, attempt=attempt,
                        error=encode_error(exc, self._serialize),
                        due_at=self._now() + delay,
                    ))
                    attempt += 1
                    continue
                except BaseException as exc:  # the attempt never ended (the worker stopped)
                    _attempt_ended(span, previous, exc)
                    raise
                try:
                    # Past ref_threshold_bytes the result is stored once as a Ref; replay
                    # loads it.
                    try:
                        payload = spill_if_large(value, self._serialize)
                    except Exception as exc:
                        if isinstance(exc, DurableActorsError) and not isinstance(
                                exc, SerializationError):
                            raise  # the framework's own verdict, e.g. a saved value's snapshot
                        # Logged as the step's failure: a replay raises it, never runs fn again.
                        unstorable = _unstorable_result(name, exc)
                        yield from self._fail(op_id, OpKind.STEP, name, attempt, unstorable)
                        raise unstorable from exc
                    acked = time.perf_counter()
                    yield Write(self._update(op_id, OpKind.STEP, name, OpStatus.SUCCEEDED,
                                             attempt=attempt, payload=payload), sync=True)
                except BaseException as exc:  # its success is not durable: it runs again
                    _attempt_ended(span, previous, exc)
                    raise
                _attempt_ended(span, previous, None)
                self._trace.debug("step.succeeded", op_id=op_id, step=name, attempt=attempt,
                                  duration_ms=_ms_since(started), checkpoint_ms=_ms_since(acked))
                return value  # type: ignore[no-any-return]

    def _wait(self, name: str, seconds: float) -> Effects[None]:
        if not _finite_seconds(seconds):  # NaN or inf: a timer that never fires
            raise ValueError(
                f"ctx.wait({name!r}, seconds={seconds!r}): give a finite duration >= 0")
        op_id, record = self._begin(OpKind.WAIT, name)
        with bound_context(op_id=op_id):
            if record is not None and record.status is OpStatus.SUCCEEDED:
                return
            if record is None:
                timer = self._update(op_id, OpKind.WAIT, name, OpStatus.SUSPENDED,
                                     due_at=self._now() + seconds)
            else:
                timer = self._as_update(record)  # a replay keeps the first due time
            yield from self._sleep(timer)
            # Not sync: if lost, a replay finds the timer already due and does not wait again.
            yield Write(self._update(op_id, OpKind.WAIT, name, OpStatus.SUCCEEDED,
                                     due_at=timer.due_at), sync=False)

    def _condition(self, name: str, check: Callable[[Any], Any], initial_state: Any,
                   interval: float, max_attempts: int) -> Effects[Any]:
        if not _finite_seconds(interval) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ValueError(
                f"ctx.wait_for_condition({name!r}, interval={interval}, "
                f"max_attempts={max_attempts}): give a finite interval >= 0 and max_attempts >= 1"
            )
        op_id, record = self._begin(OpKind.CONDITION, name)
        with bound_context(op_id=op_id):
            state: Any = initial_state
            attempt = 1
            if record is not None:
                if record.status is OpStatus.SUCCEEDED:
                    return self._load(record.payload)
                if record.status is OpStatus.FAILED:
                    raise self._logged_error(record)
                state = self._load(record.payload)
                yield from self._sleep(self._as_update(record))
                attempt = record.attempt + 1
            while True:
                try:
                    done, state = _polled(name, (yield Call(name, check, (state,))))
                except Exception as exc:
                    yield from self._fail(op_id, OpKind.CONDITION, name, attempt, exc)
                    raise
                if done:
                    yield Write(self._update(op_id, OpKind.CONDITION, name, OpStatus.SUCCEEDED,
                                             attempt=attempt, payload=self._serialize(state)),
                                sync=True)
                    return state
                if attempt >= max_attempts:
                    timeout = ConditionTimeoutError(name, attempt, state)
                    yield from self._fail(op_id, OpKind.CONDITION, name, attempt, timeout)
                    raise timeout
                yield from self._sleep(self._update(
                    op_id, OpKind.CONDITION, name, OpStatus.SUSPENDED, attempt=attempt,
                    payload=self._serialize(state), due_at=self._now() + interval,
                ))
                attempt += 1

    def _create_callback(self, name: str, timeout: float | None) -> Effects[Callback]:
        if timeout is not None and not (_finite_seconds(timeout) and timeout > 0):
            raise ValueError(
                f"create_callback({name!r}, timeout={timeout!r}): give seconds > 0, or None "
                "to wait without limit")
        op_id, record = self._begin(OpKind.CALLBACK, name)
        if record is None:
            due = None if timeout is None else self._now() + timeout
            record_update = self._update(op_id, OpKind.CALLBACK, name, OpStatus.STARTED,
                                         due_at=due)
            # Sync: outside code may complete the id as soon as it learns it.
            yield Write(record_update, sync=True)
            self._log[op_id] = _as_record(record_update, len(self._log))
        else:
            due = record.due_at
        return Callback(callback_id(self.branch_id, op_id), name, op_id, due)

    def _wait_for_callback(self, callback: Callback) -> Effects[Any]:
        record = self._log.get(callback.op_id)
        if record is None or record.kind is not OpKind.CALLBACK:
            raise ValueError(f"{callback!r} was not created by this branch's create_callback()")
        self._claim(f"wait_for_callback({callback.name!r})")
        with bound_context(op_id=callback.op_id):
            if record.status in (OpStatus.SUCCEEDED, OpStatus.FAILED):
                return self._callback_outcome(record.payload, record.error, callback)
            op = self._update(callback.op_id, OpKind.CALLBACK, callback.name, OpStatus.SUSPENDED,
                              due_at=callback.timeout_at)
            payload = yield from self._suspend(op)  # resumed in place with the outcome, or None
            if payload is not None:
                return self._callback_outcome(payload, None, callback)
            timed_out = CallbackTimeoutError(
                f"callback {callback.id!r} ({callback.name!r}) was not completed in time"
            )
            yield Write(self._update(callback.op_id, OpKind.CALLBACK, callback.name,
                                     OpStatus.FAILED,
                                     error=encode_error(timed_out, self._serialize)), sync=True)
            raise timed_out

    def _callback_outcome(self, payload: bytes | None, error: bytes | None,
                          callback: Callback) -> Any:
        if error is not None:
            raise decode_error(error, self._deserialize)
        ok, value = self._deserialize(payload) if payload is not None else (True, None)
        if ok:
            return value
        raise value if isinstance(value, BaseException) else CallbackFailedError(str(value))

    def _children(
        self,
        name: str,
        pairs: list[tuple[type[BranchActor], Any]],
        max_concurrency: int | None,
        completion: Completion | None,
    ) -> Effects[BatchResult]:
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError(f"max_concurrency={max_concurrency}: give None or at least 1")
        policy = completion if completion is not None else Completion.all_successful()
        policy.check_total(len(pairs))
        op_id, record = self._begin(OpKind.CHILDREN, name)
        with bound_context(op_id=op_id):
            if record is not None and record.status is OpStatus.SUCCEEDED:
                return self._batch(self._load(record.payload))
            if record is not None and record.status is OpStatus.FAILED:
                raise self._logged_error(record)
            if not pairs:
                empty = BatchResult((), (), (), BatchStatus.ALL_COMPLETED)
                yield Write(self._update(op_id, OpKind.CHILDREN, name, OpStatus.SUCCEEDED,
                                         payload=self._serialize(empty)), sync=False)
                return empty
            specs = tuple(
                BranchSpec(self.execution_id, f"{self.branch_id}/{op_id}/{index}", cls, item,
                           index, self.branch_id, op_id)
                for index, (cls, item) in enumerate(pairs)
            )
            parent = self._update(op_id, OpKind.CHILDREN, name, OpStatus.SUSPENDED)
            yield Spawn(parent, specs, max_concurrency, policy)
            self._trace.info("children.started", op_id=op_id, children=len(specs))
            payload = yield from self._suspend(parent)
            if payload is None:
                raise RuntimeError(
                    f"the host resumed children {name!r} in place without their BatchResult; "
                    "BranchHost.suspend must return it for a CHILDREN operation"
                )
            return self._batch(self._deserialize(payload))

    def _attempt_span(self, parent: spans.TraceContext, op_id: str, name: str,
                      attempt: int) -> spans.Span | None:
        attributes: spans.Attributes = {
            "durable.execution.id": self.execution_id,
            "durable.branch.id": self.branch_id,
            "durable.operation.id": op_id,
            "durable.step.name": name,
            "durable.step.attempt": attempt,
        }
        if self._epoch is not None:
            attributes["durable.run.epoch"] = self._epoch
        return spans.start(f"step {name}", parent, attributes)


def child_pairs(
    branches: Sequence[type[BranchActor] | tuple[type[BranchActor], Any]],
    check: Callable[[object], type[BranchActor]],
) -> list[tuple[type[BranchActor], Any]]:
    """``parallel``'s branches as ``(cls, input)`` pairs: a bare class gets input ``None``."""
    pairs: list[tuple[type[BranchActor], Any]] = []
    for branch in branches:
        cls, item = branch if isinstance(branch, tuple) else (branch, None)
        pairs.append((check(cls), item))
    return pairs


def _attempt_ended(span: spans.Span | None, previous: Any, error: BaseException | None,
                   escaped: bool = True) -> None:
    """A step attempt's span is no longer current; it is recorded (with ``error``, if any)."""
    spans.restore(previous)
    if span is not None and not isinstance(error, GeneratorExit):
        spans.finish(span, error, escaped=escaped)


def _ms_since(started: float) -> float:
    """Milliseconds since ``started`` (``time.perf_counter``): a span's length in the trace."""
    return round((time.perf_counter() - started) * 1e3, 3)


def _polled(name: str, answer: Any) -> tuple[bool, Any]:
    if not (isinstance(answer, tuple) and len(answer) == 2):
        raise TypeError(
            f"the check of condition {name!r} returned {answer!r}; return (done, new_state) "
            "or ConditionResult(done, new_state)"
        )
    return bool(answer[0]), answer[1]


def _unstorable_result(step: str, exc: Exception) -> SerializationError:
    return SerializationError(
        f"step {step!r} returned a result that could not be pickled: {exc}; return plain "
        "data from the step (a Ref from ctx.save for big values), or give the object a "
        "__reduce__"
    )


def _finite_seconds(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and 0 <= value < math.inf)

