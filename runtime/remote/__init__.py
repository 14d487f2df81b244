"""pykka's vocabulary across processes: ``ActorRef``, proxies and ``Future``.

A ref is an address, not a weakref, so it pickles and works from any process;
a proxy turns calls into asks. Both send through the system's transport
(``runtime.transport``), whichever backend it is.
"""

from runtime.remote._actor_ref import (
    SELF,
    ActorRef,
    StoppedFlag,
    actor_urn_for,
    forget_class,
    remember_class,
)
from runtime.remote._introspection import AttrMap, proxy_target, public_attributes
from runtime.remote._proxy import ActorProxy, CallableProxy
from runtime.transport import Future, get_all, remote_traceback_of

__all__ = [
    "SELF",
    "ActorProxy",
    "ActorRef",
    "AttrMap",
    "CallableProxy",
    "Future",
    "StoppedFlag",
    "actor_urn_for",
    "forget_class",
    "get_all",
    "proxy_target",
    "public_attributes",
    "remember_class",
    "remote_traceback_of",
]
