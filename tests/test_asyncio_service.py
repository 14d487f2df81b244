"""The service side on an event loop: awaiting a future, an execution or a start never blocks it.

Each test makes the awaited thing depend on a task of the same loop (it writes the
file an actor or a branch waits for): were the loop blocked while it awaits, that
task could not run and the answer would be "not seen".
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from runtime import ActorSystem, Future, SystemConfig, Timeout

from actors_for_tests import Counter, Failing, Watcher
from branch_kinds import Kind
from branches_for_tests import Waits, WaitsForFile
from conftest import wait_until_quiet

pytestmark = pytest.mark.timeout(120)


def run(main: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(main)


async def make_file_soon(path: Path) -> None:
    await asyncio.sleep(0.05)
    path.write_text("here")


# -- futures --------------------------------------------------------------------------------------


def test_awaiting_an_ask_lets_the_loop_run_meanwhile(system: ActorSystem, tmp_path: Path) -> None:
    watcher = system.spawn(Watcher)
    flag = tmp_path / "flag"

    async def main() -> Any:
        maker = asyncio.create_task(make_file_soon(flag))
        answer = await watcher.ask((str(flag), 20.0), block=False)
        await maker
        return answer

    assert run(main()) == "seen"


def test_awaiting_a_proxy_call_lets_the_loop_run_meanwhile(
    system: ActorSystem, tmp_path: Path
) -> None:
    watcher = system.spawn(Watcher).proxy()
    flag = tmp_path / "flag"

    async def main() -> Any:
        maker = asyncio.create_task(make_file_soon(flag))
        answer = await watcher.wait_for(str(flag), 20.0)
        await maker
        return answer

    assert run(main()) == "seen"


def test_awaiting_a_failed_ask_raises_the_actors_exception(system: ActorSystem) -> None:
    failing = system.spawn(Failing).proxy()

    async def main() -> Any:
        return await failing.raise_value_error()

    with pytest.raises(ValueError, match="bad value from the actor"):
        run(main())


def test_awaiting_a_mapped_future_gives_its_mapped_value(system: ActorSystem) -> None:
    counter = system.spawn(Counter, 41)

    async def main() -> Any:
        return await counter.ask("count", block=False).map(lambda n: n + 1)

    assert run(main()) == 42


def test_a_done_callback_runs_once_whether_added_before_or_after_the_value() -> None:
    calls: list[str] = []
    before: Future[int] = Future()
    before.add_done_callback(lambda f: calls.append(f"before {f.get()}"))
    before.set(1)
    with pytest.raises(queue.Full):  # as pykka's futures: set once; nobody is called again
        before.set(2)
    after: Future[int] = Future()
    after.set(3)
    after.add_done_callback(lambda f: calls.append(f"after {f.get()}"))

    assert calls == ["before 1", "after 3"]


def test_a_done_callback_of_a_future_set_by_another_thread_runs_once() -> None:
    for _ in range(200):  # the set and the registration race each other
        calls: list[int] = []
        future: Future[int] = Future()
        setter = threading.Thread(target=future.set, args=(7,))
        setter.start()
        future.add_done_callback(lambda f, calls=calls: calls.append(f.get()))
        setter.join()
        assert calls == [7]


# -- executions -----------------------------------------------------------------------------------


def test_awaiting_an_execution_lets_the_loop_run_meanwhile(
    system: ActorSystem, tmp_path: Path, kind: Kind
) -> None:
    flag = tmp_path / "flag"

    async def main() -> Any:
        execution = system.map(kind(WaitsForFile), [(str(flag), 30.0)])
        maker = asyncio.create_task(make_file_soon(flag))
        result = await execution
        await maker
        return result.values()

    assert run(main()) == ["seen"]


def test_result_async_past_its_timeout_raises_timeout_and_the_execution_goes_on(
    system: ActorSystem,
) -> None:
    async def main() -> Any:
        execution = await system.map_async(Kind.ASYNC(Waits), [("late", 1.0)])
        with pytest.raises(Timeout, match=r"has not finished within 0\.05 seconds"):
            await execution.result_async(timeout=0.05)
        return (await execution.result_async(timeout=60)).values()

    assert run(main()) == ["late"]


def test_progress_and_status_can_be_awaited(system: ActorSystem) -> None:
    async def main() -> Any:
        execution = await system.map_async(Kind.ASYNC(Waits), [(1, 0.0), (2, 0.0)])
        await execution
        return await execution.status_async(), (await execution.progress_async())["done"]

    assert run(main()) == ("SUCCEEDED", 2)


# -- starting and stopping ------------------------------------------------------------------------


def test_async_with_starts_and_stops_the_system_while_the_loop_runs_on(tmp_path: Path) -> None:
    order: list[str] = []

    async def tick(stop: asyncio.Event) -> None:
        while not stop.is_set():
            order.append("tick")
            await asyncio.sleep(0.001)

    async def main() -> tuple[Any, ActorSystem]:
        stop = asyncio.Event()
        ticker = asyncio.create_task(tick(stop))
        await asyncio.sleep(0)
        order.clear()  # ticks from here on happen while the services start
        config = SystemConfig(workers=1)
        async with ActorSystem(store=f"sqlite:///{tmp_path / 's.db'}", config=config) as system:
            order.append("started")
            run = await system.map_async(Kind.ASYNC(Waits), [("done", 0.0)])
            values = (await run).values()
            order.append("stopping")
        order.append("stopped")
        stop.set()
        await ticker
        return values, system

    values, system = run(main())

    assert values == ["done"]
    assert order.index("started") > 0  # the loop ticked while the services started
    assert "tick" in order[order.index("stopping"):order.index("stopped")]
    assert system.closed
    assert wait_until_quiet(os.getpid()) == []  # no process of the system outlives it
