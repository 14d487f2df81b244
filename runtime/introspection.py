"""What a proxy may see of an actor: its public attributes, found without running any of them.

pykka's proxies look an actor's attributes up in the instance's and its classes'
``__dict__`` instead of reading them, so building a proxy never runs a property
getter (nor its side effects), and a property counts as a plain attribute even
when it returns something traversable. A remote proxy follows the same rules;
only the answer travels: a map of attribute paths to whether each is callable
and whether it is traversable (a nested proxy).

    attrs = public_attributes(actor, is_own_proxy=lambda value: False)
    attrs[("add",)]        # Exposed(callable=True, traversable=False)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import pykka

from actors import tracelog

log = tracelog.get_logger("runtime.introspection")

_MAX_DEPTH = 16  # nested traversable attributes followed; deeper ones are not proxied


class Exposed(NamedTuple):
    """How a proxy offers one attribute: as a method, a nested proxy, or a value to read."""

    callable: bool
    traversable: bool


AttrMap = dict[tuple[str, ...], Exposed]


def raw_members(obj: Any) -> dict[str, Any]:
    """``obj``'s attributes as stored: its classes' ``__dict__`` (base first), then its own."""
    found: dict[str, Any] = {}
    for cls in reversed(type(obj).__mro__):
        found.update(vars(cls))
    own = getattr(obj, "__dict__", None)  # a mapping of its own: not a getter of the actor's
    if isinstance(own, dict):
        found.update(own)
    return found


def is_traversable(value: Any) -> bool:
    """Marked with ``pykka.traversable`` (or ``pykka_traversable = True``); exactly True.

    A catch-all ``__getattr__`` (a ``MagicMock``, say) answers anything with something
    truthy: only the value ``True`` itself marks an attribute traversable, as in pykka.
    """
    return (getattr(value, "_pykka_traversable", False) is True
            or getattr(value, "pykka_traversable", False) is True)


def public_attributes(root: Any, is_own_proxy: Callable[[Any], bool]) -> AttrMap:
    """Every public attribute of ``root`` and of its traversable attributes, by path.

    Names starting with ``_`` are private. An attribute that ``is_own_proxy`` (a proxy
    to the actor itself) is left out with a warning, as pykka does: reading it through
    a proxy would hand out the actor's own proxy, which pykka treats as a mistake.
    """
    found: AttrMap = {}
    to_visit: list[tuple[tuple[str, ...], Any, frozenset[int]]] = [((), root, frozenset())]
    while to_visit:
        path, obj, ancestors = to_visit.pop()
        lineage = ancestors | {id(obj)}  # a traversable that holds its own parent ends there
        members = raw_members(obj)
        for name in dir(obj):
            if name.startswith("_") or name not in members:
                continue  # private, or listed by a __dir__ but stored nowhere we may read
            value = members[name]
            if is_own_proxy(value):
                log.warning("proxy.self_reference_skipped", attribute=".".join((*path, name)),
                            hint=f"a proxy to the actor itself; name it '_{name}' to keep it "
                                 "private")
                continue
            traversable = is_traversable(value)
            found[(*path, name)] = Exposed(
                callable=callable(value) or isinstance(value, classmethod),
                traversable=traversable,
            )
            if traversable and id(value) not in lineage and len(path) < _MAX_DEPTH:
                to_visit.append(((*path, name), value, lineage))
    return found


def proxy_target(value: Any) -> Any:
    """The ref a proxy value stands for, or None when ``value`` is no proxy."""
    if isinstance(value, pykka.ActorProxy):
        return value.actor_ref
    return None
