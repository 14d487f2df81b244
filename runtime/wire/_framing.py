"""The bytes on the socket: records, their kinds, and the frames that carry them.

A *record* is a pickled tuple whose first field is its kind (below), prefixed
by its length (``<I``). A *frame* carries one or more records, as
``multiprocess.connection`` frames its payloads (a 4-byte big-endian size,
``-1`` then an 8-byte size past 2 GiB): the handshake goes through
``multiprocess``'s ``Client``/``Listener``, and the frames after it are
written here in one ``writev`` and cut here from what the socket gives.

    write_frame(conn, record_bytes(dumps((MSG, actor_id, message, 0, None, False))))
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

from multiprocess.connection import Connection

# Record kinds: the first field of every pickled record tuple. VALUE answers the copy of a
# future that this process sent inside a reply (``runtime.wire._pickling``).
MSG, REPLY, CREDIT, CTRL, HELLO, DEAD, REPLIES, VALUE = range(8)
_LEN = struct.Struct("<I")  # a record's length, before it
_WIRE = struct.Struct("!i")  # a frame's size, before it
_BIG = struct.Struct("!Q")  # ... after a -1, for a frame over 2 GiB
_WIRE_MAX = 0x7FFFFFFF  # bigger payloads take the 8-byte size


def record_bytes(data: bytes) -> bytes:
    """``data`` (one pickled record) with its length in front."""
    return _LEN.pack(len(data)) + data


def write_frame(conn: Connection, payload: bytes) -> None:
    """Send ``payload`` as one frame of ``conn``, in one ``writev`` (no copy of a big payload).

    ``fileno()`` raises ``OSError`` on a closed connection, so a recycled descriptor is
    never written.
    """
    size = len(payload)
    fd = conn.fileno()
    header = _WIRE.pack(size) if size <= _WIRE_MAX else _WIRE.pack(-1) + _BIG.pack(size)
    written = os.writev(fd, (header, payload))
    if written < size + len(header):  # a signal cut a blocking write short: finish it
        rest = memoryview(header + payload)[written:]
        while rest:
            rest = rest[os.write(fd, rest):]


def cut_frames(buffer: bytearray) -> Iterator[bytes]:
    """The complete frames at the head of ``buffer``.

    Consumes what it yields; a partial frame stays in ``buffer`` for the next read.
    """
    position, available = 0, len(buffer)
    try:
        while available - position >= _WIRE.size:
            (size,) = _WIRE.unpack_from(buffer, position)
            header = _WIRE.size
            if size == -1:  # a payload over 2 GiB: an 8-byte size follows
                if available - position < header + _BIG.size:
                    break
                (size,) = _BIG.unpack_from(buffer, position + header)
                header += _BIG.size
            if available - position < header + size:
                break
            frame = bytes(buffer[position + header:position + header + size])
            position += header + size
            yield frame
    finally:
        if position:
            del buffer[:position]


def records_of(frame: bytes) -> Iterator[memoryview]:
    """The pickled records of one frame, in order."""
    view = memoryview(frame)
    offset, end = 0, len(frame)
    while offset < end:
        (length,) = _LEN.unpack_from(view, offset)
        start = offset + _LEN.size
        offset = start + length
        yield view[start:offset]


def shut_down(conn: Connection) -> None:
    """End both directions of ``conn``'s socket, without closing its descriptor."""
    with socket.socket(fileno=os.dup(conn.fileno())) as sock:
        sock.shutdown(socket.SHUT_RDWR)
