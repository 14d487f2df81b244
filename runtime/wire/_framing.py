"""The bytes on the socket, after the handshake: a stream of records, in the project's own format.

A *record* is a pickled tuple whose first field is its kind (below), written
as its length (4 bytes, little-endian, unsigned) and then the pickle. The
stream carries nothing else: a batch of records is written back to back in
one ``write``, and the reader cuts what the socket gives into whole records.
Only the handshake (``HELLO``, authentication) goes through
``multiprocess.connection``'s own ``Client``/``Listener`` and its documented
``send_bytes``/``recv_bytes``.

    write_records(conn, record_bytes(dumps((MSG, actor_id, message, 0, None, False))))
    for record in cut_records(buffer): loads(record)
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

from multiprocess.connection import Connection

from runtime.errors import SerializationError

# Record kinds: the first field of every pickled record tuple. VALUE answers the copy of a
# future that this process sent inside a reply (``runtime.wire._pickling``).
MSG, REPLY, CREDIT, CTRL, HELLO, DEAD, REPLIES, VALUE = range(8)
_LEN = struct.Struct("<I")  # a record's length, before it
MAX_RECORD = 0xFFFFFFFF  # the longest record a 4-byte length can say


def record_bytes(data: bytes) -> bytes:
    """``data`` (one pickled record) with its length in front; ``SerializationError`` past 4 GiB."""
    if len(data) > MAX_RECORD:
        raise SerializationError(
            f"a record of {len(data)} bytes is over the wire's 4 GiB limit; send a Ref "
            "(ctx.save) or smaller pieces instead")
    return _LEN.pack(len(data)) + data


def write_records(conn: Connection, data: bytes) -> None:
    """Write ``data`` (whole records, back to back) to ``conn``, finishing short writes.

    ``fileno()`` raises ``OSError`` on a closed connection, so a recycled descriptor is
    never written.
    """
    fd = conn.fileno()
    written = os.write(fd, data)
    if written < len(data):  # a full socket buffer or a signal cut the write short
        rest = memoryview(data)[written:]
        while rest:
            rest = rest[os.write(fd, rest):]


def cut_records(buffer: bytearray) -> Iterator[memoryview]:
    """The complete records at the head of ``buffer``, each without its length.

    Consumes them at once (a partial record stays in ``buffer`` for the next read),
    copying the complete ones out in one piece: a burst of small records costs one
    copy, not one per record.
    """
    available, header = len(buffer), _LEN.size
    position, bounds = 0, []
    while available - position >= header:
        (size,) = _LEN.unpack_from(buffer, position)
        if available - position < header + size:
            break
        bounds.append((position + header, position + header + size))
        position += header + size
    if not position:
        return
    view = memoryview(bytes(buffer) if position == available else bytes(buffer[:position]))
    del buffer[:position]
    for start, stop in bounds:
        yield view[start:stop]


def shut_down(conn: Connection) -> None:
    """End both directions of ``conn``'s socket, without closing its descriptor."""
    with socket.socket(fileno=os.dup(conn.fileno())) as sock:
        sock.shutdown(socket.SHUT_RDWR)
