"""The socket transport: one process's end of the system's Unix-socket channels.

``Node`` is this process's ``runtime.transport.Transport`` (one per process and
system): ``_connections`` (a connection per peer), ``_framing`` (the bytes on
the socket), ``_writer`` (writes now, or coalesced), ``_dispatch`` (what
arriving records do), ``_replies`` (futures waiting here, handles to futures
elsewhere), ``_pickling`` (futures registered as the message is pickled),
``_peer`` (credit flow control), and the reading of a connection by the thread
that waits on it: ``_channel``, ``_pump``, ``_spin``.
"""

from runtime.wire._channel import Channel
from runtime.wire._dispatch import Hosted
from runtime.wire._framing import cut_records, record_bytes, write_records
from runtime.wire._node import Node, current_node, node_for
from runtime.wire._peer import Peer
from runtime.wire._pump import Pump
from runtime.wire._replies import RemoteReply
from runtime.wire._spin import SpinWait

__all__ = [
    "Channel",
    "Hosted",
    "Node",
    "Peer",
    "Pump",
    "RemoteReply",
    "SpinWait",
    "current_node",
    "cut_records",
    "node_for",
    "record_bytes",
    "write_records",
]
