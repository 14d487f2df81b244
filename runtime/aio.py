"""The service side from a coroutine: start, use and stop a system without blocking the loop.

* ``async with ActorSystem(...) as system`` starts the durable services (the
  checkpoint, scheduler, digest and worker processes) on a thread, so the loop
  runs on meanwhile, and shuts the system down the same way;
* ``await system.map_async(...)`` / ``parallel_async`` start an execution off
  the loop (``map`` waits for the execution's rows to be durable: a store commit);
* ``await run`` / ``await run.result_async(timeout)`` wait for an execution's
  result as a continuation: no thread waits for it;
* ``await ref.ask(msg, block=False)`` and ``await ref.proxy().method()``: every
  ``runtime.Future`` is awaitable (``runtime.remote``).

    async def main() -> None:
        async with ActorSystem(config=SystemConfig(workers=2)) as system:
            run = await system.map_async(Fetch, urls)
            pages = (await run).values()
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Iterable
from typing import Any, Protocol, TypeVar

from actors.coordinator._faults import describe_fault
from actors.policies import BatchResult, Completion
from actors.protocol._coordinator import AwaitResult, CurrentFault, DescribeExecution
from runtime.errors import Timeout
from runtime.remote._actor_ref import ActorRef
from runtime.transport._future import Future

E_co = TypeVar("E_co", covariant=True)  # the system's execution handle (runtime.durable.Execution)


class _System(Protocol[E_co]):
    """The blocking calls of ``ActorSystem`` that the async ones run off the loop."""

    def start_durable(self) -> None: ...

    def shutdown(self, timeout: float | None = None) -> None: ...

    def map(self, branch_class: type[Any], items: Iterable[Any], *,
            max_concurrency: int | None = ..., execution_id: str | None = ...,
            completion: Completion | None = ..., timeout: float | None = ...) -> E_co: ...

    def parallel(self, branches: Iterable[Any], *, execution_id: str | None = ...,
                 completion: Completion | None = ..., timeout: float | None = ...
                 ) -> E_co: ...

    def complete_callback(self, callback_id: str, value: Any = ...) -> bool: ...

    def fail_callback(self, callback_id: str, error: BaseException | str) -> bool: ...


class _Coordinated(Protocol):
    """Where an execution's coordinator is (``DurableServices`` is one)."""

    @property
    def coordinator(self) -> ActorRef[Any]: ...


class _Execution(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def _services(self) -> _Coordinated: ...

    async def result_async(self, timeout: float | None = ...) -> BatchResult: ...

    async def progress_async(self) -> dict[str, Any]: ...


_S = TypeVar("_S", bound=_System[Any])


class AsyncSystem:
    """What ``ActorSystem`` offers a coroutine; see the module docstring."""

    async def __aenter__(self: _S) -> _S:
        await asyncio.to_thread(self.start_durable)  # spawns processes: ~0.3 s off the loop
        return self

    async def __aexit__(self: _System[Any], *exc: object) -> None:
        await asyncio.to_thread(self.shutdown)

    async def map_async(
        self: _System[E_co],
        branch_class: type[Any],
        items: Iterable[Any],
        *,
        max_concurrency: int | None = None,
        execution_id: str | None = None,
        completion: Completion | None = None,
        timeout: float | None = None,
    ) -> E_co:
        """``map``, awaited: the execution is durable when it returns; the loop ran on meanwhile.

            run = await system.map_async(Fetch, urls, execution_id="crawl-1")
        """
        items = list(items)  # a generator is consumed here, not on another thread
        return await asyncio.to_thread(self.map, branch_class, items,
                                       max_concurrency=max_concurrency,
                                       execution_id=execution_id, completion=completion,
                                       timeout=timeout)

    async def parallel_async(
        self: _System[E_co],
        branches: Iterable[Any],
        *,
        execution_id: str | None = None,
        completion: Completion | None = None,
        timeout: float | None = None,
    ) -> E_co:
        """``parallel``, awaited (see ``map_async``)."""
        branches = list(branches)
        return await asyncio.to_thread(self.parallel, branches, execution_id=execution_id,
                                       completion=completion, timeout=timeout)

    async def complete_callback_async(self: _System[Any], callback_id: str,
                                      value: Any = None) -> bool:
        """``complete_callback``, awaited: the outcome is written off the loop."""
        return await asyncio.to_thread(self.complete_callback, callback_id, value)

    async def fail_callback_async(self: _System[Any], callback_id: str,
                                  error: BaseException | str) -> bool:
        """``fail_callback``, awaited."""
        return await asyncio.to_thread(self.fail_callback, callback_id, error)


class AwaitableExecution:
    """What an ``Execution`` offers a coroutine: ``await run`` is ``await run.result_async()``."""

    def __await__(self: _Execution) -> Generator[Any, None, BatchResult]:
        result: BatchResult = yield from self.result_async().__await__()
        return result

    async def result_async(self: _Execution, timeout: float | None = None) -> BatchResult:
        """``result``, awaited: ``Timeout`` if the execution has not finished within ``timeout``.

            result = await run.result_async(timeout=60)
        """
        future: Future[BatchResult] = Future()
        self._services.coordinator.tell(AwaitResult(self.id, future))
        try:
            return await asyncio.wait_for(_awaiting(future), timeout)
        except TimeoutError:
            asked: Future[BaseException | None] = self._services.coordinator.ask(
                CurrentFault(self.id), block=False)
            fault = await asyncio.wait_for(_awaiting(asked), 5)
            held = "" if fault is None else f"; it is held up by {describe_fault(fault)}"
            raise Timeout(
                f"execution {self.id!r} has not finished within {timeout} seconds{held}; it "
                "goes on: await it again, or look at run.progress()"
            ) from fault

    async def progress_async(self: _Execution) -> dict[str, Any]:
        """``progress``, awaited."""
        future: Future[dict[str, Any]] = self._services.coordinator.ask(
            DescribeExecution(self.id), block=False)
        try:
            return await asyncio.wait_for(_awaiting(future), 30)
        except TimeoutError:
            raise Timeout(f"no progress of execution {self.id!r} within 30 seconds") from None

    async def status_async(self: _Execution) -> str:
        """``status``, awaited."""
        status: str = (await self.progress_async())["status"]
        return status


async def _awaiting(future: Future[Any]) -> Any:
    return await future


__all__ = ["AsyncSystem", "AwaitableExecution"]
