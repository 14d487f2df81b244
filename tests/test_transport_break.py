"""A connection that breaks while a frame is being written never lets that frame into a file.

A writer takes the connection's descriptor number, then writes to it. If the
connection was closed in between (its peer died: the reader saw the end, or the
supervisor said so) and a step body opened a file meanwhile, the kernel gave the
file that same number, and the frame went into the file: the chaos campaign
found pickled ``Checkpoint`` messages in the middle of its ledger. A break must
wait for a write in progress before it closes the descriptor.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from multiprocess.connection import Connection

from runtime.wire import Node, Peer
from runtime.wire import _framing as transport


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    found = Node(system_id="sys-break-test", address=str(tmp_path / "n.sock"), secret=b"s" * 32,
                 role="test", mailbox_window=64, send_timeout=5.0)
    yield found
    found.close()


def test_a_break_during_a_write_never_sends_the_frame_into_a_file_opened_meanwhile(
        node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ours, theirs = socket.socketpair()
    conn = Connection(ours.detach())
    peer = Peer(node, "peer.sock")
    peer.conn = conn
    number = conn.fileno()
    holding, go_on = threading.Event(), threading.Event()
    real_write = transport.os.write

    def write_after_a_pause(fd: int, data: bytes) -> int:
        if fd == number:  # the connection's write, no other
            holding.set()  # the writer has its descriptor number...
            go_on.wait(10)  # ...and is descheduled before it writes
        return real_write(fd, data)

    monkeypatch.setattr(transport.os, "write", write_after_a_pause)
    writer = threading.Thread(target=node.enqueue, args=(peer, b"\x00\x00\x00\x05frame"),
                              kwargs={"awaited": True})
    writer.start()
    assert holding.wait(10)
    breaker = threading.Thread(target=node.connections.break_,
                               args=(peer, conn, "its process died"))
    breaker.start()
    breaker.join(0.2)  # it may close the descriptor now, or must wait for the write
    opened = []
    try:
        for i in range(64):  # the lowest free numbers: the connection's, if it was closed
            fd = os.open(tmp_path / f"ledger-{i}", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            opened.append(fd)
            if fd == number:
                break
        go_on.set()
        writer.join(10)
        breaker.join(10)
    finally:
        go_on.set()
        for fd in opened:
            os.close(fd)
        theirs.close()
    written = {p.name: p.stat().st_size for p in tmp_path.glob("ledger-*") if p.stat().st_size}
    assert written == {}, f"a frame was written into {written}"
    assert peer.conn is None
