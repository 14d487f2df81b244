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

from runtime.raybackend import wire
from runtime.raybackend.outcomes import settle_call
from runtime.transport._future import Future

SENDER = uuid.uuid4().hex  # this process, as the hosts number what it sends them
_numbers: dict[str, int] = {}  # stream -> the next number this process sends it
_numbers_lock = threading.Lock()


class RayActorRef:
    """A reference to an actor hosted in a Ray actor; plain data, picklable, equal by id."""

    __slots__ = ("actor_id", "handle", "name", "stream")

    def __init__(self, handle: Any, actor_id: str, name: str, stream: str | None = None) -> None:
        self.handle = handle
        self.actor_id = actor_id
        self.name = name
        # What this process numbers its sends by: one per host in the whole Ray (its Ray
        # actor name), however many refs to it this process holds.
        self.stream = stream or actor_id

    def __reduce__(self) -> tuple[Any, ...]:
        return (RayActorRef, (self.handle, self.actor_id, self.name, self.stream))

    def __repr__(self) -> str:
        return f"<RayActorRef {self.name!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RayActorRef) and other.actor_id == self.actor_id

    def __hash__(self) -> int:
        return hash(self.actor_id)

    def _submit(self, method: str, message: Any) -> Any:
        data = wire.dumps(message, f"message to {self.name!r}")  # fails here, nothing sent
        with _numbers_lock:  # numbered and submitted together: submission order is our order
            number = _numbers.get(self.stream, 0)
            _numbers[self.stream] = number + 1
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
        settle_call(future, done, self.name)

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
