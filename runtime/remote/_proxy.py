"""Pykka-style proxies across processes.

A proxy learns the actor's public attributes (a control round trip, answered
by the actor's node without queueing behind the actor's messages), then turns
method calls into ``ProxyCall`` asks and attribute reads into ``ProxyGetAttr``
asks, each returning a ``Future``, as in pykka. The attributes are found as
pykka finds them (``runtime.remote``): no getter runs to build a proxy,
and a name the proxy does not know yet is looked up again before it is refused.
The proxies are ``pykka.ActorProxy`` and ``pykka.CallableProxy`` instances.
"""

from __future__ import annotations

from typing import Any, TypeVar

import pykka
from pykka.messages import ProxyCall, ProxyGetAttr, ProxySetAttr

from runtime.errors import ActorDeadError
from runtime.remote._introspection import AttrMap
from runtime.transport import ControlOp, Future, transport_for

A = TypeVar("A", bound=pykka.Actor)


class _KnownAttributes:
    """The attribute map a proxy and its nested proxies share; looked up again on a miss."""

    __slots__ = ("attrs", "ref")

    def __init__(self, ref: Any, attrs: AttrMap | None = None) -> None:
        self.ref = ref  # a runtime.ActorRef: its transport answers ``introspect``
        self.attrs: AttrMap = self.fetch() if attrs is None else attrs

    def fetch(self) -> AttrMap:
        ref = self.ref
        try:
            attrs: AttrMap = transport_for(ref.system_id).control(
                ref.to, ControlOp.INTROSPECT).get(timeout=30)
        except ActorDeadError as exc:
            raise ActorDeadError(f"{ref} not found: {exc}") from None
        return attrs

    def refresh(self) -> None:
        self.attrs = self.fetch()


class CallableProxy(pykka.CallableProxy[A]):
    """A method of a remote actor: call it for a ``Future``; ``defer`` to not wait.

        add = counter_proxy.add
        add(1).get(timeout=5)     # ask semantics
        add.defer(1)              # tell semantics: no future, failures go to on_failure
    """

    actor_ref: pykka.ActorRef[A]

    def __init__(self, actor_ref: pykka.ActorRef[A], attr_path: tuple[str, ...]) -> None:
        self.actor_ref = actor_ref
        self._attr_path = attr_path

    def __call__(self, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = self.actor_ref.ask(  # type: ignore[assignment]  # our ref: ours
            ProxyCall(self._attr_path, args, kwargs), block=False)
        return fut

    def defer(self, *args: Any, **kwargs: Any) -> None:
        self.actor_ref.tell(ProxyCall(self._attr_path, args, kwargs))

    def __repr__(self) -> str:
        return f"<CallableProxy for {self.actor_ref}, attr_path={self._attr_path!r}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CallableProxy):
            return NotImplemented
        return (self.actor_ref, self._attr_path) == (other.actor_ref, other._attr_path)

    def __hash__(self) -> int:
        return hash((self.actor_ref, self._attr_path))

    def __reduce__(self) -> tuple[Any, ...]:
        return (CallableProxy, (self.actor_ref, self._attr_path))


class ActorProxy(pykka.ActorProxy[A]):
    """Proxy to an actor in any process of the system; a ``pykka.ActorProxy``.

        counter = ref.proxy()               # or ActorProxy(actor_ref=ref)
        counter.add(1).get()                # method call -> Future
        counter.count.get()                 # attribute read -> Future
        counter.count = 5                   # attribute write, waits until it is done

    Two proxies of the same actor and attribute path are equal. Raises
    ``ActorDeadError`` when made for an actor that is not running.
    """

    actor_ref: pykka.ActorRef[A]
    """The ``ActorRef`` of the proxied actor."""
    _path: tuple[str, ...]
    _known: _KnownAttributes
    _children: dict[tuple[str, ...], Any]

    def __init__(self, actor_ref: pykka.ActorRef[A], attr_path: tuple[str, ...] | None = None,
                 _known: _KnownAttributes | None = None) -> None:
        object.__setattr__(self, "actor_ref", actor_ref)
        object.__setattr__(self, "_path", tuple(attr_path or ()))
        object.__setattr__(self, "_known", _known or _KnownAttributes(actor_ref))
        object.__setattr__(self, "_children", {})  # path -> nested or callable proxy

    def __repr__(self) -> str:
        return f"<ActorProxy for {self.actor_ref}, attr_path={self._path!r}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ActorProxy):
            return NotImplemented
        return (self.actor_ref, self._path) == (other.actor_ref, other._path)

    def __hash__(self) -> int:
        return hash((self.actor_ref, self._path))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_proxy, (self.actor_ref, self._path, self._known.attrs))

    def __dir__(self) -> list[str]:
        depth = len(self._path) + 1
        names = {p[-1] for p in self._known.attrs if len(p) == depth and p[:-1] == self._path}
        return sorted(names | set(object.__dir__(self)))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # private: never proxied (and what pickle or copy look for)
            raise AttributeError(f"{self} has no attribute {name!r}: names starting with '_' "
                                 "are private to the actor")
        path = (*self._path, name)
        child = self._children.get(path)
        if child is not None:
            return child
        known = self._known
        info = known.attrs.get(path)
        if info is None:  # new since we looked: look again, as pykka does
            try:
                known.refresh()
            except ActorDeadError as exc:
                raise AttributeError(f"{self} has no attribute {name!r}: the actor could not "
                                     f"be asked again ({exc})") from exc
            info = known.attrs.get(path)
            if info is None:
                raise AttributeError(f"{self} has no attribute {name!r}: "
                                     f"{_class_name(self.actor_ref)} has no public attribute by "
                                     "that name")
        if info.callable:
            child = self._children[path] = CallableProxy(self.actor_ref, path)
            return child
        if info.traversable:
            child = self._children[path] = ActorProxy(self.actor_ref, path, known)
            return child
        fut: Any = self.actor_ref.ask(ProxyGetAttr(path), block=False)
        return fut

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "actor_ref" or name.startswith("_"):
            object.__setattr__(self, name, value)  # the proxy's own attribute, as in pykka
            return
        self.actor_ref.ask(ProxySetAttr((*self._path, name), value), block=True)


def _rebuild_proxy(ref: pykka.ActorRef[Any], path: tuple[str, ...], attrs: AttrMap
                   ) -> ActorProxy[Any]:
    return ActorProxy(ref, path, _KnownAttributes(ref, attrs))



def _class_name(ref: pykka.ActorRef[Any]) -> str:
    name: str = getattr(ref, "class_name", None) or ref.actor_class.__name__
    return name
