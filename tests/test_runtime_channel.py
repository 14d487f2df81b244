"""A connection is read by whichever thread waits on it (``runtime.channel``)."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from runtime import channel as channel_module
from runtime.channel import Channel, cut_frames
from runtime.config import SystemConfig
from runtime.system import ActorSystem
from runtime.testing import wait_until

from actors_for_tests import Counter


def _frame(payload: bytes) -> bytes:
    return struct.pack("!i", len(payload)) + payload


class _Wire:
    """A socketpair with a Channel on one end; records who delivered each frame."""

    def __init__(self) -> None:
        self.ours, self.theirs = socket.socketpair()
        self.delivered: list[tuple[bytes, int]] = []
        self.ended: list[str] = []
        self.channel = Channel(self.ours.fileno(),
                               deliver=lambda f: self.delivered.append((f, threading.get_ident())),
                               ended=self.ended.append)
        self.reader = threading.Thread(target=self.channel.serve, daemon=True)
        self.reader.start()

    def payloads(self) -> list[bytes]:
        return [f for f, _ in self.delivered]

    def close(self) -> None:
        self.channel.shutdown()
        self.reader.join(timeout=5)
        self.ours.close()
        self.theirs.close()


@pytest.fixture
def wire() -> Iterator[_Wire]:
    w = _Wire()
    yield w
    w.close()


def _hand_lead_to_waiters(wire: _Wire, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the reader thread (leading an idle connection) step down and stay down."""
    monkeypatch.setattr(channel_module, "STANDBY_GRACE", 60.0)
    assert not wire.channel.wait(lambda: True, 0)  # the reader leads: asks it to step down
    wire.theirs.sendall(_frame(b"nudge"))
    wait_until(lambda: b"nudge" in wire.payloads() and not wire.channel._lead.locked())


def test_cut_frames_keeps_a_partial_frame_for_the_next_read() -> None:
    buffer = bytearray(_frame(b"one") + _frame(b"two")[:5])
    assert list(cut_frames(buffer)) == [b"one"]
    buffer += _frame(b"two")[5:]
    assert list(cut_frames(buffer)) == [b"two"]
    assert buffer == b""


def test_the_reader_thread_delivers_frames_when_nobody_waits(wire: _Wire) -> None:
    wire.theirs.sendall(_frame(b"told"))
    wait_until(lambda: wire.payloads() == [b"told"])
    assert wire.delivered[0][1] == wire.reader.ident


def test_a_waiting_thread_reads_its_own_reply(
    wire: _Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    _hand_lead_to_waiters(wire, monkeypatch)
    threading.Timer(0.05, lambda: wire.theirs.sendall(_frame(b"reply"))).start()
    assert wire.channel.wait(lambda: b"reply" in wire.payloads(), 10.0)
    assert wire.delivered[-1] == (b"reply", threading.get_ident())


def test_frames_keep_their_order_whoever_reads(wire: _Wire) -> None:
    sent = [str(i).encode() for i in range(200)]

    def send() -> None:
        for payload in sent:
            wire.theirs.sendall(_frame(payload))

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    while len(wire.delivered) < len(sent):  # a waiting thread and the reader take turns
        wire.channel.wait(lambda: len(wire.delivered) >= len(sent), 0.05)
    sender.join(timeout=5)
    assert wire.payloads() == sent


def test_a_waiting_thread_sees_its_future_answered_elsewhere(
    wire: _Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    _hand_lead_to_waiters(wire, monkeypatch)
    answered = threading.Event()
    threading.Timer(0.05, answered.set).start()  # nothing comes on this wire
    started = time.monotonic()
    assert wire.channel.wait(answered.is_set, 10.0)
    assert time.monotonic() - started < 1.0


def test_shutdown_ends_a_blocked_waiting_thread_at_once(
    wire: _Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    _hand_lead_to_waiters(wire, monkeypatch)
    monkeypatch.setattr(channel_module, "LEADER_RECHECK", 60.0)
    waiter = threading.Thread(target=wire.channel.wait, args=(lambda: False, 60.0))
    waiter.start()
    wait_until(wire.channel._lead.locked)
    started = time.monotonic()
    wire.channel.shutdown()
    waiter.join(timeout=10)
    assert not waiter.is_alive()
    assert time.monotonic() - started < 2.0


def test_the_reader_steps_in_for_a_thread_that_waits_while_nobody_leads() -> None:
    with ActorSystem(config=SystemConfig(workers=1)) as system:
        ref = system.spawn(Counter, name="counter")
        asks = [ref.ask("count", block=False) for _ in range(3)]
        for fut in asks:
            fut._channel = None  # wait the ordinary way: the reader thread must read for us
        assert [fut.get(timeout=10) for fut in asks] == [0, 0, 0]
