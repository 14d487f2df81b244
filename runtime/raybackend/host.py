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

    ref = start_host(Counter, name="counter")   # runtime.raybackend.starting: a RayActorRef
    ref.tell({"add": 1})
    ref.ask("count", timeout=5)                  # 1
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

import pykka
import ray

from actors import tracelog
from actors._compat.pykka import run_actor_loop
from runtime import tracing
from runtime.errors import ActorDeadError
from runtime.processes._pykka_log import bridge_pykka_logs
from runtime.processes._registry import EMPTY, Snapshot
from runtime.raybackend import replies, wire
from runtime.raybackend.identity import set_own
from runtime.raybackend.outcomes import outcome, take_export
from runtime.raybackend.registry import HostMirror
from runtime.raybackend.sequencing import InOrder
from runtime.raybackend.transport import RayTransport
from runtime.remote._actor_ref import SELF, ActorRef
from runtime.remote._introspection import proxy_target, public_attributes
from runtime.transport import registered
from runtime.transport._future import Future

log = tracelog.get_logger("runtime.raybackend.host")

_hosted_classes: dict[type, type] = {}
ASK_THREADS = 64  # asks one host answers at once; more wait in Ray's queue (none deadlocks)
WATCHES = 16  # waits for the actor's stop one host serves at once (each holds a thread)
GROUPS = {"mailbox": 1, "asks": ASK_THREADS, "control": 2, "watch": WATCHES}
_built = threading.local()  # the instance a hosted class's constructor made, on this thread
_failed = threading.Event()  # the actor of this process ended by a failure (one per process)
EXIT_FAILED = 3  # the process's exit when its actor failed: Ray counts it as a crash


@dataclass(frozen=True)
class HostSpec:
    """What the host of an ``ActorSystem``'s actor needs besides the actor itself.

    ``process`` is the host's Ray actor name: the address in the actor's ``ActorRef``.
    """

    system_id: str
    process: str
    class_name: str
    role: str
    restart_grace: float = 0.0
    trace_path: str | None = None
    app_logging: bytes | None = None
    registry: Snapshot = EMPTY  # the system's registry as the host boots (itself included)


def _remembering_init(cls: type[pykka.ThreadingActor]) -> Any:
    """``cls.__init__``, then the instance kept for the host (pykka's start() gives a ref)."""
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807 - the constructor
        cls.__init__(self, *args, **kwargs)
        _built.actor = self

    return __init__


def _failing(cls: type[pykka.ThreadingActor]) -> Any:
    """``cls.on_failure``, then the process told that its actor failed."""
    def on_failure(self: Any, *exc_info: Any) -> None:
        try:
            cls.on_failure(self, *exc_info)
        finally:
            _failed.set()

    return on_failure


def _get_urn(actor: Any) -> str:
    return str(actor.__dict__["_da_urn"])


def _set_urn(actor: Any, urn: str) -> None:
    # pykka's Actor.__init__ assigns a random URN; a system's actor keeps its ref's.
    actor.__dict__["_da_urn"] = getattr(_built, "urn", None) or urn


def hosted_class(cls: type[pykka.ThreadingActor]) -> type[pykka.ThreadingActor]:
    """``cls`` whose asks make ``runtime.remote.Future``s; its name and module kept.

    Its ``actor_urn`` is its system ref's, when the host belongs to a system.
    """
    sub = _hosted_classes.get(cls)
    if sub is None:
        namespace = {
            "actor_urn": property(_get_urn, _set_urn, doc="The URN of the actor's ActorRef."),
            "__init__": _remembering_init(cls),
            "on_failure": _failing(cls),
            "_create_future": staticmethod(Future),
            "use_daemon_thread": True,  # the Ray worker's exit is not held up by it
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
        }
        sub = _hosted_classes[cls] = type(cls.__name__, (cls,), namespace)
    return sub


def _outcome_of(slot: Future[Future[Any]], name: str) -> bytes:
    """Wait until the ask is delivered and answered; its answer as ``outcome`` bytes."""
    try:
        value = slot.get().get()
    except pykka.ActorDeadError as exc:
        if not isinstance(exc, ActorDeadError):  # pykka's own: the actor had stopped
            exc = ActorDeadError(f"actor {name!r} is stopped: the message was not handled")
        return outcome(False, exc)
    except BaseException as exc:  # the actor's own exception, whatever it is
        return outcome(False, exc)
    return outcome(True, value)


