"""``BranchContext``: the durable operations a sync branch's ``run`` calls, replayed from its log.

The decisions of every operation (what the log says about it, what to write,
when to suspend) are ``actors.branches``; this context performs their effects
on the branch's own thread: it calls step functions, blocks for a sync
checkpoint and parks in ``BranchHost.suspend``. ``AsyncBranchContext``
(``actors.branches``) performs the same effects by awaiting them.
"""

from __future__ import annotations

import contextvars
import inspect
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from actors.branches._actor import BranchActor, check_branch_class
from actors.branches._callbacks import Callback
from actors.branches._effects import Call, Effects, Invoke, Park, Spawn, Write
from actors.branches._host import BranchHost
from actors.branches._operations import OperationCore, child_pairs
from actors.branches._spec import BranchSpec
from actors.errors import StepTimeoutError
from actors.policies import BatchResult, Completion, Retry
from actors.records._rows import BranchLog
from actors.refs._ref import Ref
from actors.refs._ref import save as save_ref

T = TypeVar("T")
S = TypeVar("S")


class BranchContext(OperationCore):
    """The durable operations of one branch run; ``run(ctx, item)`` receives it.

    ``execution_id``, ``branch_id``, ``input`` (alias ``item``) and ``logger`` (a
    structlog logger of the application's configuration, bound with the execution
    and the branch, whose events also reach the system's trace; it logs nothing
    while ``is_replaying``) describe the run.
    Call its operations from ``run``'s own thread, one at a time, and never from
    inside a step function or a condition check.

        def run(self, ctx: BranchContext, item: str) -> int:
            size = ctx.step("measure", measure, item, retry=Retry(attempts=5))
            ctx.wait("settle", seconds=30)
            ctx.logger.info("measured", size=size)
            return size
    """

    def __init__(self, spec: BranchSpec, log: BranchLog, host: BranchHost) -> None:
        super().__init__(spec, log, host)
        self._host = host

    # -- operations ---------------------------------------------------------------

    def step(
        self,
        name: str,
        fn: Callable[..., T],
        /,
        *args: Any,
        retry: Retry | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> T:
        """Call ``fn(*args, **kwargs)`` once for this execution and return its result.

        A logged success is returned without calling ``fn``; a logged failure is
        raised again. A success is acknowledged durable before ``step`` returns,
        so it never runs again; a crash before that runs it again (at least
        once). With ``retry``, a failed attempt suspends the branch for the
        backoff and only this step runs again. With ``timeout`` (seconds) an
        attempt still running after it is abandoned — it runs on a thread of its
        own, which finishes in the background — and fails with
        ``StepTimeoutError``, which ``retry`` applies to. ``retry`` and
        ``timeout`` are ``step``'s own keywords: give a function that takes one
        through ``functools.partial``.

            user = ctx.step("load", db.load_user, user_id, retry=Retry(attempts=3), timeout=10)
        """
        return self._drive(self._step(name, fn, args, kwargs, retry, timeout))

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
        return save_ref(obj, self._serialize)

    def wait(self, name: str, *, seconds: float) -> None:
        """Suspend the branch for ``seconds``, holding no thread meanwhile.

            ctx.wait("cooldown", seconds=30)
        """
        self._drive(self._wait(name, seconds))

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
        state: S = self._drive(self._condition(name, check, initial_state, interval,
                                               max_attempts))
        return state

    def create_callback(self, name: str, *, timeout: float | None = None) -> Callback:
        """Create a callback that outside code completes by id; its id is durable on return.

            cb = ctx.create_callback("approval", timeout=3600)
            ctx.step("ask", notify_reviewer, cb.id)   # system.complete_callback(cb.id, "ok")
            verdict = ctx.wait_for_callback(cb)
        """
        return self._drive(self._create_callback(name, timeout))

    def wait_for_callback(self, callback: Callback) -> Any:
        """Suspend until ``callback`` is completed (its value) or failed or timed out (raises).

        Not an operation of its own: it waits on the callback's operation, so a
        replay finds the outcome there. Raises ``CallbackFailedError`` (or the
        error given to ``fail_callback``) and ``CallbackTimeoutError``.
        """
        return self._drive(self._wait_for_callback(callback))

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
        operation is the branch ``f"{ctx.branch_id}/{op_id}/{i}"``. Children may be
        sync or async branches, whatever this one is.

            thumbs = ctx.map("thumbs", Thumb, sizes, max_concurrency=4).values()
        """
        check_branch_class(branch_cls)
        return self._drive(self._children(name, [(branch_cls, item) for item in items],
                                          max_concurrency, completion))

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
        pairs = child_pairs(branches, check_branch_class)
        return self._drive(self._children(name, pairs, None, completion))

    # -- performing effects, on this thread ---------------------------------------------

    def _drive(self, effects: Effects[T]) -> T:
        """Run an operation's decisions, performing each effect it yields, to its result."""
        outcome: Any = None
        error: BaseException | None = None
        busy = self._busy  # what was in progress before: this operation's own ends with it
        try:
            while True:
                try:
                    effect = effects.send(outcome) if error is None else effects.throw(error)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
                finally:
                    error = None  # the frame must not keep the traceback alive
                try:
                    outcome = self._perform(effect)
                except BaseException as exc:
                    outcome, error = None, exc
        finally:
            self._busy = busy

    def _perform(self, effect: Any) -> Any:
        host = self._host
        match effect:
            case Call():
                return self._call(effect)
            case Write(update, sync):
                host.checkpoint(update, sync=sync)
                return None
            case Park(op):
                return host.suspend(op)
            case Spawn(parent, children, max_concurrency, completion):
                host.start_children(parent, children, max_concurrency=max_concurrency,
                                    completion=completion)
                return None
            case Invoke(branch, item):
                return branch.run(self, item)
        raise TypeError(f"not an effect: {effect!r}")

    def _call(self, call: Call) -> Any:
        self._inside = call.what  # operations called from fn are refused (see _begin)
        try:
            if call.timeout is None:
                value = call.fn(*call.args, **(call.kwargs or {}))
            else:
                value = _call_within(call)
        finally:
            self._inside = None
        if inspect.iscoroutine(value):
            value.close()  # never awaited: say why instead of a RuntimeWarning
            raise TypeError(
                f"{call.what!r} called {_name_of(call.fn)}, which returned a coroutine; an "
                "async callable needs an async branch: define `async def run(self, ctx, item)` "
                "and `await ctx.step(...)`"
            )
        return value


def _call_within(call: Call) -> Any:
    """``call`` on a thread of its own; ``StepTimeoutError`` (the thread left to finish) past
    its timeout. A thread cannot be stopped, so the attempt is abandoned, not cancelled."""
    assert call.timeout is not None
    finished = threading.Event()
    outcome: list[tuple[bool, Any]] = []
    context = contextvars.copy_context()  # the step's op_id binding travels with it

    def attempt() -> None:
        try:
            outcome.append((True, context.run(call.fn, *call.args, **(call.kwargs or {}))))
        except BaseException as exc:
            outcome.append((False, exc))
        finished.set()

    threading.Thread(target=attempt, name=f"step-{call.what}", daemon=True).start()
    if not finished.wait(call.timeout):
        raise StepTimeoutError(call.what, call.timeout, call.attempt)
    ok, value = outcome[0]
    if ok:
        return value
    raise value


def _name_of(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
