"""Hosting a pykka actor behind a node: its inbox, its replies, its lifecycle.

The user's class runs unchanged. We start it through the hooks pykka documents
for implementors of actor kinds (``_create_actor_inbox``, ``_create_future``,
``_start_actor_loop``) on a thin subclass made once per class, so that the inbox
can do two things as the actor's thread takes each message: bind the structlog
context that travelled with the message, and return flow-control credit to the
sender; so that the futures of the actor's own asks (its proxy to itself, say)
are ours, which can cross processes; and so that the host knows whether the
actor ended by a stop or a failure and when its thread handed over its last
reply. The subclass also keeps ``actor_urn`` equal to the URN of the actor's
system-wide ``ActorRef``. pykka's private names are reached through
``actors._compat.pykka``.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import queue
import threading
from typing import Any

import pykka
import structlog

from actors import tracelog
from actors._compat.pykka import Envelope, is_stop, run_actor_loop
from actors.checkpointing._inbox import PeekableInbox
from runtime.errors import ActorDeadError
from runtime.remote._actor_ref import actor_urn_for
from runtime.remote._introspection import AttrMap, proxy_target, public_attributes
from runtime.transport._future import Future
from runtime.wire import Node, Peer, RemoteReply

log = tracelog.get_logger("runtime.host")


class TracedEnvelope(Envelope[Any]):
    """A pykka envelope that also carries the sender's trace context and identity."""

    __slots__ = ("context", "origin")

    def __init__(
        self,
        message: Any,
        reply_to: Any = None,
        context: dict[str, Any] | None = None,
        origin: Peer | None = None,
    ) -> None:
        super().__init__(message, reply_to=reply_to)
        self.context = context
        self.origin = origin


class _ContextBinder:
    """Binds a message's trace context on the actor's thread, and returns credit.

    Each message is handled in its sender's context (plus ``actor``) and nothing
    else: what a handler binds itself ends with its message.
    """

    __slots__ = ("_bound", "_hosted", "_last_context")

    def __init__(self, hosted: HostedActor) -> None:
        self._hosted = hosted
        self._last_context: Any = _NO_CONTEXT
        self._bound: contextvars.Context | None = None  # the thread's context as we left it

    def took(self, envelope: Envelope[Any]) -> None:
        hosted = self._hosted
        context = getattr(envelope, "context", None)
        # Rebinding costs a walk over the context: only when the sender's context changed
        # or the last handler bound something (a context compares by identity first).
        if (context is not self._last_context and context != self._last_context) or (
            contextvars.copy_context() != self._bound
        ):
            structlog.contextvars.clear_contextvars()
            if context:
                structlog.contextvars.bind_contextvars(**context)
            structlog.contextvars.bind_contextvars(actor=hosted.name)
            self._last_context = context
            self._bound = contextvars.copy_context()
        origin = getattr(envelope, "origin", None)
        if origin is not None:
            hosted.node.credit(origin, hosted.actor_id)


class TracingInbox:
    """The inbox of a hosted actor: binds each message's context as the actor takes it.

    A ``queue.SimpleQueue`` underneath (C-implemented, no Python-level condition),
    since pykka only needs ``put``, ``get`` and ``empty``.
    """

    __slots__ = ("_binder", "_pump", "_queue")

    def __init__(self, hosted: HostedActor) -> None:
        self._queue: queue.SimpleQueue[Envelope[Any]] = queue.SimpleQueue()
        self._binder = _ContextBinder(hosted)
        self._pump = hosted.node.pump

    def put(self, envelope: Envelope[Any], /) -> None:
        self._queue.put(envelope)
        self._pump.put_into(self)

    def _ready(self) -> bool:
        return not self._queue.empty()

    def empty(self) -> bool:
        return self._queue.empty()

    def qsize(self) -> int:
        return self._queue.qsize()

    def get(self, block: bool = True, timeout: float | None = None) -> Envelope[Any]:
        if block and self._queue.empty():  # idle: read the connections ourselves meanwhile
            timeout = self._pump.wait(self, self._ready, timeout)
        envelope = self._queue.get(block, timeout)
        self._binder.took(envelope)
        return envelope


