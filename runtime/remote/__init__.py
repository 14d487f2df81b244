"""pykka's vocabulary across processes: ``ActorRef``, proxies and ``Future``.

A ref is an address, not a weakref, so it pickles and works from any process;
a proxy turns calls into asks; a future crosses as a reply handle.
"""

from runtime.remote._actor_ref import (
    SELF,
    ActorRef,
    StoppedFlag,
    actor_urn_for,
    forget_class,
    remember_class,
)
from runtime.remote._exports import crossing, reply_target, replying_to
from runtime.remote._future import Future, get_all, remote_traceback_of
from runtime.remote._introspection import AttrMap, proxy_target, public_attributes
from runtime.remote._proxy import ActorProxy, CallableProxy

__all__ = [
    "SELF",
    "ActorProxy",
    "ActorRef",
    "AttrMap",
    "CallableProxy",
    "Future",
    "StoppedFlag",
    "actor_urn_for",
    "crossing",
    "forget_class",
    "get_all",
    "proxy_target",
    "public_attributes",
    "remember_class",
    "remote_traceback_of",
    "reply_target",
    "replying_to",
]
