"""``ActorHost``: the Ray actor that is the process of one pykka actor.

The user's class runs unchanged, as a ``pykka.ThreadingActor`` on its own
thread inside the Ray actor's process; ``_create_future`` (pykka's documented
hook for runtimes) makes the futures of its asks ours. The host is a *threaded*
Ray actor with three concurrency groups: ``mailbox`` (tells), ``asks`` (an ask
holds one of ``ASK_THREADS`` threads until the pykka actor answers, so its answer
is the Ray call's return value: one Ray round trip per ask) and ``control``
(``resolve``, the answers to reply handles the actor sent out, and ``ping``),
which blocked asks can never starve. Measured here, an async Ray actor costs
~30% more per call than a threaded one, more than the whole 1.3× budget.
Ray keeps a caller's order only on a single-threaded actor, so deliveries are
put back in each sender's order (``InOrder``) before they reach the pykka inbox.

    ref = start_host(Counter, name="counter")   # a RayActorRef
    ref.tell({"add": 1})
    ref.ask("count", timeout=5)                  # 1
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pykka
import ray

from actors import tracelog
from runtime.errors import ActorDeadError, SpawnError
from runtime.raybackend import replies, wire
from runtime.raybackend.outcomes import outcome, settle
from runtime.raybackend.ref import RayActorRef, dead_error
from runtime.raybackend.sequencing import InOrder
from runtime.remote._introspection import proxy_target, public_attributes
from runtime.transport._future import Future

log = tracelog.get_logger("runtime.raybackend.host")

_hosted_classes: dict[type, type] = {}
_ids = itertools.count(1)
ASK_THREADS = 64  # asks one host answers at once; more wait in Ray's queue (none deadlocks)
WATCHES = 16  # waits for the actor's stop one host serves at once (each holds a thread)
GROUPS = {"mailbox": 1, "asks": ASK_THREADS, "control": 2, "watch": WATCHES}
_built = threading.local()  # the instance a hosted class's constructor made, on this thread


def _remembering_init(cls: type[pykka.ThreadingActor]) -> Any:
    """``cls.__init__``, then the instance kept for the host (pykka's start() gives a ref)."""
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807 - the constructor
        cls.__init__(self, *args, **kwargs)
        _built.actor = self

    return __init__


def hosted_class(cls: type[pykka.ThreadingActor]) -> type[pykka.ThreadingActor]:
    """``cls`` whose asks make ``runtime.remote.Future``s; its name and module kept."""
    sub = _hosted_classes.get(cls)
    if sub is None:
        namespace = {
            "__init__": _remembering_init(cls),
            "_create_future": staticmethod(Future),
            "use_daemon_thread": True,  # the Ray worker's exit is not held up by it
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
        }
        sub = _hosted_classes[cls] = type(cls.__name__, (cls,), namespace)
    return sub


def _outcome_of(slot: Future[Future[Any]]) -> bytes:
    """Wait until the ask is delivered and answered; its answer as ``outcome`` bytes."""
    try:
        value = slot.get().get()
    except BaseException as exc:  # the actor's own exception, whatever it is
        return outcome(False, exc)
    return outcome(True, value)


class ActorHost:
    """Hosts one pykka actor in a Ray actor; its methods are the transport's records."""

    def __init__(self, actor_id: str, name: str, payload: bytes) -> None:
        cls, args, kwargs = wire.loads(payload)
        self.actor_id = actor_id
        self.name = name
        context = ray.get_runtime_context()
        self._order: InOrder[tuple[bytes, Future[Future[Any]] | None]] = InOrder(
            resumed=context.was_current_actor_reconstructed)
        # Held from a message's arrival until it is in the inbox: two groups' threads must
        # not put released messages into the inbox in another order than released.
        self._delivering = threading.Lock()
        self._boot: bytes = outcome(True, None)  # the constructor's error, for start_host
        self._pykka: Any = None
        self._actor: Any = None  # the pykka actor itself, for introspection
        try:
            self._pykka = hosted_class(cls).start(*args, **kwargs)
            self._actor = getattr(_built, "actor", None)
        except Exception as exc:
            self._boot = outcome(False, exc)
        finally:
            _built.actor = None

    @ray.method(concurrency_group="control")
    def booted(self) -> bytes:
        """How the actor's start went: ``outcome`` bytes, the constructor's error if it raised."""
        return self._boot

    @ray.method(concurrency_group="mailbox")
    def tell(self, sender: str, number: int, data: bytes) -> None:
        """A message that wants no answer: into the inbox, in the sender's order."""
        self._arrived(sender, number, data, None)

    @ray.method(concurrency_group="asks")
    def ask(self, sender: str, number: int, data: bytes) -> bytes:
        """A message whose answer is the return value (``outcome`` bytes): one Ray call."""
        slot: Future[Future[Any]] = Future()  # set once the ask is in the inbox, in order
        self._arrived(sender, number, data, slot)
        return _outcome_of(slot)

    @ray.method(concurrency_group="control")
    def resolve(self, reply_id: int, data: bytes) -> None:
        """The answer to a reply handle this process sent inside a message."""
        replies.BOOK.resolve(reply_id, data)

    @ray.method(concurrency_group="control")
    def ping(self) -> bool:
        return self._pykka is not None and bool(self._pykka.is_alive())

    @ray.method(concurrency_group="control")
    def introspect(self) -> bytes:
        """The actor's public attributes for proxies (``AttrMap``), as ``outcome`` bytes."""
        if self._actor is None or not self._pykka.is_alive():
            return outcome(False, ActorDeadError(f"actor {self.name!r} is stopped"))
        own = self._pykka
        return outcome(True, public_attributes(self._actor, lambda v: proxy_target(v) is own))

    @ray.method(concurrency_group="watch")
    def stopped(self) -> bytes:
        """Answers once the actor has stopped (a group of its own: it may wait long)."""
        if self._pykka is not None:
            self._pykka.actor_stopped.wait()
        return outcome(True, None)

    @ray.method(concurrency_group="control")
    def stop(self) -> bool:
        """Stop the pykka actor after the messages in its inbox; whether it was running."""
        if self._pykka is None:
            return False
        try:
            return bool(self._pykka.stop(block=True, timeout=30))
        except pykka.ActorDeadError:
            return False

    def _arrived(self, sender: str, number: int, data: bytes,
                 slot: Future[Future[Any]] | None) -> None:
        with self._delivering:
            for due, due_slot in self._order.arrived(sender, number, (data, slot)):
                self._deliver(due, due_slot)

    def _deliver(self, data: bytes, slot: Future[Future[Any]] | None) -> None:
        try:
            message = wire.loads(data)
        except Exception as exc:  # a class this process cannot import, say
            log.error("ray.undecodable_message", actor=self.name, error=repr(exc))
            if slot is not None:
                slot.set_exception(exc)
            return
        try:
            if slot is None:
                self._pykka.tell(message)
            else:
                slot.set(self._pykka.ask(message, block=False))
        except pykka.ActorDeadError:
            error = ActorDeadError(f"actor {self.name!r} is stopped: the message was not handled")
            if slot is not None:
                slot.set_exception(error)


_remote: list[Any] = []  # ActorHost as a Ray actor class, made once per process


def _remote_host() -> Any:
    if not _remote:
        make_remote: Any = ray.remote  # its overloads do not list concurrency_groups
        _remote.append(make_remote(concurrency_groups=GROUPS)(ActorHost))
    return _remote[0]


def start_host(actor_class: type[pykka.ThreadingActor], *args: Any, name: str | None = None,
               options: dict[str, Any] | None = None, spawn_timeout: float = 60.0,
               **kwargs: Any) -> RayActorRef:
    """Start ``actor_class(*args, **kwargs)`` in a new Ray actor; its ref once it runs.

    ``options`` go to Ray's ``.options()`` (placement: ``num_cpus``, ``resources``,
    ``scheduling_strategy``, ...). The constructor's exception is re-raised here, as
    by ``ActorSystem.spawn``; a host that cannot start raises ``SpawnError``.
    """
    number = next(_ids)
    name = name or f"{actor_class.__name__}-{number}"
    actor_id = f"r{number}-{id(start_host):x}"  # unique per service process
    payload = wire.dumps((actor_class, args, kwargs), f"actor {name!r} (its class or arguments)")
    chosen = {"num_cpus": 0, "max_restarts": 0, **(options or {})}
    handle = _remote_host().options(**chosen).remote(actor_id, name, payload)
    ref = RayActorRef(handle, actor_id, name)
    try:
        booted = ray.get(handle.booted.remote(), timeout=spawn_timeout)
    except ray.exceptions.GetTimeoutError:
        ray.kill(handle)
        raise SpawnError(f"actor {name!r} was not ready within {spawn_timeout}s") from None
    except ray.exceptions.RayActorError as exc:
        raise SpawnError(f"actor {name!r} could not start: {dead_error(name, exc)}") from None
    started: Future[None] = Future()
    settle(started, booted)
    try:
        started.get(timeout=0)
    except BaseException:
        ray.kill(handle, no_restart=True)
        raise
    return ref