class TracingPeekableInbox(PeekableInbox):
    """``PeekableInbox`` for batching actors, with the same context binding and credit."""

    def __init__(self, hosted: HostedActor) -> None:
        super().__init__()
        self._binder = _ContextBinder(hosted)
        self._pump = hosted.node.pump

    def put(self, envelope: Envelope[Any], /) -> None:
        super().put(envelope)
        self._pump.put_into(self)

    def get(self, block: bool = True, timeout: float | None = None) -> Envelope[Any]:
        if block and not self._items:  # idle: read the connections ourselves meanwhile
            timeout = self._pump.wait(self, self._ready, timeout)
        return super().get(block, timeout)

    def wait_for_message(self, timeout: float) -> bool:
        if not self._items:
            remaining = self._pump.wait(self, self._ready, timeout)
            timeout = 0.0 if remaining is None else remaining
        return super().wait_for_message(timeout)

    def _ready(self) -> bool:
        return bool(self._items)

    def _took(self, envelope: Envelope[Any]) -> None:
        self._binder.took(envelope)


_NO_CONTEXT = object()
_building = threading.local()  # the HostedActor whose pykka actor is being constructed


def _inbox_factory() -> TracingInbox:
    return TracingInbox(_building.hosted)


def _peekable_inbox_factory() -> TracingPeekableInbox:
    return TracingPeekableInbox(_building.hosted)


def _hosted_of(actor: Any) -> HostedActor:
    hosted: HostedActor = actor.__dict__["_hosted"]
    return hosted


def _get_urn(actor: Any) -> str:
    return _hosted_of(actor).urn


def _set_urn(actor: Any, urn: str) -> None:
    # pykka's Actor.__init__ assigns a random URN; a hosted actor keeps its ref's instead.
    hosted = getattr(_building, "hosted", None)
    if hosted is None:
        raise TypeError(f"{type(actor).__qualname__} is hosted: start it with HostedActor.start")
    actor.__dict__["_hosted"] = hosted


def _on_stop(actor: Any) -> None:
    hosted = _hosted_of(actor)
    hosted._mark_stopped()
    try:
        super(type(actor), actor).on_stop()
    finally:
        hosted.finished.set()


def _on_failure(actor: Any, *exc_info: Any) -> None:
    hosted = _hosted_of(actor)
    hosted.failed = True
    hosted._mark_stopped()
    log.error("actor.failed", error=repr(exc_info[1]))
    try:
        super(type(actor), actor).on_failure(*exc_info)
    finally:
        hosted.finished.set()


_loop_numbers = itertools.count(1)


def _start_actor_loop(actor: Any) -> None:
    """pykka's loop on a daemon thread of ours: the host learns when it has ended."""
    hosted = _hosted_of(actor)

    def run_loop() -> None:
        try:
            run_actor_loop(actor)
        finally:
            hosted._mark_stopped()  # an actor that failed in on_start ends here
            hosted.loop_ended.set()

    # Daemon: a service whose main thread ends must reach its atexit shutdown (runtime.system).
    threading.Thread(target=run_loop, name=f"{type(actor).__name__}-{next(_loop_numbers)}",
                     daemon=True).start()


_hosted_classes: dict[type, type] = {}


def hosted_class(cls: type[pykka.Actor]) -> type[pykka.Actor]:
    """``cls`` with the host plugged into pykka's implementor hooks; name and module kept.

    Made once per class: the inbox and futures are the host's, ``on_stop`` and
    ``on_failure`` tell the host how the actor ended before running ``cls``'s own, and
    the loop runs on a thread that tells the host when it has ended.

        actor = hosted_class(Counter)(*args, **kwargs)  # while _building.hosted is set
    """
    if not (isinstance(cls, type) and issubclass(cls, pykka.ThreadingActor)):
        raise TypeError(f"{cls!r} is not a pykka.ThreadingActor subclass")
    sub = _hosted_classes.get(cls)
    if sub is None:
        # An actor that asked for a PeekableInbox (it batches) gets the tracing kind of it.
        peekable = isinstance(cls._create_actor_inbox(), PeekableInbox)
        factory = _peekable_inbox_factory if peekable else _inbox_factory
        namespace = {
            "_create_actor_inbox": staticmethod(factory),
            "_create_future": staticmethod(Future),
            "_start_actor_loop": _start_actor_loop,
            "on_stop": _on_stop,
            "on_failure": _on_failure,
            "actor_urn": property(_get_urn, _set_urn, doc="The URN of the actor's ActorRef."),
            "use_daemon_thread": True,
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
        }
        sub = _hosted_classes[cls] = type(cls.__name__, (cls,), namespace)
    return sub


