"""Pykka-style proxies across processes.

The proxy learns the actor's public attributes once (a control round trip,
answered by the actor's node without queueing behind the actor's messages),
then turns method calls into ``ProxyCall`` asks and attribute reads into
``ProxyGetAttr`` asks, each returning a ``Future`` as in pykka.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pykka.messages import ProxyCall, ProxyGetAttr, ProxySetAttr

from runtime.future import Future
from runtime.transport import node_for

if TYPE_CHECKING:
    from runtime.ref import ActorRef

AttrMap = dict[tuple[str, ...], tuple[bool, bool]]


class CallableProxy:
    """A method of a remote actor: call it for a ``Future``; ``defer`` to not wait."""

    def __init__(self, ref: ActorRef[Any], path: tuple[str, ...]) -> None:
        self._ref = ref
        self._path = path

    def __call__(self, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = self._ref.ask(ProxyCall(self._path, args, kwargs), block=False)
        return fut

    def defer(self, *args: Any, **kwargs: Any) -> None:
        self._ref.tell(ProxyCall(self._path, args, kwargs))


class ActorProxy:
    """Proxy to an actor in any process of the system.

        counter = ref.proxy()
        counter.add(1).get()      # method call -> Future
        counter.count.get()       # attribute read -> Future
    """

    def __init__(self, ref: ActorRef[Any], path: tuple[str, ...] = (),
                 attrs: AttrMap | None = None) -> None:
        if attrs is None:
            node = node_for(ref.system_id)
            attrs = node.send_control(ref.address, "introspect", ref.actor_id).get(timeout=30)
        object.__setattr__(self, "_ref", ref)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_attrs", attrs)

    @property
    def actor_ref(self) -> ActorRef[Any]:
        ref: ActorRef[Any] = object.__getattribute__(self, "_ref")
        return ref

    def __repr__(self) -> str:
        return f"<ActorProxy for {self._ref!r}, attr_path={self._path!r}>"

    def __dir__(self) -> list[str]:
        depth = len(self._path) + 1
        names = {p[-1] for p in self._attrs if len(p) == depth and p[:-1] == self._path}
        return sorted(names)

    def __getattr__(self, name: str) -> Any:
        path = (*self._path, name)
        info = self._attrs.get(path)
        if info is None:
            raise AttributeError(f"{self._ref.class_name} has no public attribute {name!r}")
        is_callable, traversable = info
        if traversable:
            return ActorProxy(self._ref, path, self._attrs)
        if is_callable:
            return CallableProxy(self._ref, path)
        fut: Future[Any] = self._ref.ask(ProxyGetAttr(path), block=False)
        return fut

    def __setattr__(self, name: str, value: Any) -> None:
        self._ref.ask(ProxySetAttr((*self._path, name), value), block=True)
