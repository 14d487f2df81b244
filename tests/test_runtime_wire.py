"""``transport.write_frame``: multiprocess's wire format, written without its Python checks."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import pytest
from multiprocess.connection import Connection

from runtime.wire import _framing as transport
from runtime.wire import write_frame


@pytest.fixture
def pair() -> Iterator[tuple[Connection, Connection]]:
    ours, theirs = socket.socketpair()
    sender, receiver = Connection(ours.detach()), Connection(theirs.detach())
    yield sender, receiver
    sender.close()
    receiver.close()


def test_a_written_frame_is_what_multiprocess_reads(pair: tuple[Connection, Connection]) -> None:
    sender, receiver = pair
    for payload in (b"", b"x", b"ask" * 20):
        write_frame(sender, payload)
        assert receiver.recv_bytes() == payload


def test_a_frame_bigger_than_the_socket_buffer_arrives_whole(
    pair: tuple[Connection, Connection],
) -> None:
    sender, receiver = pair
    payload = os.urandom(4 * 1024 * 1024)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(receiver.recv_bytes()))
    reader.start()
    write_frame(sender, payload)
    reader.join(timeout=30)
    assert received == [payload]


def test_a_write_cut_short_is_finished_in_order(
    pair: tuple[Connection, Connection], monkeypatch: pytest.MonkeyPatch,
) -> None:
    sender, receiver = pair

    def writev_two_bytes(fd: int, buffers: list[bytes]) -> int:
        return os.write(fd, b"".join(buffers)[:2])  # as if a signal had interrupted it

    monkeypatch.setattr(transport.os, "writev", writev_two_bytes)
    write_frame(sender, b"the rest follows")
    assert receiver.recv_bytes() == b"the rest follows"


def test_a_closed_connection_raises_os_error_and_writes_nothing() -> None:
    ours, theirs = socket.socketpair()
    sender = Connection(ours.detach())
    sender.close()
    try:
        with pytest.raises(OSError):
            write_frame(sender, b"late")
        assert theirs.recv(16) == b""  # the end of the stream, with nothing before it
    finally:
        theirs.close()
