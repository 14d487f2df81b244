"""``AsyncBranchContext``: the durable operations of an ``async def run``, each one awaited.

The decisions are those of every branch (``actors.branches``); this context
performs their effects on an event loop. A step may call an async callable
(awaited on the loop, cancelled at its timeout) or a sync one (run by the host
off the loop, on the worker's bounded thread pool, so a blocking call never
stalls the loop). A suspension is an awaited verdict: while the deferred
checkpoint may still be cancelled, the branch is a suspended coroutine, holding
no thread.

    class Fetch(BranchActor):
        async def run(self, ctx: AsyncBranchContext, url: str) -> int:
            page = await ctx.step("get", http_get, url, timeout=30)
            await ctx.wait("cool", seconds=1)
            return len(page)
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from actors.branches._actor import BranchActor, check_branch_class
from actors.branches._callbacks import Callback
from actors.branches._effects import Call, Effects, Invoke, Park, Spawn, Write
from actors.branches._operations import OperationCore, child_pairs
from actors.branches._spec import BranchSpec
from actors.errors import CheckpointError, StepTimeoutError
from actors.policies import BatchResult, Completion, Retry
from actors.records._rows import BranchLog
from actors.records._updates import OperationUpdate, Update
from actors.refs._ref import Ref
from actors.refs._ref import save as save_ref

T = TypeVar("T")
S = TypeVar("S")


class AsyncBranchHost(Protocol):
    """What an ``AsyncBranchContext`` needs from whoever runs its branch on a loop.

    The same contract as ``BranchHost`` (``actors.branches``), each waiting call
    awaited instead of blocking: ``checkpoint(sync=True)`` returns once durable,
    ``suspend`` returns to go on in place or raises ``BranchSuspended`` once the
    suspension is durable, ``start_children`` returns once the children are.
    ``call_blocking`` runs a sync callable off the loop.
    """

    async def checkpoint(self, update: Update, *, sync: bool) -> None: ...

    async def suspend(self, op: OperationUpdate) -> bytes | None: ...

    async def start_children(
        self,
        parent: OperationUpdate,
        children: Sequence[BranchSpec],
        *,
        max_concurrency: int | None,
        completion: Completion,
    ) -> None: ...

    async def call_blocking(self, fn: Callable[[], T]) -> T:
        """``fn()`` on a thread that is not the loop's; its result or its exception."""
        ...

    def now(self) -> float: ...

    def serialize(self, obj: object) -> bytes: ...

    def deserialize(self, data: bytes) -> Any: ...


