"""The transport seam: what ``ActorRef``, ``Future`` and replies stand on.

``Transport`` (``_protocol``) is the whole contract between the actor
vocabulary above (``runtime.remote``: refs, proxies) and a backend below
(``runtime.wire``: Unix sockets; ``InProcessTransport``: one process, for
tests; a Ray backend next). ``Future`` is the value that arrives later, with a
pluggable way to wait (``ReplyWait``); ``caller_exception`` is the one error
encoding answers use; the registry says which transport serves which system in
this process.
"""

from runtime.transport._future import Future, ReplyWait, get_all
from runtime.transport._in_process import InProcessReply, InProcessTransport
from runtime.transport._outcomes import (
    caller_exception,
    remote_traceback_of,
    reply_not_pickled,
    settle,
)
from runtime.transport._protocol import ActorAddress, ControlOp, ReplyHandle, Transport
from runtime.transport._registry import (
    only_transport,
    register,
    registered,
    transport_for,
    withdraw,
)

__all__ = [
    "ActorAddress",
    "ControlOp",
    "Future",
    "InProcessReply",
    "InProcessTransport",
    "ReplyHandle",
    "ReplyWait",
    "Transport",
    "caller_exception",
    "get_all",
    "only_transport",
    "register",
    "registered",
    "remote_traceback_of",
    "reply_not_pickled",
    "settle",
    "transport_for",
    "withdraw",
]
