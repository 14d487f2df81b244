"""The ticker of an actor's timers: it outlives no actor and no failed tick kills it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pykka
import pytest

from actors.clock import SystemClock, Ticker
from actors.tracelog import capture_events
from runtime.testing import wait_until


def test_a_ticker_whose_actor_is_gone_stops_without_a_thread_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crashes: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", crashes.append)
    ticks: list[float] = []

    def tell_a_stopped_actor() -> None:
        ticks.append(time.monotonic())
        raise pykka.ActorDeadError("the scheduler is stopped")

    ticker = Ticker(SystemClock(), tell_a_stopped_actor, "gone-ticker")
    ticker.wake_at(time.time())
    wait_until(lambda: ticks)
    wait_until(lambda: not any(t.name == "gone-ticker" for t in threading.enumerate()))
    assert crashes == [] and len(ticks) == 1


def test_a_tick_that_fails_otherwise_is_logged_and_the_ticker_goes_on() -> None:
    ticks: list[int] = []

    def flaky() -> None:
        ticks.append(1)
        if len(ticks) == 1:
            raise RuntimeError("transient")

    with capture_events() as events:
        ticker = Ticker(SystemClock(), flaky, "flaky-ticker")
        try:
            ticker.wake_at(time.time())
            wait_until(lambda: ticks)
            ticker.wake_at(time.time())
            wait_until(lambda: len(ticks) == 2)
        finally:
            ticker.stop()
    (failed,) = [e for e in events if e["event"] == "ticker.tick_failed"]
    assert failed["level"] == "error" and "RuntimeError: transient" in failed["exception"]
