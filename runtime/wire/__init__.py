"""The wire: one process's end of the system's channels, and how frames are read.

``Node`` is this process's endpoint (a Unix socket, one connection per peer,
flow control by credit); ``Channel`` reads one connection, led by whichever
thread waits on it; ``Pump`` lets an idle actor's thread read its own messages.
"""

from runtime.wire._channel import Channel, Pump, SpinWait, cut_frames
from runtime.wire._node import Node, Peer, RemoteReply, current_node, node_for, write_frame

__all__ = [
    "Channel",
    "Node",
    "Peer",
    "Pump",
    "RemoteReply",
    "SpinWait",
    "current_node",
    "cut_frames",
    "node_for",
    "write_frame",
]
