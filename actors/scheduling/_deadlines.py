"""When the scheduler looks at its clock: ``Deadlines``, pure logic over a heap.

Two kinds of deadline: a deferred suspension checkpoint to *apply*, and a timer
*due* (a wait, a retry's backoff, a condition's next poll). Deadlines within
``slack`` of the soonest are taken as one wave.

    deadlines.push(now + delay, DeadlineKind.APPLY, key)
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from enum import IntEnum

from actors.protocol._scheduler import SuspensionKey


class DeadlineKind(IntEnum):
    """What is due at a deadline (ordered: ties in the heap never compare keys first)."""

    APPLY = 0  # a deferred suspension checkpoint is written
    DUE = 1  # a timer fires: its branch resumes


class Deadlines:
    """A min-heap of ``(when, kind, key)`` that knows when its next wave is due.

    ``wake_time()`` is the latest deadline within ``slack`` of the soonest one.
    Looking at the clock then (``pop_due``) takes every deadline of that window
    together, none of them early and the soonest at most ``slack`` late; a
    deadline with no other near it is taken on time.

        deadlines = Deadlines(slack=0.005)
        deadlines.push(10.000, DeadlineKind.DUE, key_a)
        deadlines.push(10.003, DeadlineKind.DUE, key_b)
        deadlines.wake_time()   # 10.003: both in one wave
    """

    def __init__(self, slack: float) -> None:
        self._heap: list[tuple[float, DeadlineKind, SuspensionKey]] = []
        self._slack = slack
        self._window: tuple[float, float] | None = None  # (soonest, latest within slack of it)

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, when: float, kind: DeadlineKind, key: SuspensionKey) -> None:
        heapq.heappush(self._heap, (when, kind, key))
        window = self._window
        if window is not None:
            soonest, latest = window
            if when < soonest:
                self._window = None  # a new soonest: wake_time looks again
            elif latest < when <= soonest + self._slack:
                self._window = (soonest, when)

    def pop_due(self, now: float) -> Iterator[tuple[DeadlineKind, SuspensionKey]]:
        """``(kind, key)`` of every deadline at or before ``now``, soonest first."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            self._window = None
            _, kind, key = heapq.heappop(heap)
            yield kind, key

    def wake_time(self) -> float | None:
        """When to look next (see the class docstring); None when nothing is due ever."""
        heap = self._heap
        if not heap:
            return None
        if self._window is None:
            # Only the window's entries and their children are visited: a heap's
            # children are never sooner than their parent.
            soonest = heap[0][0]
            limit, latest = soonest + self._slack, soonest
            size, todo = len(heap), [0]
            while todo:
                i = todo.pop()
                when = heap[i][0]
                if when <= limit:
                    latest = max(latest, when)
                    todo.extend(child for child in (2 * i + 1, 2 * i + 2) if child < size)
            self._window = (soonest, latest)
        return self._window[1]

