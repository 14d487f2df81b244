"""Clocks: the real one, and a fake one that tests advance by hand.

Actors take a clock so that batching windows and timers are tested without
sleeping. ``time()`` is wall-clock seconds (stored as ``due_at``); ``monotonic()``
measures intervals.
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Callable
from typing import Protocol

import pykka

from actors import tracelog

_log = tracelog.get_logger("actors.clock")


class Clock(Protocol):
    """What actors ask of a clock: ``SystemClock`` in production, ``FakeClock`` in tests."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch, as ``time.time()``: what ``due_at`` holds."""
        ...

    def monotonic(self) -> float:
        """Seconds for measuring intervals, as ``time.monotonic()``."""
        ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        """``time.time()``."""
        return _time.time()

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return _time.monotonic()


class FakeClock:
    """A clock that moves only when a test calls ``advance``.

    Read it with ``time()`` (there is no ``now()``): the fake wall-clock seconds,
    ``start`` plus everything advanced since. ``monotonic()`` is the same number.

        clock = FakeClock(start=1_000.0)
        clock.advance(0.5)
        assert clock.time() == 1_000.5
    """

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._lock = threading.Lock()
        self._now = start
        self._listeners: list[threading.Event] = []

    def time(self) -> float:
        """The fake wall-clock seconds: ``start`` plus every ``advance`` so far.

            FakeClock(start=10.0).time()   # 10.0
        """
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        """The same as ``time()``: a fake clock never jumps."""
        return self.time()

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (>= 0) and wake the actors watching it.

            clock.advance(30)   # a 30 s timer of an actor on this clock is now due
        """
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


class Ticker:
    """A thread that calls ``tick()`` when the deadline set with ``wake_at`` comes.

    The actor that owns it keeps its own deadlines and calls ``wake_at(earliest)``
    after each change; ``tick`` typically tells the actor ``Tick()``, and the actor
    looks at its clock. Deadlines are in ``clock.time()`` seconds; waiting is real
    time (a ``FakeClock`` is driven by sending ``Tick`` by hand instead).
    """

    def __init__(self, clock: Clock, tick: Callable[[], None], name: str = "ticker") -> None:
        self._clock = clock
        self._tick = tick
        self._deadline: float | None = None
        self._cond = threading.Condition()
        self._stopped = False
        threading.Thread(target=self._loop, name=name, daemon=True).start()

    def wake_at(self, deadline: float | None) -> None:
        with self._cond:
            self._deadline = deadline
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _loop(self) -> None:
        with self._cond:
            while not self._stopped:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                remaining = self._deadline - self._clock.time()
                if remaining <= 0:
                    self._deadline = None
                    try:
                        self._tick()
                    except pykka.ActorDeadError:  # its actor stopped or failed: nothing to wake
                        self._stopped = True
                    except Exception:  # a tick that failed must not end the timers for good
                        _log.exception("ticker.tick_failed")
                    continue
                self._cond.wait(min(remaining, 1.0))
