"""``BranchLoop``: the event loop, on a thread of its own, that runs a worker's async branches.

One per worker process. Runs arrive from the worker actor's thread in bundles
(one wake of the loop per bundle, not per run); each becomes a task. A task
suspended on an awaited verdict is a coroutine frame and a few objects, no
thread; the loop's thread is the only one async branches take, however many
are parked. Their sync step functions run on the worker's bounded thread pool
(``call_blocking``), so a blocking call never stalls the loop.

    loop = BranchLoop("worker-0", submit=pool_submit)
    loop.start([lambda: run_async(message) for message in runs])
    loop.stop(timeout=5)     # cancels what still runs; a cancelled run reports nothing
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from actors import tracelog
from actors.async_context import wait_in_thread

log = tracelog.get_logger("actors.branch_loop")

T = TypeVar("T")
Run = Callable[[], Coroutine[Any, Any, None]]


class BranchLoop:
    """An asyncio loop on a daemon thread; ``submit`` hands a blocking task to a bounded pool."""

    def __init__(self, name: str, *, submit: Callable[[Callable[[], None]], None]) -> None:
        self._name = name
        self._submit = submit
        self._loop = asyncio.new_event_loop()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=f"{name}-loop", daemon=True)
        self._thread.start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop itself (``call_soon_threadsafe`` from other threads only)."""
        return self._loop

    @property
    def running(self) -> int:
        """Runs started and not ended: working, or suspended as coroutines."""
        return len(self._tasks)

    def start(self, runs: Sequence[Run]) -> None:
        """Start each of ``runs`` as a task on the loop, in order; one wake for all of them."""
        if self._closed:
            raise RuntimeError(f"the branch loop of {self._name!r} is stopped")
        self._loop.call_soon_threadsafe(self._create, list(runs))

    async def call_blocking(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the worker's pool, awaited here (an abandoned one finishes there)."""
        return await wait_in_thread(fn, self._submit)

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel every run still on the loop, wait up to ``timeout`` for them, end the thread."""
        if self._closed:
            return
        self._closed = True
        try:
            self._loop.call_soon_threadsafe(self._loop.create_task, self._cancel_all(timeout))
        except RuntimeError:  # the loop is already closed
            return
        self._thread.join(timeout + 1.0)

    # -- on the loop's thread ------------------------------------------------------------

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def _create(self, runs: list[Run]) -> None:
        for run in runs:
            task = self._loop.create_task(run())
            self._tasks.add(task)
            task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The run reports its own failures; one that escapes is a bug of the worker.
            log.error("branch_loop.run_crashed", loop=self._name, error=repr(task.exception()))

    async def _cancel_all(self, timeout: float) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                log.warning("branch_loop.runs_left", loop=self._name, runs=len(pending))
        self._loop.stop()


__all__ = ["BranchLoop"]
