"""Clocks: the real one, and a fake one that tests advance by hand.

Actors take a clock so that batching windows and timers are tested without
sleeping. ``time()`` is wall-clock seconds (stored as ``due_at``); ``monotonic()``
measures intervals.
"""

from __future__ import annotations

import threading
import time as _time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return _time.time()

    def monotonic(self) -> float:
        return _time.monotonic()


class FakeClock:
    """A clock that moves only when a test calls ``advance``.

        clock = FakeClock(start=1_000.0)
        clock.advance(0.5)
        assert clock.time() == 1_000.5
    """

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._lock = threading.Lock()
        self._now = start
        self._listeners: list[threading.Event] = []

    def time(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        return self.time()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back; advance by a positive amount")
        with self._lock:
            self._now += seconds
            listeners = list(self._listeners)
        for event in listeners:
            event.set()

    def subscribe(self) -> threading.Event:
        """An event set whenever the clock moves (actors poll their timers on it)."""
        event = threading.Event()
        with self._lock:
            self._listeners.append(event)
        return event
