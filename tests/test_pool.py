"""ThreadPool: bounded, lazily started threads for fire-and-forget tasks (real threads)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from actors.workers import ThreadPool

DEADLINE = 10.0


class _Gate:
    """Tasks that record themselves and then block until the test opens the gate."""

    def __init__(self) -> None:
        self.started: list[Any] = []
        self.lock = threading.Lock()
        self.open = threading.Event()
        self.changed = threading.Condition(self.lock)

    def task(self, arg: Any) -> None:
        with self.changed:
            self.started.append(arg)
            self.changed.notify_all()
        assert self.open.wait(DEADLINE)

    def wait_started(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.started) >= count, DEADLINE)


def test_tasks_run_in_submission_order_on_one_thread() -> None:
    pool = ThreadPool(1, name="t")
    ran: list[int] = []
    done = threading.Event()
    for i in range(100):
        pool.submit(ran.append, i)
    pool.submit(lambda _: done.set(), None)
    assert done.wait(DEADLINE)
    assert ran == list(range(100))
    pool.shutdown()


def test_no_more_threads_than_the_bound_run_at_once() -> None:
    gate = _Gate()
    pool = ThreadPool(3, name="t")
    for i in range(5):
        pool.submit(gate.task, i)
    gate.wait_started(3)
    assert pool.threads == 3
    assert len(gate.started) == 3  # the other two wait for a free thread
    gate.open.set()
    gate.wait_started(5)
    pool.shutdown()


def test_an_idle_thread_is_reused_instead_of_starting_another() -> None:
    pool = ThreadPool(8, name="t")
    for _ in range(20):
        done = threading.Event()
        pool.submit(lambda event: event.set(), done)
        assert done.wait(DEADLINE)
        _wait_idle(pool)
    assert pool.threads == 1
    pool.shutdown()


def test_a_failing_task_does_not_take_its_thread_with_it() -> None:
    pool = ThreadPool(1, name="t")

    def fail(_: Any) -> None:
        raise RuntimeError("boom")

    done = threading.Event()
    pool.submit(fail, None)
    pool.submit(lambda event: event.set(), done)
    assert done.wait(DEADLINE)
    pool.shutdown()


def test_shutdown_drops_queued_tasks_and_lets_the_running_one_finish() -> None:
    gate = _Gate()
    pool = ThreadPool(1, name="t")
    pool.submit(gate.task, "running")
    gate.wait_started(1)
    pool.submit(gate.task, "queued")
    pool.shutdown()
    gate.open.set()
    for thread in list(pool._threads):
        thread.join(DEADLINE)
        assert not thread.is_alive()
    assert gate.started == ["running"]


def test_submit_after_shutdown_raises() -> None:
    pool = ThreadPool(2, name="t")
    pool.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(print, None)


def test_a_pool_needs_a_thread() -> None:
    with pytest.raises(ValueError, match="at least one thread"):
        ThreadPool(0, name="t")


def _wait_idle(pool: ThreadPool) -> None:
    """Until the pool counts a thread idle again (it does so right after a task returns)."""
    deadline = time.monotonic() + DEADLINE
    pause = threading.Event()
    while True:
        with pool._lock:
            if pool._idle:
                return
        assert time.monotonic() < deadline, "no thread became idle"
        pause.wait(0.001)
