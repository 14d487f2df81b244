"""Resume once: what the scheduler remembers of each (branch, op) dependency, for a while.

The first resume of a suspension takes effect, later ones are dropped; a
dependency done before its branch waits resumes it at once; an early (not yet
durable) resume is confirmed later by a durable word, which is not a duplicate.
Each fact is forgotten ``keep`` seconds after it was set, so a long-running
service does not grow with every branch it ever ran.

    once = ResumeOnce(keep=3600.0)
    once.done_unwaited(("order-1/0", "3"), now, b"batch", durable=True)  # False: first
    once.is_done_early(("order-1/0", "3"))  # True: its suspension resumes at once
"""

from __future__ import annotations

from typing import Any

Dependency = tuple[str, str]  # (branch id, op id)


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



class ResumeOnce:
    """The resume-once facts of every dependency (module docstring)."""

    def __init__(self, keep: float) -> None:
        self._done_early = RecentFacts(keep)  # dependency done, not waited for yet: payload
        self._resumed = RecentFacts(keep)  # whose dependency resumed it
        self._confirm = RecentFacts(keep)  # resumed early: a durable word will follow

    def __len__(self) -> int:
        return len(self._done_early) + len(self._resumed) + len(self._confirm)

    def forget_older_than(self, now: float) -> None:
        for recent in (self._done_early, self._resumed, self._confirm):
            recent.forget_older_than(now)

    def is_done_early(self, dependency: Dependency) -> bool:
        """Whether ``dependency`` was done before anything here waited on it."""
        return dependency in self._done_early

    def take_done_early(self, dependency: Dependency, now: float) -> bytes | None:
        """The early payload of ``dependency``; its branch counts as resumed from now."""
        payload: bytes | None = self._done_early.pop(dependency)
        self._resumed.set(dependency, now)
        return payload

    def waited_on(self, dependency: Dependency) -> None:
        """A new suspension waits on ``dependency``: its next resume is a first one."""
        self._resumed.discard(dependency)

    def resumed(self, dependency: Dependency, now: float) -> None:
        self._resumed.set(dependency, now)

    def expect_confirmation(self, dependency: Dependency, now: float) -> None:
        """Resumed by an early (not durable) word: the durable one that follows is no duplicate."""
        self._confirm.set(dependency, now)

    def done_unwaited(self, dependency: Dependency, now: float, payload: bytes | None,
                      durable: bool) -> bool:
        """``dependency`` is done and nothing waits on it here; True if that is a duplicate.

        Resumed already: a duplicate, unless it is the durable confirmation of an
        early resume. Else it is kept as done early for the suspension to come.
        """
        if dependency in self._resumed:
            if durable and dependency in self._confirm:
                self._confirm.discard(dependency)  # the confirmation of an early resume
                return False
            return True
        self._done_early.set(dependency, now, payload)
        if durable:
            self._confirm.discard(dependency)
        else:
            self._confirm.set(dependency, now)
        return False