def _join_system(spec: HostSpec, actor_id: str, name: str) -> ActorRef[Any]:
    """This Ray worker as a process of ``spec``'s system: its trace, its transport, its ref."""
    tracing.configure(system_id=spec.system_id, role=spec.role, trace_path=spec.trace_path,
                      actor=name)
    tracing.use_app_config(spec.app_logging)
    bridge_pykka_logs()
    if registered(spec.system_id) is None:
        RayTransport(spec.system_id).__enter__()  # this process's sends to the system's actors
    return ActorRef(system_id=spec.system_id, address=spec.process, actor_id=actor_id,
                    name=name, class_name=spec.class_name, restart_grace=spec.restart_grace)


class ActorHost:
    """Hosts one pykka actor in a Ray actor; its methods are the transport's records.

    With a ``HostSpec`` it is a process of an ``ActorSystem``: it traces as one,
    sends through the system's Ray transport, gives ``SELF`` arguments the actor's
    own ``ActorRef``, and exits when its actor fails (a crash Ray may restart).
    """

    def __init__(self, actor_id: str, name: str, payload: bytes,
                 spec: HostSpec | None = None) -> None:
        cls, args, kwargs = wire.loads(payload)
        self._mirror: HostMirror | None = None
        if spec is not None:
            own = _join_system(spec, actor_id, name)
            # The registry before the actor: its __init__ and on_start may look others up.
            self._mirror = HostMirror(spec.registry)
            args = tuple(own if a is SELF else a for a in args)
            kwargs = {k: own if v is SELF else v for k, v in kwargs.items()}
        self.actor_id = actor_id
        self.name = name
        context = ray.get_runtime_context()
        self._order: InOrder[tuple[bytes, Future[Future[Any]] | None]] = InOrder(
            resumed=context.was_current_actor_reconstructed)
        # Held from a message's arrival until it is in the inbox: two groups' threads must
        # not put released messages into the inbox in another order than released.
        self._delivering = threading.Lock()
        # How the start went, for start_host: this process's pid and node, or the error.
        self._boot: bytes = outcome(True, (os.getpid(), context.get_node_id()))
        self._pykka: Any = None
        self._actor: Any = None  # the pykka actor itself, for introspection
        _built.urn = None if spec is None else own.actor_urn
        try:
            if spec is None:
                self._pykka = hosted_class(cls).start(*args, **kwargs)
            else:  # pykka's start() without its registration: the mirror lists the system ref
                actor = hosted_class(cls)(*args, **kwargs)
                self._pykka = actor.actor_ref
                set_own(self._pykka, own)
                threading.Thread(target=run_actor_loop, args=(actor,), name=f"{name}-loop",
                                 daemon=True).start()
            self._actor = getattr(_built, "actor", None)
        except Exception as exc:
            self._boot = outcome(False, exc)
        finally:
            _built.actor = None
            _built.urn = None
        if spec is not None and self._pykka is not None:
            threading.Thread(target=self._when_stopped, args=(self._pykka.actor_stopped,),
                             name="da-failure-watch", daemon=True).start()

    def _when_stopped(self, stopped: threading.Event) -> None:
        """Once the actor stops: off this process's registry; the process ends if it failed,
        so that Ray sees a crash."""
        stopped.wait()
        if self._mirror is not None:
            self._mirror.remove(self.actor_id)
        if _failed.is_set():
            log.error("actor.failed", actor=self.name, action="exit the process: a crash for Ray")
            os._exit(EXIT_FAILED)

    @ray.method(concurrency_group="control")
    def registry(self, data: bytes) -> None:
        """The system's registry, pushed by the service at each change."""
        if self._mirror is not None:
            self._mirror.pushed(data)

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
        return _outcome_of(slot, self.name)

    @ray.method(concurrency_group="asks")
    def exported(self, export_id: int) -> bytes:
        """The answer of a future this host answered an asker with, once it has one."""
        future = take_export(export_id)
        if future is None:
            return outcome(False, ActorDeadError(
                f"actor {self.name!r} no longer holds that future (it restarted)"))
        try:
            return outcome(True, future.get())
        except BaseException as exc:  # the deferred work's own exception
            return outcome(False, exc)

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
