"""The socket's stream after the handshake: records in the project's own format (``_framing``)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import pytest
from multiprocess.connection import Connection

from runtime.errors import SerializationError
from runtime.wire import _framing, cut_records, record_bytes, write_records


@pytest.fixture
def pair() -> Iterator[tuple[Connection, socket.socket]]:
    ours, theirs = socket.socketpair()
    sender = Connection(ours.detach())
    yield sender, theirs
    sender.close()
    theirs.close()


def read_records(sock: socket.socket, count: int) -> list[bytes]:
    buffer, found = bytearray(), []
    while len(found) < count:
        chunk = sock.recv(1 << 16)
        assert chunk, "the stream ended early"
        buffer += chunk
        found.extend(cut_records(buffer))
    assert not buffer
    return found


def test_records_written_back_to_back_are_cut_apart_again(
        pair: tuple[Connection, socket.socket]) -> None:
    sender, receiver = pair
    payloads = [b"", b"x", b"ask" * 20]
    write_records(sender, b"".join(record_bytes(p) for p in payloads))
    assert read_records(receiver, 3) == payloads


def test_a_record_bigger_than_the_socket_buffer_arrives_whole(
        pair: tuple[Connection, socket.socket]) -> None:
    sender, receiver = pair
    payload = os.urandom(4 * 1024 * 1024)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.extend(read_records(receiver, 1)))
    reader.start()
    write_records(sender, record_bytes(payload))
    reader.join(timeout=30)
    assert received == [payload]


def test_a_write_cut_short_is_finished_in_order(
    pair: tuple[Connection, socket.socket], monkeypatch: pytest.MonkeyPatch,
) -> None:
    sender, receiver = pair
    real_write = os.write
    calls: list[int] = []

    def write_two_bytes_first(fd: int, data: bytes) -> int:
        calls.append(len(data))
        return real_write(fd, bytes(data)[:2] if len(calls) == 1 else data)  # a signal, say

    monkeypatch.setattr(_framing.os, "write", write_two_bytes_first)
    write_records(sender, record_bytes(b"the rest follows"))
    assert read_records(receiver, 1) == [b"the rest follows"]
    assert len(calls) == 2


def test_a_partial_record_waits_for_the_rest() -> None:
    whole = record_bytes(b"one") + record_bytes(b"two")
    buffer = bytearray(whole[:-1])
    assert list(cut_records(buffer)) == [b"one"]
    buffer += whole[-1:]
    assert list(cut_records(buffer)) == [b"two"]


def test_a_record_over_four_gibibytes_is_refused_with_a_serialization_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_framing, "MAX_RECORD", 8)
    with pytest.raises(SerializationError, match="over the wire's 4 GiB limit"):
        record_bytes(b"nine byte")


def test_a_closed_connection_raises_os_error_and_writes_nothing() -> None:
    ours, theirs = socket.socketpair()
    sender = Connection(ours.detach())
    sender.close()
    try:
        with pytest.raises(OSError):
            write_records(sender, record_bytes(b"late"))
        assert theirs.recv(16) == b""  # the end of the stream, with nothing before it
    finally:
        theirs.close()
