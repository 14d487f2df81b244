"""``RayTransport``: the transport seam (``runtime.transport.Transport``) over Ray.

The system's own ``ActorRef`` (``runtime.ActorRef``) and proxies run unchanged on
it: an ``ActorAddress`` names the host's Ray actor (a named actor, so any
process of the job can look it up) and the actor in it. ``ask`` is one Ray call
whose return value is the answer (``ActorHost.ask``); tells keep each sender's
order (``RayActorRef._submit`` numbers them); ``control`` maps to the host's
``ping``, ``stopped`` and ``introspect``; ``stopped`` ends the host's Ray actor
once its pykka actor has stopped. A ``Future`` inside a message is registered by
the Ray pickler as it meets it (``runtime.raybackend.wire``).

One is registered in the service process by ``RayProcessHost`` and one in every
host of the system (``ActorHost``), so actors on Ray reach each other through
their ``ActorRef``s as over sockets.

    with RayTransport() as transport:
        to = spawn_on(transport, Counter, name="counter")   # runtime.raybackend.starting
        ref = ActorRef(system_id=transport.system_id, address=to.process,
                       actor_id=to.actor_id, name=to.name, class_name="Counter")
        ref.tell(1)
        assert ref.ask("total", timeout=30) == 1
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import ray

from runtime.errors import ActorDeadError
from runtime.raybackend.ref import RayActorRef
from runtime.transport import ActorAddress, ControlOp, Future, register, withdraw

_CONTROL_METHODS = {ControlOp.STOPPED: "stopped", ControlOp.INTROSPECT: "introspect"}


class RayTransport:
    """This process's transport to the actors of one system hosted on Ray."""

    def __init__(self, system_id: str | None = None) -> None:
        self.system_id = system_id or f"ray-{uuid.uuid4().hex[:12]}"
        self._refs: dict[str, RayActorRef] = {}  # process (Ray actor name) -> its host's ref
        self._stopped: set[str] = set()  # actor ids known to have stopped
        self._down: dict[str, str] = {}  # actor id -> why sends to it fail now (mark_down)
        self._forgotten = False  # forget() was called: no handle may be used any more
        # Told the actor id of each actor this process learns has stopped (its registry).
        self.on_stopped: Callable[[str], None] | None = None
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def __enter__(self) -> RayTransport:
        register(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        withdraw(self)

    def forget(self) -> None:
        """Drop the hosts' handles (the system closes, Ray still connected)."""
        with self._lock:
            self._refs.clear()
            self._forgotten = True

    def new_process_name(self) -> str:
        """A Ray actor name for a new host of this system, unique in the Ray namespace."""
        return f"da-{self.system_id}-{next(self._numbers)}"

    def adopt(self, process: str, ref: RayActorRef) -> None:
        """``ref`` is the host named ``process``: sends to it need no lookup by name."""
        with self._lock:
            self._refs[process] = ref
            self._stopped.discard(ref.actor_id)

    # -- the Transport --------------------------------------------------------------------

    def tell(self, to: ActorAddress, message: Any) -> None:
        self._ref(to).tell(message)

    def tell_many(self, to: ActorAddress, messages: Sequence[Any]) -> None:
        ref = self._ref(to)
        for message in messages:
            ref.tell(message)

    def ask(self, to: ActorAddress, message: Any) -> Future[Any]:
        answer: Future[Any] = self._ref(to).ask(message, block=False)
        return answer

    def control(self, to: ActorAddress, op: ControlOp) -> Future[Any]:
        ref = self._ref(to, check_stopped=op is ControlOp.INTROSPECT)
        answer: Future[Any] = Future()
        if op is ControlOp.PING:
            call = ref.handle.ping.remote()
            call.future().add_done_callback(lambda done: _pinged(answer, done))
        else:
            call = getattr(ref.handle, _CONTROL_METHODS[op]).remote()
            call.future().add_done_callback(lambda done: ref._settle(answer, done))
        return answer

    def stopped(self, to: ActorAddress, *, end_after: float = 0.0) -> None:
        """The actor stopped: later sends fail at once, and its host's Ray actor ends.

        ``end_after`` seconds later, not at once, when the stop was seen from outside
        (the host's watch) rather than answered: the answer to the stop itself may
        still be on its way out of the host, and ending the host now would lose it.
        """
        with self._lock:
            self._stopped.add(to.actor_id)
            ref = self._refs.pop(to.process, None)
        if ref is not None:
            if end_after > 0:
                timer = threading.Timer(end_after, self._end, (ref,))
                timer.daemon = True
                timer.start()
            else:
                self._end(ref)
        if self.on_stopped is not None:
            self.on_stopped(to.actor_id)

    def _end(self, ref: RayActorRef) -> None:
        with self._lock:
            if self._forgotten:
                return  # the system closed: its hosts were ended with it
        ray.kill(ref.handle, no_restart=True)

    def is_stopped(self, actor_id: str) -> bool:
        """Whether ``stopped`` was called for ``actor_id`` (by its ref's stop, say)."""
        return actor_id in self._stopped

    def mark_down(self, actor_id: str, why: str | None) -> None:
        """Sends to ``actor_id`` fail at once with ``why`` (``None``: they go again)."""
        with self._lock:
            if why is None:
                self._down.pop(actor_id, None)
            else:
                self._down[actor_id] = why

    def _ref(self, to: ActorAddress, *, check_stopped: bool = True) -> RayActorRef:
        if check_stopped and to.actor_id in self._stopped:
            raise ActorDeadError(f"actor {to.name!r} is stopped")
        why = self._down.get(to.actor_id)
        if why is not None:
            raise ActorDeadError(f"actor {to.name!r} is down: {why}")
        ref = self._refs.get(to.process)
        if ref is None:
            try:
                handle = ray.get_actor(to.process)
            except ValueError:  # Ray's "no actor by that name"
                raise ActorDeadError(f"actor {to.name!r} is gone: no Ray actor "
                                     f"named {to.process!r}") from None
            ref = RayActorRef(handle, to.actor_id, to.name, stream=to.process)
            with self._lock:
                self._refs.setdefault(to.process, ref)
        return ref


def _pinged(answer: Future[Any], done: Any) -> None:
    """A ping's answer: whether the actor runs (a host that is gone does not)."""
    answer.set(done.exception() is None and bool(done.result()))


__all__ = ["RayTransport"]