class HostedActor:
    """One pykka actor living in this process, reachable through the node."""

    def __init__(self, node: Node, actor_id: str, name: str) -> None:
        self.node = node
        self.actor_id = actor_id
        self.name = name
        self.urn = actor_urn_for(node.system_id, actor_id)
        self.pykka_ref: pykka.ActorRef[Any] | None = None
        self.ref: Any = None  # its runtime.ActorRef, when the process that hosts it made one
        self._actor: pykka.Actor | None = None  # for introspection, while it runs
        self.failed = False
        self.finished = threading.Event()  # on_stop or on_failure has run
        self.loop_ended = threading.Event()  # the actor's thread handed over its last reply
        # Set as pykka sets the actor's stopped flag (before on_stop/on_failure): what
        # ``ActorRef.actor_stopped.wait()`` waits for, from any process.
        self.stopped: Future[None] = Future()
        self.stop_requested = False

    @property
    def accepting(self) -> bool:
        ref = self.pykka_ref
        return ref is not None and ref.is_alive()

    def __str__(self) -> str:
        ref = self.pykka_ref
        return str(ref) if ref is not None else f"actor {self.name!r} ({self.urn})"

    def start(self, cls: type[pykka.Actor], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        _building.hosted = self
        try:
            actor = hosted_class(cls)(*args, **kwargs)
        finally:
            _building.hosted = None
        self._actor = actor
        self.pykka_ref = actor.actor_ref
        self.node.actors[self.actor_id] = self
        # Not in this process's pykka.ActorRegistry under its local ref: the system's
        # registry lists the ref that works from every process (runtime.processes).
        actor._start_actor_loop()  # as pykka's Actor.start does after construction (our hook)

    def _mark_stopped(self) -> None:
        if not self.stopped.done():
            with contextlib.suppress(queue.Full):  # two threads may see the end at once
                self.stopped.set(None)

    def deliver(
        self, message: Any, origin: Peer | None, reply_id: int, context: Any, awaited: bool
    ) -> None:
        reply = None
        if reply_id:
            assert origin is not None
            reply = RemoteReply(self.node.system_id, origin.address, reply_id, awaited)
        if is_stop(message):
            self.stop_requested = True
        ref = self.pykka_ref
        assert ref is not None
        ref.actor_inbox.put(TracedEnvelope(message, reply, context, origin))

    def deliver_local(self, message: Any, reply: Any, context: Any) -> None:
        if is_stop(message):
            self.stop_requested = True
        ref = self.pykka_ref
        assert ref is not None
        ref.actor_inbox.put(TracedEnvelope(message, reply, context, None))

    def wait_stopped(self) -> None:
        """Block until the actor's loop has ended (stopped or failed)."""
        ref = self.pykka_ref
        assert ref is not None
        ref.actor_stopped.wait()
        # on_stop/on_failure run just after the stopped flag is set; an actor that
        # failed in on_start never calls on_failure, so don't wait forever.
        self.finished.wait(timeout=10.0)
        if not self.stop_requested and not self.finished.is_set():
            self.failed = True
        # pykka answers a stop after on_stop returns, on the actor's thread: the process
        # must not exit (and flush nothing) before that reply is handed to the transport.
        if self.finished.is_set():
            # Only pykka's teardown is left, or, after a BaseException, its stop of every
            # registered actor: that takes as long as those actors take to stop.
            self.loop_ended.wait()
        else:
            self.loop_ended.wait(timeout=10.0)

    def introspect(self) -> AttrMap:
        """Public attributes as path -> (callable, traversable), for remote proxies.

        Read from the actor's and its classes' ``__dict__``: no getter runs (pykka's rule).
        """
        actor = self._actor
        if actor is None or not self.accepting:
            raise ActorDeadError(f"{self} not found: it is stopped")
        return public_attributes(actor, self._is_own_proxy)

    def _is_own_proxy(self, value: Any) -> bool:
        target = proxy_target(value)
        if target is None:
            return False
        if target is self.pykka_ref:
            return True
        return (getattr(target, "actor_id", None) == self.actor_id
                and getattr(target, "system_id", None) == self.node.system_id)
