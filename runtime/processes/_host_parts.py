"""What both process hosts (local processes, Ray actors) do alike: actor names, stops by rank."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import pykka

from runtime import admission
from runtime.config import RestartPolicy
from runtime.errors import ConfigurationError
from runtime.transport._future import Future


class ActorNames:
    """The numbers and names of one system's actors: each name taken once at a time.

        number, name = names.reserve(Counter, None, None)   # (1, "Counter-1")
        names.release(name)                                  # its spawn failed
    """

    def __init__(self) -> None:
        self._names: set[str] = set()
        self._counter = 0
        self._lock = threading.Lock()

    def reserve(self, actor_class: Any, name: str | None,
                restart: RestartPolicy | None) -> tuple[int, str]:
        """Check what ``spawn`` was given; the new actor's number and name, now taken."""
        if not (isinstance(actor_class, type) and issubclass(actor_class, pykka.ThreadingActor)):
            raise ConfigurationError(
                f"spawn() takes a pykka.ThreadingActor subclass, got {actor_class!r}"
            )
        admission.check_actor_options(name, restart)
        with self._lock:
            self._counter += 1
            number = self._counter
            if name is None:
                name = f"{actor_class.__name__}-{number}"
            if name in self._names:
                raise ConfigurationError(f"an actor named {name!r} already exists in this system")
            self._names.add(name)
        return number, name

    def release(self, name: str) -> None:
        """Nothing runs under ``name`` (its spawn failed): it can be used again."""
        with self._lock:
            self._names.discard(name)


def stop_in_ranks(ranks: dict[str, int], stop: Callable[[str], Future[Any]],
                  tell: Callable[..., None], deadline: float) -> None:
    """Stop the actors ``ranks`` names (actor id -> rank), lowest rank first, each rank
    waited for until ``deadline``; ``tell("before_stop_rank", rank, deadline)`` before each.

    ``stop(actor_id)`` sends the stop and gives the future of its answer; one that raises
    (the actor is gone already) is skipped.
    """
    for rank in sorted(set(ranks.values()) | {0}):
        tell("before_stop_rank", rank, deadline)
        stops: list[Future[Any]] = []
        for actor_id in (a for a, r in ranks.items() if r == rank):
            with contextlib.suppress(Exception):  # already gone
                stops.append(stop(actor_id))
        for fut in stops:
            with contextlib.suppress(Exception):
                fut.get(timeout=max(0.0, deadline - time.monotonic()))


__all__ = ["ActorNames", "stop_in_ranks"]
