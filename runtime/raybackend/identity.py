"""Which actor this Ray host process hosts: its local pykka ref and its system-wide ref.

A host process hosts one actor. When that actor hands out its own
``self.actor_ref`` (a pykka ref that works only inside this process), the Ray
picklers send the system's ``ActorRef`` to it instead, as the socket
transport's picklers do.

    own_reduction(obj)    # ActorRef.__reduce__() for this host's pykka ref; None else
"""

from __future__ import annotations

from typing import Any

import pykka

_own: dict[str, Any] = {}  # "pykka": the local ref, "ref": the system's ActorRef


def set_own(pykka_ref: Any, ref: Any) -> None:
    """The actor this process hosts, once it is started."""
    _own["pykka"] = pykka_ref
    _own["ref"] = ref


def own_reduction(obj: Any) -> tuple[Any, ...] | None:
    """How ``obj`` pickles if it is this host's own pykka ref (its system ref); else None."""
    if isinstance(obj, pykka.ActorRef) and obj is _own.get("pykka"):
        reduced: tuple[Any, ...] = _own["ref"].__reduce__()
        return reduced
    return None


__all__ = ["own_reduction", "set_own"]
