"""Polling before sleeping, while it pays (``SpinWait``).

Before it sleeps, a thread that expects a message soon polls for a moment: on
a virtual machine the wake-up of a halted virtual CPU costs more than the
process hop itself (a raw socket round trip between two processes: ~55-80 µs
when both ends block in ``read``, ~8 µs when both poll first). The asking
thread polls its connection and an idle actor's pump polls its connections,
each for at most ``SystemConfig.spin_wait``, and only while polling keeps
paying off: a site whose recent waits outlasted the budget (a reply that needs
a disk commit, an actor that hears from nobody) sleeps at once and costs no
CPU. A poll yields the CPU between tries and stops at the first yield that
comes back late: then others want this CPU (or a thread of ours the GIL), and
polling would take time they need.
"""

from __future__ import annotations

import os
import select
import time

_SPIN_DECAY = 0.75  # weight of the past in a SpinWait's score; 1 - it is one wait's weight
_SPIN_KEEP = 0.3  # the score below which a site stops polling before it sleeps
_CONTENDED_YIELD = 20e-6  # a sched_yield that took longer ran somebody else: stop polling


class SpinWait:
    """When one waiting site polls before it sleeps: while polling has paid off recently.

    ``budget`` is the longest poll in seconds (0: never). Every wait is recorded,
    polled or not: one that ended within twice the budget counts as a hit (a
    blocked wait also pays for its wake-up), so a site that stopped polling
    starts again once its messages come quickly again.

        spin = SpinWait(50e-6)
        if spin.spins():
            ...  # poll for at most spin.budget seconds
        spin.waited(seconds)
    """

    __slots__ = ("_score", "budget")

    def __init__(self, budget: float) -> None:
        if budget < 0:
            raise ValueError(f"a spin budget must be >= 0 seconds, got {budget}")
        self.budget = budget
        self._score = 1.0  # a new site polls until its waits say otherwise

    def spins(self) -> bool:
        return self.budget > 0 and self._score >= _SPIN_KEEP

    def waited(self, seconds: float) -> None:
        """Record one wait's length (threads race here; a lost update only nudges the score)."""
        hit = 1.0 - _SPIN_DECAY if seconds <= 2 * self.budget else 0.0
        self._score = self._score * _SPIN_DECAY + hit


def poll_spinning(
    poller: select.poll, until: float, deadline: float | None
) -> list[tuple[int, int]]:
    """``poller.poll(0)`` until something is ready, ``perf_counter()`` reaches ``until``, or the
    monotonic ``deadline`` passes; nothing at all once ``until`` is past."""
    if deadline is not None:
        until = min(until, time.perf_counter() + deadline - time.monotonic())
    while time.perf_counter() < until:
        events = poller.poll(0)
        if events or not yield_found_cpu_idle():
            return events
    return []


def yield_found_cpu_idle() -> bool:
    """Yield the CPU once; False if it came back late: another task ran on this CPU, or a
    thread of ours that had asked for the GIL took it. Polling would take time others need."""
    started = time.perf_counter()
    os.sched_yield()
    return time.perf_counter() - started < _CONTENDED_YIELD
