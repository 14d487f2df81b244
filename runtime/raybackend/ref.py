"""``RayActorRef``: a picklable ref to a hosted actor, usable from any process of the cluster.

It holds the host's Ray actor handle (which Ray lets travel and use anywhere)
and sends what ``tell`` and ``ask`` are given as our own pickled records,
numbered per (sending process, actor) so that the host keeps each sender's order.
An ask is one Ray call whose return value is the answer; its ``Future`` is
resolved when the call's object is ready, on Ray's thread.

    ref.tell("ping")
    fut = ref.ask("count", block=False)   # a runtime.remote.Future
    fut.get(timeout=5)
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import ray

from runtime.errors import ActorDeadError, RemoteError
from runtime.raybackend import wire
from runtime.raybackend.outcomes import settle
from runtime.transport._future import Future

SENDER = uuid.uuid4().hex  # this process, as the hosts number what it sends them
_numbers: dict[str, int] = {}  # actor id -> the next number this process sends it
_numbers_lock = threading.Lock()


def dead_error(name: str, exc: BaseException) -> ActorDeadError:
    """Ray's "actor died/unavailable" as our ``ActorDeadError``, with Ray's cause kept."""
    cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ActorDeadError(f"actor {name!r} is gone: {type(exc).__name__}: {cause}")


class RayActorRef:
    """A reference to an actor hosted in a Ray actor; plain data, picklable, equal by id."""

    __slots__ = ("actor_id", "handle", "name")

    def __init__(self, handle: Any, actor_id: str, name: str) -> None:
        self.handle = handle
        self.actor_id = actor_id
        self.name = name

    def __reduce__(self) -> tuple[Any, ...]:
        return (RayActorRef, (self.handle, self.actor_id, self.name))

    def __repr__(self) -> str:
        return f"<RayActorRef {self.name!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RayActorRef) and other.actor_id == self.actor_id

    def __hash__(self) -> int:
        return hash(self.actor_id)

    def _submit(self, method: str, message: Any) -> Any:
        data = wire.dumps(message, f"message to {self.name!r}")  # fails here, nothing sent
        with _numbers_lock:  # numbered and submitted together: submission order is our order
            number = _numbers.get(self.actor_id, 0)
            _numbers[self.actor_id] = number + 1
            return getattr(self.handle, method).remote(SENDER, number, data)

    def tell(self, message: Any) -> None:
        """Send ``message`` without waiting for an answer."""
        self._submit("tell", message)

    def ask(self, message: Any, *, block: bool = True, timeout: float | None = None) -> Any:
        """Send ``message``; its answer (or a ``Future`` of it with ``block=False``).

        The actor's exception is raised here with its type; a host that died makes
        it ``ActorDeadError``.
        """
        future: Future[Any] = Future()
        answer = self._submit("ask", message)
        answer.future().add_done_callback(lambda done: self._settle(future, done))
        return future.get(timeout=timeout) if block else future

    def _settle(self, future: Future[Any], done: Any) -> None:
        error = done.exception()
        if error is None:
            settle(future, done.result())
        elif isinstance(error, ray.exceptions.RayActorError):
            future.set_exception(dead_error(self.name, error))
        else:  # Ray failed the call itself (it could not deliver or run it)
            future.set_exception(RemoteError(type(error).__name__, str(error), ""))

    def is_alive(self) -> bool:
        try:
            return bool(ray.get(self.handle.ping.remote(), timeout=5))
        except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError):
            return False

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the actor after the messages already sent to it, then end its Ray actor."""
        try:
            was_running = bool(ray.get(self.handle.stop.remote(), timeout=timeout))
        except ray.exceptions.RayActorError:
            return False
        ray.kill(self.handle, no_restart=True)
        return was_running
