"""``BranchContext``: the durable operations a branch's ``run`` calls, replayed from its log.

The n-th operation that ``run`` calls gets the op id ``str(n)``. On a replay the
context meets the same ids, finds what the log says about each, and returns or
raises what was logged instead of doing the work again. Everything that must
wait (a timer, a retry's backoff, a condition's next poll, child branches) is a
suspension, handed to the host.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Generic, NamedTuple, TypeVar

import structlog

from actors.branch import (
    BranchActor,
    BranchHost,
    BranchSpec,
    BranchSuspended,
    check_branch_class,
    decode_error,
    encode_error,
)
from actors.callbacks import Callback, callback_id
from actors.callbacks import as_record as _as_record
from actors.errors import (
    CallbackFailedError,
    CallbackTimeoutError,
    ConditionTimeoutError,
    NonDeterminismError,
    StepFailedError,
)
from actors.logcontext import bound_context
from actors.messages import BranchLog, OperationRecord, OperationUpdate, OpKind, OpStatus
from actors.policies import BatchResult, BatchStatus, Completion, Retry
from actors.ref import Ref, spill_if_large, unspill
from actors.ref import save as save_ref

T = TypeVar("T")
S = TypeVar("S")


class ConditionResult(NamedTuple, Generic[S]):
    """What a ``wait_for_condition`` check returns: whether it holds, and the state to keep.

    Any ``(done, state)`` tuple does as well.
    """

    done: bool
    state: S


def _describe(kind: OpKind, name: str) -> str:
    return f"{kind.value.lower()} {name!r}"


class BranchContext:
    """The durable operations of one branch run; ``run(ctx, item)`` receives it.

    ``execution_id``, ``branch_id``, ``input`` (alias ``item``) and ``logger`` (a
    structlog logger bound with the execution and the branch) describe the run.
    Call its operations from ``run``'s own thread, one at a time, and never from
    inside a step function or a condition check.

        def run(self, ctx: BranchContext, item: str) -> int:
            size = ctx.step("measure", measure, item, retry=Retry(attempts=5))
            ctx.wait("settle", seconds=30)
            ctx.logger.info("measured", size=size)
            return size
    """

    def __init__(self, spec: BranchSpec, log: BranchLog, host: BranchHost) -> None:
        self.execution_id = spec.execution_id
        self.branch_id = spec.branch_id
        self.input: Any = spec.input
        self.logger: Any = structlog.get_logger("actors.branch").bind(
            execution_id=spec.execution_id, branch_id=spec.branch_id
        )
        self._host = host
        # The run's epoch, when the host has one: its updates carry it from the start
        # instead of being copied by the host to add it (a copy per update per branch).
        self._epoch: int | None = getattr(host, "epoch", None)
        # A host that can tell a stale run is asked before every operation (a fence).
        self._ensure_current: Callable[[], None] | None = getattr(host, "ensure_current", None)
        self._log = log.by_op_id()
        self._calls = 0
        self._inside: str | None = None
        self._step_executions = 0
        self._suspended_on: OperationUpdate | None = None

    @property
    def item(self) -> Any:
        """The branch's input, as ``map`` calls it."""
        return self.input

    @property
    def operations_called(self) -> int:
        """How many operations this run has called so far (the last op id)."""
        return self._calls

    @property
    def step_executions(self) -> int:
        """Step functions this run actually called (not answered from the log)."""
        return self._step_executions

    @property
    def suspended_on(self) -> OperationUpdate | None:
        """The operation whose suspension unwound this run, if any."""
        return self._suspended_on

    # -- operations ---------------------------------------------------------------

    def step(
        self,
        name: str,
        fn: Callable[..., T],
        /,
        *args: Any,
        retry: Retry | None = None,
        **kwargs: Any,
    ) -> T:
        """Call ``fn(*args, **kwargs)`` once for this execution and return its result.

        A logged success is returned without calling ``fn``; a logged failure is
        raised again. A success is acknowledged durable before ``step`` returns,
        so it never runs again; a crash before that runs it again (at least
        once). With ``retry``, a failed attempt suspends the branch for the
        backoff and only this step runs again. ``retry`` is ``step``'s own
        keyword: give a function that takes one through ``functools.partial``.

            user = ctx.step("load", db.load_user, user_id, retry=Retry(attempts=3))
        """
        op_id, record = self._begin(OpKind.STEP, name)
        with bound_context(op_id=op_id):
            attempt = 1
            if record is not None:
                if record.status is OpStatus.SUCCEEDED:
                    self.logger.debug("step.replayed", op_id=op_id, step=name)
                    return self._load(record.payload)  # type: ignore[no-any-return]
                if record.status is OpStatus.FAILED:
                    raise self._logged_error(record)
                if record.status is OpStatus.RETRYING:
                    self._sleep(self._as_update(record))
                    attempt = record.attempt + 1
            while True:
                started = time.perf_counter()  # for the trace's step span
                self._inside = name  # operations called from fn are refused (see _begin)
                try:
                    self._step_executions += 1
                    value = fn(*args, **kwargs)
                except Exception as exc:
                    if retry is None or not retry.should_retry(exc, attempt):
                        self._fail(op_id, OpKind.STEP, name, attempt, exc)
                        raise
                    delay = retry.delay(attempt)
                    self.logger.info(
                        "step.retrying", op_id=op_id, step=name, attempt=attempt,
                        delay=delay, error=repr(exc), duration_ms=_ms_since(started),
                    )
                    self._sleep(self._update(
                        op_id, OpKind.STEP, name, OpStatus.RETRYING, attempt=attempt,
                        error=encode_error(exc, self._host.serialize),
                        due_at=self._host.now() + delay,
                    ))
                    attempt += 1
                    continue
                finally:
                    self._inside = None
                # Past ref_threshold_bytes the result is stored once as a Ref; replay loads it.
                payload = spill_if_large(value, self._host.serialize)
                acked = time.perf_counter()
                self._host.checkpoint(
                    self._update(op_id, OpKind.STEP, name, OpStatus.SUCCEEDED,
                                 attempt=attempt, payload=payload),
                    sync=True,
                )
                self.logger.debug("step.succeeded", op_id=op_id, step=name, attempt=attempt,
                                  duration_ms=_ms_since(started), checkpoint_ms=_ms_since(acked))
                return value

    def save(self, obj: Any) -> Ref:
        """Store ``obj`` once, by content; return its ``Ref`` at once, digest still pending.

        The snapshot is taken now (``obj``'s serialized bytes; ``bytes`` are used
        as they are; a large value is serialized by a forked child, copy-on-write),
        so changing ``obj`` afterwards does not change what is stored; hashing and
        the durable write happen in the digest actor. A
        checkpoint that names the Ref is written only once its blob is durable.
        ``save`` is not an operation: it takes no op id, and a replay that saves
        the same bytes again finds them stored (a dedup hit).

            return {"id": item, "image": ctx.save(make_big_image(raw))}
        """
        return save_ref(obj, self._host.serialize)

    def wait(self, name: str, *, seconds: float) -> None:
        """Suspend the branch for ``seconds``, holding no thread meanwhile.

            ctx.wait("cooldown", seconds=30)
        """
        if seconds < 0:
            raise ValueError(f"ctx.wait({name!r}, seconds={seconds}): give a duration >= 0")
        op_id, record = self._begin(OpKind.WAIT, name)
        with bound_context(op_id=op_id):
            if record is not None and record.status is OpStatus.SUCCEEDED:
                return
            if record is None:
                timer = self._update(op_id, OpKind.WAIT, name, OpStatus.SUSPENDED,
                                     due_at=self._host.now() + seconds)
            else:
                timer = self._as_update(record)  # a replay keeps the first due time
            self._sleep(timer)
            # Not sync: if lost, a replay finds the timer already due and does not wait again.
            self._host.checkpoint(
                self._update(op_id, OpKind.WAIT, name, OpStatus.SUCCEEDED, due_at=timer.due_at),
                sync=False,
            )

    def wait_for_condition(
        self,
        name: str,
        check: Callable[[Any], tuple[bool, S]],
        *,
        initial_state: Any = None,
        interval: float = 1.0,
        max_attempts: int = 60,
    ) -> S:
        """Poll ``check(state) -> (done, new_state)`` every ``interval`` seconds until done.

        The first poll gets ``initial_state``, each next one the state the last
        returned; the state is checkpointed with every suspension in between.
        Returns the final state. Raises ``ConditionTimeoutError`` once
        ``max_attempts`` polls did not hold; an exception from ``check`` fails
        the operation (both are logged, so a replay raises them again).

            def ready(state):
                job = fetch_job(state["job_id"])
                return ConditionResult(job.done, {**state, "progress": job.progress})

            final = ctx.wait_for_condition("ready", ready, initial_state={"job_id": 7})
        """
        if interval < 0 or max_attempts < 1:
            raise ValueError(
                f"ctx.wait_for_condition({name!r}, interval={interval}, "
                f"max_attempts={max_attempts}): give interval >= 0 and max_attempts >= 1"
            )
        op_id, record = self._begin(OpKind.CONDITION, name)
        with bound_context(op_id=op_id):
            state: Any = initial_state
            attempt = 1
            if record is not None:
                if record.status is OpStatus.SUCCEEDED:
                    return self._load(record.payload)  # type: ignore[no-any-return]
                if record.status is OpStatus.FAILED:
                    raise self._logged_error(record)
                state = self._load(record.payload)
                self._sleep(self._as_update(record))
                attempt = record.attempt + 1
            while True:
                try:
                    with self._running(name):
                        done, state = _poll(name, check, state)
                except Exception as exc:
                    self._fail(op_id, OpKind.CONDITION, name, attempt, exc)
                    raise
                if done:
                    self._host.checkpoint(
                        self._update(op_id, OpKind.CONDITION, name, OpStatus.SUCCEEDED,
                                     attempt=attempt, payload=self._host.serialize(state)),
                        sync=True,
                    )
                    return state  # type: ignore[no-any-return]
                if attempt >= max_attempts:
                    timeout = ConditionTimeoutError(name, attempt, state)
                    self._fail(op_id, OpKind.CONDITION, name, attempt, timeout)
                    raise timeout
                self._sleep(self._update(
                    op_id, OpKind.CONDITION, name, OpStatus.SUSPENDED, attempt=attempt,
                    payload=self._host.serialize(state), due_at=self._host.now() + interval,
                ))
                attempt += 1

    def create_callback(self, name: str, *, timeout: float | None = None) -> Callback:
        """Create a callback that outside code completes by id; its id is durable on return.

            cb = ctx.create_callback("approval", timeout=3600)
            ctx.step("ask", notify_reviewer, cb.id)   # system.complete_callback(cb.id, "ok")
            verdict = ctx.wait_for_callback(cb)
        """
        if timeout is not None and timeout <= 0:
            raise ValueError(f"create_callback({name!r}, timeout={timeout}): give None or > 0")
        op_id, record = self._begin(OpKind.CALLBACK, name)
        if record is None:
            due = None if timeout is None else self._host.now() + timeout
            record_update = self._update(op_id, OpKind.CALLBACK, name, OpStatus.STARTED,
                                         due_at=due)
            # Sync: outside code may complete the id as soon as it learns it.
            self._host.checkpoint(record_update, sync=True)
            self._log[op_id] = _as_record(record_update, len(self._log))
        else:
            due = record.due_at
        return Callback(callback_id(self.branch_id, op_id), name, op_id, due)

    def wait_for_callback(self, callback: Callback) -> Any:
        """Suspend until ``callback`` is completed (its value) or failed or timed out (raises).

        Not an operation of its own: it waits on the callback's operation, so a
        replay finds the outcome there. Raises ``CallbackFailedError`` (or the
        error given to ``fail_callback``) and ``CallbackTimeoutError``.
        """
        record = self._log.get(callback.op_id)
        if record is None or record.kind is not OpKind.CALLBACK:
            raise ValueError(f"{callback!r} was not created by this branch's create_callback()")
        with bound_context(op_id=callback.op_id):
            if record.status in (OpStatus.SUCCEEDED, OpStatus.FAILED):
                return self._callback_outcome(record.payload, record.error, callback)
            op = self._update(callback.op_id, OpKind.CALLBACK, callback.name, OpStatus.SUSPENDED,
                              due_at=callback.timeout_at)
            payload = self._suspend(op)  # resumed in place with the outcome, or None: timed out
            if payload is not None:
                return self._callback_outcome(payload, None, callback)
            timed_out = CallbackTimeoutError(
                f"callback {callback.id!r} ({callback.name!r}) was not completed in time"
            )
            self._host.checkpoint(
                self._update(callback.op_id, OpKind.CALLBACK, callback.name, OpStatus.FAILED,
                             error=encode_error(timed_out, self._host.serialize)),
                sync=True,
            )
            raise timed_out

    def _callback_outcome(self, payload: bytes | None, error: bytes | None,
                          callback: Callback) -> Any:
        if error is not None:
            raise decode_error(error, self._host.deserialize)
        ok, value = self._host.deserialize(payload) if payload is not None else (True, None)
        if ok:
            return value
        raise value if isinstance(value, BaseException) else CallbackFailedError(str(value))

    def map(
        self,
        name: str,
        branch_cls: type[BranchActor],
        items: Iterable[Any],
        *,
        max_concurrency: int | None = None,
        completion: Completion | None = None,
    ) -> BatchResult:
        """Run ``branch_cls`` once per item as child branches; suspend until the batch ends.

        Defaults to ``Completion.all_successful()`` (fail-fast). Child ``i`` of this
        operation is the branch ``f"{ctx.branch_id}/{op_id}/{i}"``.

            thumbs = ctx.map("thumbs", Thumb, sizes, max_concurrency=4).values()
        """
        check_branch_class(branch_cls)
        return self._children(name, [(branch_cls, item) for item in items],
                              max_concurrency, completion)

    def parallel(
        self,
        name: str,
        branches: Sequence[type[BranchActor] | tuple[type[BranchActor], Any]],
        *,
        completion: Completion | None = None,
    ) -> BatchResult:
        """Run different branches at once: classes (input ``None``) or ``(cls, input)`` pairs.

        Defaults to ``Completion.all_successful()``.

            batch = ctx.parallel("checks", [CheckA, (CheckB, {"strict": True})])
        """
        pairs: list[tuple[type[BranchActor], Any]] = []
        for branch in branches:
            cls, item = branch if isinstance(branch, tuple) else (branch, None)
            pairs.append((check_branch_class(cls), item))
        return self._children(name, pairs, None, completion)

    # -- the replay machinery -------------------------------------------------------

    def _children(
        self,
        name: str,
        pairs: list[tuple[type[BranchActor], Any]],
        max_concurrency: int | None,
        completion: Completion | None,
    ) -> BatchResult:
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
                self._host.checkpoint(
                    self._update(op_id, OpKind.CHILDREN, name, OpStatus.SUCCEEDED,
                                 payload=self._host.serialize(empty)),
                    sync=False,
                )
                return empty
            specs = [
                BranchSpec(self.execution_id, f"{self.branch_id}/{op_id}/{index}", cls, item,
                           index, self.branch_id, op_id)
                for index, (cls, item) in enumerate(pairs)
            ]
            parent = self._update(op_id, OpKind.CHILDREN, name, OpStatus.SUSPENDED)
            self._host.start_children(parent, specs, max_concurrency=max_concurrency,
                                      completion=policy)
            self.logger.info("children.started", op_id=op_id, children=len(specs))
            payload = self._suspend(parent)
            if payload is None:
                raise RuntimeError(
                    f"the host resumed children {name!r} in place without their BatchResult; "
                    "BranchHost.suspend must return it for a CHILDREN operation"
                )
            return self._batch(self._host.deserialize(payload))

    def _begin(self, kind: OpKind, name: str) -> tuple[str, OperationRecord | None]:
        """The next op id, and what the log holds for it; raises on a different operation."""
        if self._suspended_on is not None:
            raise BranchSuspended(self._suspended_on)  # run() caught the first one; unwind again
        if self._inside is not None:
            raise RuntimeError(
                f"{_describe(kind, name)} was called inside {self._inside!r}; operations cannot "
                "nest: call them from run(), one after the other"
            )
        if not isinstance(name, str) or not name:
            raise TypeError(f"an operation needs a non-empty str name, not {name!r}")
        if self._ensure_current is not None:
            self._ensure_current()  # a stale run stops here, before its next step runs
        self._calls += 1
        op_id = str(self._calls)
        record = self._log.get(op_id)
        if record is not None and (record.kind is not kind or record.name != name):
            raise NonDeterminismError(
                self.branch_id, op_id, _describe(record.kind, record.name), _describe(kind, name)
            )
        return op_id, record

    @contextmanager
    def _running(self, name: str) -> Iterator[None]:
        self._inside = name
        try:
            yield
        finally:
            self._inside = None

    def _update(self, op_id: str, kind: OpKind, name: str, status: OpStatus,
                **fields: Any) -> OperationUpdate:
        return OperationUpdate(self.execution_id, self.branch_id, op_id, kind, name, status,
                               epoch=self._epoch, **fields)

    def _as_update(self, record: OperationRecord) -> OperationUpdate:
        return self._update(record.op_id, record.kind, record.name, record.status,
                            attempt=record.attempt, payload=record.payload, error=record.error,
                            due_at=record.due_at)

    def _sleep(self, timer: OperationUpdate) -> None:
        """Suspend until ``timer.due_at``, unless it is already due."""
        if timer.due_at is not None and timer.due_at > self._host.now():
            self._suspend(timer)

    def _suspend(self, op: OperationUpdate) -> bytes | None:
        self.logger.debug("operation.suspending", op_id=op.op_id, kind=op.kind.value,
                          due_at=op.due_at)
        try:
            return self._host.suspend(op)
        except BranchSuspended:
            self._suspended_on = op
            raise

    def _fail(self, op_id: str, kind: OpKind, name: str, attempt: int,
              exc: BaseException) -> None:
        self.logger.info(f"{kind.value.lower()}.failed", op_id=op_id, attempt=attempt,
                         error=repr(exc))
        self._host.checkpoint(
            self._update(op_id, kind, name, OpStatus.FAILED, attempt=attempt,
                         error=encode_error(exc, self._host.serialize)),
            sync=True,
        )

    def _load(self, payload: bytes | None) -> Any:
        return None if payload is None else unspill(self._host.deserialize(payload))

    def _logged_error(self, record: OperationRecord) -> BaseException:
        if record.error is None:
            return StepFailedError(
                f"{_describe(record.kind, record.name)} is logged as failed without an error",
                "unknown",
            )
        return decode_error(record.error, self._host.deserialize)

    @staticmethod
    def _batch(value: object) -> BatchResult:
        if not isinstance(value, BatchResult):
            raise TypeError(
                f"a CHILDREN operation logged {type(value).__name__}, not a BatchResult"
            )
        return value


def _ms_since(started: float) -> float:
    """Milliseconds since ``started`` (``time.perf_counter``): a span's length in the trace."""
    return round((time.perf_counter() - started) * 1e3, 3)


def _poll(name: str, check: Callable[[Any], tuple[bool, S]], state: Any) -> tuple[bool, S]:
    answer = check(state)
    if not (isinstance(answer, tuple) and len(answer) == 2):
        raise TypeError(
            f"the check of condition {name!r} returned {answer!r}; return (done, new_state) "
            "or ConditionResult(done, new_state)"
        )
    return bool(answer[0]), answer[1]


__all__ = ["BranchContext", "ConditionResult"]
