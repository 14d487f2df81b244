"""pykka's in-process objects, when they cross to another process inside a message or reply.

* A **future in a reply** (an actor returns the future of its proxy to itself, or of
  an ask to another actor, as pykka's documentation shows): the asker receives its
  own ``Future``, and the value follows it once the actor's future has one, pushed
  by the actor's process (``VALUE`` records; ``Node.import_future`` on the other side).
  Should that process die first, the copy fails with ``ActorDeadError``.
* A **future in a message** stays what it always was: a reply handle, whose ``set``
  answers the future in the process that sent it (``runtime.transport.reply_handle_for``).
* An actor's own **pykka ``ActorRef``** (``self.actor_ref``) becomes its system-wide
  ``runtime.ActorRef``, so an actor can hand itself out as in pykka.

    class Pipeline(pykka.ThreadingActor):
        def start_work(self):
            return self.actor_ref.proxy().do_work()   # a future, returned to the caller

    ref.proxy().start_work().get().get(timeout=5)     # the caller's copy of it
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pykka

from runtime.future import Future

if TYPE_CHECKING:
    from runtime.transport import Node

_replying = threading.local()  # the reply being pickled on this thread, if any


class replying_to:  # noqa: N801 - used as a ``with`` block, like a function
    """Inside the block, futures pickled by this thread travel as copies to ``address``.

    Their values are sent only once ``release()`` is called, after the reply that
    carries them is queued: a value must never overtake the copy it is for.

        with replying_to(node, address) as reply:
            data = serialization.dumps(record)
        queue(data)
        reply.release()
    """

    __slots__ = ("_pushes", "address", "node")

    def __init__(self, node: Node, address: str) -> None:
        self.node = node
        self.address = address
        self._pushes: list[tuple[pykka.Future[Any], Callable[[pykka.Future[Any]], None]]] = []

    def __enter__(self) -> replying_to:
        _replying.target = self
        return self

    def __exit__(self, *exc: object) -> None:
        _replying.target = None

    def export(self, future: pykka.Future[Any]) -> tuple[Any, ...]:
        """Pickle ``future`` as a copy that ``address`` will receive the value of."""
        node, address = self.node, self.address
        export_id = node.new_export_id()

        def push(done: pykka.Future[Any]) -> None:
            try:
                value = done.get(timeout=0)
            except BaseException as exc:  # the future's own outcome, whatever it is
                node.send_value(address, export_id, False, exc)
            else:
                node.send_value(address, export_id, True, value)

        self._pushes.append((future, push))
        return (_import_future, (node.system_id, node.address, export_id))

    def release(self) -> None:
        """The reply is queued: send each exported future's value once it has one."""
        for future, push in self._pushes:
            if isinstance(future, Future) and future._get_hook is None:
                future._when_done(push)
            else:  # a get hook (map, join, ...) or a plain pykka future: only get() tells
                threading.Thread(target=_push_when_got, args=(future, push), daemon=True,
                                 name="da-future-export").start()
        self._pushes.clear()


def reply_target() -> replying_to | None:
    """The reply being pickled on this thread, if any."""
    target: replying_to | None = getattr(_replying, "target", None)
    return target


def _push_when_got(future: pykka.Future[Any], push: Any) -> None:
    try:
        value = future.get()
    except BaseException as exc:
        done: Future[Any] = Future()
        done.set_exception(exc)
    else:
        done = Future()
        done.set(value)
    push(done)


def _import_future(system_id: str, address: str, export_id: int) -> Future[Any]:
    from runtime.transport import node_for

    copy: Future[Any] = Future()
    node_for(system_id).import_future(address, export_id, copy)
    return copy


def crossing(obj: Any) -> Any:
    """How a pykka object that cannot pickle itself crosses, or NotImplemented."""
    from runtime.ref import ActorRef
    from runtime.transport import current_node

    if isinstance(obj, ActorRef | Future):
        return NotImplemented  # they pickle themselves
    if isinstance(obj, pykka.ActorRef):
        node = current_node()
        hosted = None if node is None else next(
            (h for h in node.actors.values() if h.pykka_ref is obj), None)
        if hosted is None:
            return NotImplemented  # an actor of this process only: it cannot be reached
        own = hosted.ref
        if own is None:
            own = ActorRef(system_id=hosted.node.system_id, address=hosted.node.address,
                           actor_id=hosted.actor_id, name=hosted.name,
                           class_name=obj.actor_class.__name__)
        reduced: tuple[Any, ...] = own.__reduce__()
        return reduced
    if isinstance(obj, pykka.Future):
        target = reply_target()
        if target is not None:
            return target.export(obj)
    return NotImplemented