class AsyncBranchContext(OperationCore):
    """The durable operations of one run of an async branch; ``await`` each one.

    Operations run one at a time: await each before calling the next (for
    work side by side, use ``map`` or ``parallel``). ``execution_id``,
    ``branch_id``, ``input`` (alias ``item``) and ``logger`` are as on
    ``BranchContext``.

        async def run(self, ctx: AsyncBranchContext, url: str) -> str:
            page = await ctx.step("get", http_get, url, retry=Retry(attempts=3), timeout=10)
            await ctx.wait("cool", seconds=1)
            return page
    """

    def __init__(self, spec: BranchSpec, log: BranchLog, host: AsyncBranchHost) -> None:
        super().__init__(spec, log, host)
        self._host = host
        self._inside_task: asyncio.Task[Any] | None = None  # the task that runs user code now

    # -- operations ---------------------------------------------------------------

    async def step(
        self,
        name: str,
        fn: Callable[..., Any],
        /,
        *args: Any,
        retry: Retry | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call ``fn(*args, **kwargs)`` once for this execution; its result.

        ``fn`` may be async (awaited on the loop) or sync (run off the loop, on the
        worker's bounded thread pool); a sync ``fn`` that returns an awaitable has
        it awaited too. Replay, retries and durability are those of
        ``BranchContext.step``. Past ``timeout`` seconds an async attempt is
        cancelled and a sync one abandoned (its thread finishes in the
        background); either way the attempt fails with ``StepTimeoutError``,
        which ``retry`` applies to.

            page = await ctx.step("get", http_get, url, timeout=30)
        """
        return await self._drive(self._step(name, fn, args, kwargs, retry, timeout))

    async def save(self, obj: Any) -> Ref:
        """``BranchContext.save``: store ``obj`` once, by content; its ``Ref`` at once.

        The snapshot is taken now, on the loop (a large value is serialized by a
        forked child); hashing and the durable write happen elsewhere.

            return {"report": await ctx.save(rows)}
        """
        return save_ref(obj, self._serialize)

    async def wait(self, name: str, *, seconds: float) -> None:
        """Suspend the branch for ``seconds``: a suspended coroutine, then no coroutine at all.

            await ctx.wait("cooldown", seconds=30)
        """
        await self._drive(self._wait(name, seconds))

    async def wait_for_condition(
        self,
        name: str,
        check: Callable[[Any], Any],
        *,
        initial_state: Any = None,
        interval: float = 1.0,
        max_attempts: int = 60,
    ) -> Any:
        """``BranchContext.wait_for_condition``; ``check`` may be async or sync.

            final = await ctx.wait_for_condition("ready", ready, initial_state={"job_id": 7})
        """
        return await self._drive(self._condition(name, check, initial_state, interval,
                                                 max_attempts))

    async def create_callback(self, name: str, *, timeout: float | None = None) -> Callback:
        """Create a callback that outside code completes by id; its id is durable on return.

            cb = await ctx.create_callback("approval", timeout=3600)
        """
        return await self._drive(self._create_callback(name, timeout))

    async def wait_for_callback(self, callback: Callback) -> Any:
        """Suspend until ``callback`` is completed (its value), failed or timed out (raises).

            verdict = await ctx.wait_for_callback(cb)
        """
        return await self._drive(self._wait_for_callback(callback))

    async def map(
        self,
        name: str,
        branch_cls: type[BranchActor],
        items: Iterable[Any],
        *,
        max_concurrency: int | None = None,
        completion: Completion | None = None,
    ) -> BatchResult:
        """Run ``branch_cls`` once per item as child branches; suspend until the batch ends.

            parts = (await ctx.map("parse", Parse, links, max_concurrency=8)).values()
        """
        check_branch_class(branch_cls)
        return await self._drive(self._children(name, [(branch_cls, item) for item in items],
                                                max_concurrency, completion))

    async def parallel(
        self,
        name: str,
        branches: Sequence[type[BranchActor] | tuple[type[BranchActor], Any]],
        *,
        completion: Completion | None = None,
    ) -> BatchResult:
        """Run different branches at once: classes (input ``None``) or ``(cls, input)`` pairs.

            batch = await ctx.parallel("checks", [CheckA, (CheckB, {"strict": True})])
        """
        pairs = child_pairs(branches, check_branch_class)
        return await self._drive(self._children(name, pairs, None, completion))

    # -- performing effects, on the loop ------------------------------------------------

    async def _drive(self, effects: Effects[T]) -> T:
        """Run an operation's decisions, awaiting each effect it yields, to its result."""
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
                    outcome = await self._perform(effect)
                except CheckpointError as exc:
                    if isinstance(effect, Call):  # fenced before fn started: no attempt failed
                        effects.close()
                        raise
                    outcome, error = None, exc
                except BaseException as exc:
                    outcome, error = None, exc
        finally:
            self._busy = busy

    async def _perform(self, effect: Any) -> Any:
        host = self._host
        match effect:
            case Call():
                return await self._call(effect)
            case Write(update, sync):
                await host.checkpoint(update, sync=sync)
                return None
            case Park(op):
                return await host.suspend(op)
            case Spawn(parent, children, max_concurrency, completion):
                await host.start_children(parent, children, max_concurrency=max_concurrency,
                                          completion=completion)
                return None
            case Invoke(branch, item):
                return await branch.run(self, item)
        raise TypeError(f"not an effect: {effect!r}")

    async def _call(self, call: Call) -> Any:
        self._inside = call.what  # operations called from fn are refused (see _begin)
        self._inside_task = asyncio.current_task()
        try:
            if call.timeout is None:
                return await self._invoke(call)
            try:
                async with asyncio.timeout(call.timeout) as window:
                    return await self._invoke(call)
            except TimeoutError:
                if window.expired():
                    raise StepTimeoutError(call.what, call.timeout, call.attempt) from None
                raise  # fn's own TimeoutError: a failure like any other
        finally:
            self._inside = self._inside_task = None

    def _called_from_inside(self) -> bool:
        # Another task calling meanwhile is beside the operation in progress, not inside it.
        return asyncio.current_task() is self._inside_task

    async def _invoke(self, call: Call) -> Any:
        fn, args, kwargs = call.fn, call.args, call.kwargs or {}
        if is_async_callable(fn):
            return await fn(*args, **kwargs)
        value = await self._host.call_blocking(functools.partial(fn, *args, **kwargs))
        if inspect.isawaitable(value):  # e.g. a lambda that returns a coroutine
            value = await value
        return value


def is_async_callable(fn: Callable[..., Any]) -> bool:
    """Whether calling ``fn`` makes a coroutine: an ``async def`` function, method or partial,
    or an object whose ``__call__`` is one."""
    if inspect.iscoroutinefunction(fn):
        return True
    if inspect.isfunction(fn) or inspect.ismethod(fn):
        return False
    return inspect.iscoroutinefunction(type(fn).__call__)  # a callable object


async def wait_in_thread(fn: Callable[[], T],
                         submit: Callable[[Callable[[], None]], None]) -> T:
    """``fn()`` run by ``submit`` (a pool's, a new thread's), awaited on the running loop.

    The loop is woken once, by the thread that ran it. If the awaiting coroutine is
    cancelled (a step timeout), ``fn`` runs on to its end and its outcome is dropped.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()  # the step's op_id binding goes along

    def settle(ok: bool, value: Any) -> None:
        if done.cancelled():
            return
        if ok:
            done.set_result(value)
        else:
            done.set_exception(value)

    def run() -> None:
        try:
            result: tuple[bool, Any] = (True, context.run(fn))
        except BaseException as exc:
            result = (False, exc)
        # The loop closed meanwhile (a worker stopping): nobody waits for it any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, *result)

    submit(run)
    return await done
