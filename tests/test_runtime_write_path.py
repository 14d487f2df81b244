"""Which frames the sending thread writes itself, and which wait for the node's writer thread.

A ping-pong must not pay a thread hop per frame; a burst must still leave in one
write. The node here is not started (no writer thread drains its queue), so what
was queued for the writer stays visible in ``peer.out``; and the burst gap is
endless, so every frame counts as following the last one at once, however slowly
the test runs: only ``awaited`` frames may be written by their thread.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from multiprocess.connection import Connection

from runtime import Future, serialization
from runtime.wire import Node, Peer, _writer
from runtime.wire._framing import _LEN, MSG, REPLY, cut_records

ADDRESS = "/nonexistent/peer.sock"


@pytest.fixture
def wired(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Node, Peer, Connection]]:
    monkeypatch.setattr(_writer, "_BURST_GAP", math.inf)
    ours, theirs = socket.socketpair()
    node = Node(system_id="s", address="/nonexistent/node.sock", secret=b"k", role="test")
    peer = node.peer(ADDRESS)
    peer.conn = Connection(ours.detach())
    receiver = Connection(theirs.detach())
    yield node, peer, receiver
    peer.conn.close()
    receiver.close()


def records_written(receiver: Connection) -> list[tuple[Any, ...]]:
    buffer = bytearray()
    while receiver.poll(0):
        buffer += os.read(receiver.fileno(), 1 << 16)
    return [serialization.loads(record) for record in cut_records(buffer)]


def ask(node: Node, message: Any) -> Future[Any]:
    future: Future[Any] = Future()
    node.send_message(ADDRESS, "actor-1", "echo", message, future, None)
    return future


def test_an_ask_right_after_the_last_frame_is_written_by_the_asking_thread(
    wired: tuple[Node, Peer, Connection],
) -> None:
    node, peer, receiver = wired
    ask(node, "ping")
    assert not peer.out
    [record] = records_written(receiver)
    assert record[0] == MSG and record[2] == "ping"


def test_an_ask_carries_that_its_asker_waits_on_nothing_else(
    wired: tuple[Node, Peer, Connection],
) -> None:
    node, _, receiver = wired
    ask(node, "ping")
    [record] = records_written(receiver)
    assert record[5] is True


def test_asks_sent_while_one_is_unanswered_are_batched_by_the_writer(
    wired: tuple[Node, Peer, Connection],
) -> None:
    node, peer, receiver = wired
    ask(node, 1)
    ask(node, 2)
    ask(node, 3)
    [first] = records_written(receiver)
    assert first[2] == 1
    assert len(peer.out) == 2  # waiting for the writer thread, to leave in one write
    later = [serialization.loads(frame[_LEN.size :]) for frame in peer.out]
    assert [record[5] for record in later] == [False, False]


def test_tells_closer_than_the_burst_gap_are_batched_by_the_writer(
    wired: tuple[Node, Peer, Connection],
) -> None:
    node, peer, receiver = wired
    node.send_message(ADDRESS, "actor-1", "sink", "tick", None, None)
    assert len(peer.out) == 1
    assert records_written(receiver) == []


def test_the_reply_to_an_awaited_ask_is_written_by_the_answering_thread(
    wired: tuple[Node, Peer, Connection],
) -> None:
    node, peer, receiver = wired
    node.send_reply(ADDRESS, 7, True, "pong", awaited=True)
    assert not peer.out
    assert records_written(receiver) == [(REPLY, 7, True, "pong")]


def test_replies_to_a_pipeline_of_asks_are_batched_by_the_writer(
    wired: tuple[Node, Peer, Connection],
) -> None:
    node, peer, receiver = wired
    node.send_reply(ADDRESS, 8, True, "pong", awaited=False)
    assert len(peer.out) == 1
    assert records_written(receiver) == []
