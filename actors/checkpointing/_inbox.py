"""An inbox an actor can look into, for actors that batch what is waiting.

pykka's default inbox is a ``queue.Queue`` that only gives the next message.
A batching actor (the checkpoint actor) needs more: take told messages of its
own kind from the head while they keep coming, and wait for the next message
with a deadline. ``PeekableInbox`` offers that through pykka's runtime hook:

    class Batcher(pykka.ThreadingActor):
        _create_actor_inbox = staticmethod(PeekableInbox)

The runtime hosts such an actor with a subclass that also binds each message's
trace context and returns flow-control credit, by overriding ``_took``.

Messages sit in a deque; a ``queue.SimpleQueue`` holds one token per message,
so blocking and waking happen in C (a Python ``Condition`` costs tens of
microseconds per wake-up on the checkpoint path). Only the actor's own thread
takes messages out, so a token taken always has its message in the deque.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from actors._compat.pykka import Envelope


class PeekableInbox:
    """A FIFO inbox with ``take_head_if``, ``take_all_if`` and ``wait_for_message``."""

    def __init__(self) -> None:
        self._items: deque[Envelope[Any]] = deque()
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._rebuild = threading.Lock()  # only against take_all_if rebuilding the deque

    def put(self, envelope: Envelope[Any], /) -> None:
        with self._rebuild:
            self._items.append(envelope)
        self._tokens.put(None)  # after the append: a taken token always has its message

    def get(self, block: bool = True, timeout: float | None = None) -> Envelope[Any]:
        self._tokens.get(block, timeout)  # raises queue.Empty, as pykka expects
        envelope = self._items.popleft()
        self._took(envelope)
        return envelope

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    def take_head_if(self, wanted: Callable[[Envelope[Any]], bool]) -> Envelope[Any] | None:
        """Remove and return the head if ``wanted(head)``; else leave the inbox as it is."""
        items = self._items
        if not items or not wanted(items[0]):
            return None
        self._tokens.get()  # its token is there, or about to be: put appends first
        envelope = items.popleft()
        self._took(envelope)
        return envelope

    def take_all_if(self, wanted: Callable[[Envelope[Any]], bool]) -> list[Envelope[Any]]:
        """Remove every ``wanted`` envelope; the others stay, in order."""
        with self._rebuild:
            taken = [e for e in self._items if wanted(e)]
            if taken:
                rest = [e for e in self._items if not wanted(e)]
                self._items.clear()
                self._items.extend(rest)
        for envelope in taken:
            self._tokens.get()
            self._took(envelope)
        return taken

    def wait_for_message(self, timeout: float) -> bool:
        """Block until a message is waiting or ``timeout`` seconds pass; True if one is."""
        if self._items:
            return True
        try:
            self._tokens.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return False
        self._tokens.put(None)  # only looking: give the token back
        return True

    def _took(self, envelope: Envelope[Any]) -> None:
        """Called for every envelope leaving the inbox; a hook for hosts."""
