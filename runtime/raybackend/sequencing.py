"""Per-sender FIFO for an actor whose deliveries may arrive out of order.

Ray runs the calls of one caller in order only on a synchronous, single-threaded
actor; the host is a threaded actor with concurrency groups (an ask holds a
thread of its own group), so each sender numbers what it sends to one host, and
the receiver hands messages on in that order, holding any that overtook an
earlier one.

    order = InOrder()
    order.arrived("s1", 1, "b")   # []: 0 has not arrived
    order.arrived("s1", 0, "a")   # ["a", "b"]
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class _Stream(Generic[T]):
    expected: int
    held: dict[int, T] = field(default_factory=dict)


class InOrder(Generic[T]):
    """Releases each sender's items in its numbering (from 0); senders are independent.

    A ``resumed`` receiver (an actor restarted by Ray, which has lost what it had
    seen) starts each sender's stream at the first number that arrives: the
    messages of a crash's moment are lost, as with a crashed process. An item
    numbered below what was already released is a duplicate and dropped.
    """

    def __init__(self, *, resumed: bool = False) -> None:
        self._resumed = resumed
        self._streams: dict[str, _Stream[T]] = {}
        self._lock = threading.Lock()

    def arrived(self, sender: str, number: int, item: T) -> list[T]:
        """The items now due from ``sender``, in order (empty while an earlier one is missing)."""
        with self._lock:
            stream = self._streams.get(sender)
            if stream is None:
                stream = self._streams[sender] = _Stream(expected=number if self._resumed else 0)
            if number < stream.expected or number in stream.held:
                return []
            stream.held[number] = item
            due = []
            while stream.expected in stream.held:
                due.append(stream.held.pop(stream.expected))
                stream.expected += 1
            return due

    def held(self, sender: str) -> int:
        """How many items of ``sender`` wait for an earlier one."""
        with self._lock:
            stream = self._streams.get(sender)
            return 0 if stream is None else len(stream.held)
