"""Resume-once facts about (branch, op) pairs, each forgotten after a while.

    resumed = RecentFacts(keep=3600.0)
    resumed.set(("order-1/0", "3"), now)
    ("order-1/0", "3") in resumed  # True for an hour
"""

from __future__ import annotations

from typing import Any


class RecentFacts:
    """What the scheduler remembers of (branch, op) pairs, each for ``keep`` seconds.

    Resume-once bookkeeping (resumed, done early, durable word expected) outlives
    the suspension it is about; kept for ever it would grow with every branch a
    long-running service ever ran. A fact older than ``keep`` is forgotten: a
    duplicate resume that late is taken for a first one (the branch's log, read
    on replay, says the truth either way).
    """

    def __init__(self, keep: float) -> None:
        self.keep = keep
        self._items: dict[tuple[str, str], tuple[float, Any]] = {}  # in order of setting

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def set(self, key: tuple[str, str], now: float, value: Any = None) -> None:
        self._items.pop(key, None)  # re-set: moves to the end, with the new time
        self._items[key] = (now, value)

    def pop(self, key: tuple[str, str]) -> Any:
        return self._items.pop(key)[1]

    def discard(self, key: tuple[str, str]) -> None:
        self._items.pop(key, None)

    def forget_older_than(self, now: float) -> None:
        cutoff = now - self.keep
        while self._items:
            key, (when, _) = next(iter(self._items.items()))
            if when > cutoff:
                return
            del self._items[key]

