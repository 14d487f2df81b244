"""Fixtures shared by the suite: a started system, and process-level helpers."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

from runtime import ActorSystem, SystemConfig


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01) -> Any:
    """Poll ``condition`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {condition}")
        time.sleep(interval)


def children_of(pid: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if p.is_running()
                and p.status() != psutil.STATUS_ZOMBIE]
    except psutil.NoSuchProcess:
        return []


def pid_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def system(tmp_path: Any) -> Iterator[ActorSystem]:
    config = SystemConfig(workers=1, trace_path=str(tmp_path / "trace.jsonl"), send_timeout=5.0)
    with ActorSystem(store=f"sqlite:///{tmp_path / 'state.db'}", config=config) as started:
        yield started


@pytest.fixture(scope="session", autouse=True)
def no_orphans_at_the_end() -> Iterator[None]:
    """After the whole suite, no process started by it may still run."""
    yield
    leftover = wait_until_quiet(os.getpid())
    assert not leftover, f"orphan processes after the suite: {leftover}"


def wait_until_quiet(pid: int, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        alive = [f"{p.pid} {' '.join(p.cmdline()[:3])}" for p in children_of(pid)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)
