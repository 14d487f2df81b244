"""A connection is read by whichever thread waits on it (``runtime.wire``)."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from runtime.config import SystemConfig
from runtime.errors import ConfigurationError
from runtime.system import ActorSystem
from runtime.testing import wait_until
from runtime.wire import Channel, Pump, SpinWait, cut_records
from runtime.wire import _channel as channel_module
from runtime.wire import _spin as spin_module

from actors_for_tests import Counter


def _frame(payload: bytes) -> bytes:
    return struct.pack("<I", len(payload)) + payload


class _Wire:
    """A socketpair with a Channel on one end; records who delivered each frame."""

    def __init__(self, spin: SpinWait | None = None) -> None:
        self.ours, self.theirs = socket.socketpair()
        self.delivered: list[tuple[bytes, int]] = []
        self.ended: list[str] = []
        self.channel = Channel(self.ours.fileno(),
                               deliver=lambda f: self.delivered.append((f, threading.get_ident())),
                               ended=self.ended.append, spin=spin)
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


def test_cut_records_keeps_a_partial_record_for_the_next_read() -> None:
    buffer = bytearray(_frame(b"one") + _frame(b"two")[:5])
    assert list(cut_records(buffer)) == [b"one"]
    buffer += _frame(b"two")[5:]
    assert list(cut_records(buffer)) == [b"two"]
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
            fut._wait = None  # wait the ordinary way: the reader thread must read for us
        assert [fut.get(timeout=10) for fut in asks] == [0, 0, 0]


# -- the pump: an idle actor's thread reads the connections itself ----------------------


class _Owner:
    """Stands in for an inbox: ``ready`` once ``items`` is non-empty."""

    def __init__(self) -> None:
        self.items: list[object] = []

    def ready(self) -> bool:
        return bool(self.items)


def _pump_for(*wires: _Wire, skip: bool = False) -> Pump:
    return Pump(lambda: [w.channel for w in wires], lambda _: skip)


class _Pumping:
    """A thread lent to a pump over ``wire`` by an idle actor whose inbox is ``owner``."""

    def __init__(self, wire: _Wire, timeout: float | None = None) -> None:
        self.pump, self.owner = _pump_for(wire), _Owner()
        self.left: list[float | None] = []  # what pump.wait returned
        self.thread = threading.Thread(target=self._run, args=(timeout,), daemon=True)
        self.thread.start()
        wait_until(wire.channel._lead.locked)

    def _run(self, timeout: float | None) -> None:
        self.left.append(self.pump.wait(self.owner, self.owner.ready, timeout))

    def put(self, item: object) -> None:
        """What an inbox's put does: append, then wake the pump if it serves this inbox."""
        self.owner.items.append(item)
        self.pump.put_into(self.owner)

    def joined(self) -> bool:
        self.thread.join(timeout=10)
        return not self.thread.is_alive()


@pytest.fixture
def pumping(wire: _Wire, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Pumping]:
    _hand_lead_to_waiters(wire, monkeypatch)
    running = _Pumping(wire)
    yield running
    running.pump.close()
    assert running.joined()


def test_a_pumping_thread_decodes_the_frames_itself(wire: _Wire, pumping: _Pumping) -> None:
    wire.theirs.sendall(_frame(b"told"))
    wait_until(lambda: b"told" in wire.payloads())
    assert wire.delivered[-1][1] == pumping.thread.ident


def test_a_put_while_pumping_wakes_the_pumping_thread(wire: _Wire, pumping: _Pumping) -> None:
    wait_until(lambda: pumping.pump.serving is pumping.owner)
    pumping.put("local")
    assert pumping.joined()
    assert pumping.left == [None]
    assert not wire.channel._lead.locked()  # every lead is given back before the actor runs


def test_the_pump_returns_the_time_left_and_its_leads_when_nothing_comes(
    wire: _Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    _hand_lead_to_waiters(wire, monkeypatch)
    pump, owner = _pump_for(wire), _Owner()
    assert pump.wait(owner, owner.ready, 0.05) == 0.0
    assert not wire.channel._lead.locked()
    pump.close()


def test_a_thread_that_cannot_pump_is_told_to_block_the_ordinary_way(wire: _Wire) -> None:
    pump, owner = _pump_for(wire, skip=True), _Owner()  # a thread of ours awaits a reply on it
    assert pump.wait(owner, owner.ready, 7.0) == 7.0
    assert not wire.channel._step_down


def test_the_pump_asks_a_reading_standby_to_yield_the_connection(
    wire: _Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(channel_module, "STANDBY_GRACE", 60.0)  # once down, it stays down
    wait_until(wire.channel._lead.locked)  # the reader thread leads a new connection
    pump, owner = _pump_for(wire), _Owner()
    assert pump.wait(owner, owner.ready, 5.0) == 5.0  # nothing free to read: block as usual
    wire.theirs.sendall(_frame(b"next"))  # the standby reads it, then steps down
    wait_until(lambda: b"next" in wire.payloads() and not wire.channel._lead.locked())
    pump.close()
    idle_again = _Pumping(wire)  # the actor idles again: now it pumps
    wire.theirs.sendall(_frame(b"after"))
    wait_until(lambda: b"after" in wire.payloads())
    assert wire.delivered[-1][1] == idle_again.thread.ident
    idle_again.pump.close()
    assert idle_again.joined()


def test_the_pump_leaves_a_connection_that_a_waiting_thread_wants(
    wire: _Wire, pumping: _Pumping
) -> None:
    assert not wire.channel.wait(lambda: False, 0.01)  # led by the pump: wait the ordinary way
    wire.theirs.sendall(_frame(b"reply"))
    wait_until(lambda: b"reply" in wire.payloads() and not wire.channel._lead.locked())
    assert wire.delivered[-1][1] == pumping.thread.ident  # the pump read it, then left
    assert wire.channel.wait(lambda: True, 1.0)  # the waiting thread can lead it now


def test_closing_the_pump_ends_a_pumping_thread(wire: _Wire, pumping: _Pumping) -> None:
    pumping.pump.close()
    assert pumping.joined()
    assert pumping.left == [None]
    assert not wire.channel._lead.locked()
    assert pumping.pump.wait(pumping.owner, pumping.owner.ready, 3.0) == 3.0  # never again


def test_a_connection_that_ends_while_pumped_is_given_back(
    wire: _Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    _hand_lead_to_waiters(wire, monkeypatch)
    running = _Pumping(wire, timeout=30.0)
    wire.theirs.shutdown(socket.SHUT_WR)  # EOF
    assert running.joined()
    assert wire.ended
    wire.reader.join(timeout=10)  # the reader thread takes the lead once more, to close
    assert not wire.channel._lead.locked()
    assert running.left and running.left[0] is not None and running.left[0] > 0  # block the rest
    running.pump.close()


# -- polling before sleeping: SpinWait -----------------------------------------------------


def test_a_new_site_polls_before_it_sleeps() -> None:
    assert SpinWait(50e-6).spins()


def test_a_zero_budget_never_polls() -> None:
    assert not SpinWait(0.0).spins()


def test_a_negative_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="spin budget"):
        SpinWait(-1e-6)
    with pytest.raises(ConfigurationError, match="spin_wait"):
        SystemConfig(spin_wait=-1e-6)


def test_a_site_whose_waits_outlast_the_budget_stops_polling() -> None:
    spin = SpinWait(50e-6)
    for _ in range(5):
        spin.waited(0.01)  # a disk commit's reply, an actor nobody writes to
    assert not spin.spins()


def test_a_site_polls_again_once_its_messages_come_quickly_again() -> None:
    spin = SpinWait(50e-6)
    for _ in range(10):
        spin.waited(0.01)
    for _ in range(2):
        spin.waited(80e-6)  # blocked, yet within twice the budget: polling would have paid
    assert spin.spins()


@pytest.fixture
def polling_wire(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Wire]:
    # Polls for up to 10 s, whatever else runs on the machine: every wait here ends polling.
    monkeypatch.setattr(channel_module, "yield_found_cpu_idle", lambda: True)
    monkeypatch.setattr(spin_module, "yield_found_cpu_idle", lambda: True)
    w = _Wire(spin=SpinWait(10.0))
    _hand_lead_to_waiters(w, monkeypatch)
    yield w
    w.close()


def test_a_polling_thread_reads_a_reply_that_comes_while_it_polls(polling_wire: _Wire) -> None:
    wire = polling_wire
    threading.Timer(0.05, lambda: wire.theirs.sendall(_frame(b"reply"))).start()
    assert wire.channel.wait(lambda: b"reply" in wire.payloads(), 10.0)
    assert wire.delivered[-1] == (b"reply", threading.get_ident())
    assert wire.channel._read_timeout is None  # never fell back to a blocking, timed read


def test_a_connection_that_ends_while_polled_is_ended(polling_wire: _Wire) -> None:
    wire = polling_wire
    threading.Timer(0.05, lambda: wire.theirs.shutdown(socket.SHUT_WR)).start()
    started = time.monotonic()
    assert wire.channel.wait(lambda: False, 10.0)
    assert time.monotonic() - started < 5.0
    assert wire.ended == ["connection closed: EOF"]


def test_a_reply_slower_than_the_poll_is_read_blocking(monkeypatch: pytest.MonkeyPatch) -> None:
    wire = _Wire(spin=SpinWait(0.001))
    try:
        _hand_lead_to_waiters(wire, monkeypatch)
        threading.Timer(0.1, lambda: wire.theirs.sendall(_frame(b"late"))).start()
        assert wire.channel.wait(lambda: b"late" in wire.payloads(), 10.0)
        assert wire.delivered[-1] == (b"late", threading.get_ident())
        assert wire.channel._read_timeout == channel_module.LEADER_RECHECK  # the blocking read
    finally:
        wire.close()


class _RecordingPoll:
    """``select.poll`` that records each call's timeout (None: blocks until something comes)."""

    timeouts: list[float | None] = []

    def __init__(self) -> None:
        self._poll = _real_poll()

    def register(self, fd: int, events: int) -> None:
        self._poll.register(fd, events)

    def unregister(self, fd: int) -> None:
        self._poll.unregister(fd)

    def poll(self, timeout: float | None = None) -> list[tuple[int, int]]:
        self.timeouts.append(timeout)
        return self._poll.poll(timeout)


_real_poll = spin_module.select.poll
_real_yield_check = spin_module.yield_found_cpu_idle


def test_a_polling_pump_reads_a_frame_that_comes_within_its_budget_without_blocking(
    polling_wire: _Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    wire = polling_wire
    monkeypatch.setattr(spin_module.select, "poll", _RecordingPoll)
    _RecordingPoll.timeouts = []
    pump, owner = Pump(lambda: [wire.channel], lambda _: False, SpinWait(10.0)), _Owner()
    threading.Timer(0.05, lambda: wire.theirs.sendall(_frame(b"told"))).start()
    left = pump.wait(owner, lambda: b"told" in wire.payloads(), 10.0)
    assert left is not None and left > 0
    assert wire.delivered[-1] == (b"told", threading.get_ident())
    assert _RecordingPoll.timeouts and set(_RecordingPoll.timeouts) == {0}
    pump.close()


def test_a_pump_scores_its_wait_until_a_message_for_its_actor_not_each_frame(
    wire: _Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    _hand_lead_to_waiters(wire, monkeypatch)
    spin = SpinWait(1e-3)
    pump, owner = Pump(lambda: [wire.channel], lambda _: False, spin), _Owner()
    for _ in range(5):  # frames for others come at once; the actor's own message 50 ms later
        owner.items.clear()
        wire.theirs.sendall(_frame(b"for another actor"))
        threading.Timer(0.05, lambda: (owner.items.append("ours"), pump.put_into(owner))).start()
        pump.wait(owner, owner.ready, 10.0)
    assert not spin.spins()  # five long waits: it sleeps at once now
    pump.close()


def _busy(seconds: float) -> threading.Thread:
    """A thread that computes (holding the GIL but for the switch interval) for ``seconds``."""
    def spin() -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass
    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    return thread


def test_a_yield_finds_the_cpu_idle_when_nothing_else_runs() -> None:
    # On a shared machine a yield may run a neighbour now and then: one idle finding suffices.
    assert any(spin_module.yield_found_cpu_idle() for _ in range(1000))


def test_a_yield_finds_the_cpu_taken_while_another_process_runs_on_it() -> None:
    cpu = min(os.sched_getaffinity(0))
    mine = os.sched_getaffinity(0)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
    try:
        os.sched_setaffinity(hog.pid, {cpu})
        os.sched_setaffinity(0, {cpu})  # this thread only: the hog waits on the same CPU
        assert not all(spin_module.yield_found_cpu_idle() for _ in range(1000))
    finally:
        os.sched_setaffinity(0, mine)
        hog.kill()
        hog.wait(timeout=10)


def test_a_polling_pump_sleeps_while_another_thread_needs_the_cpu(
    polling_wire: _Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    wire = polling_wire
    monkeypatch.setattr(channel_module, "yield_found_cpu_idle", _real_yield_check)
    monkeypatch.setattr(spin_module, "yield_found_cpu_idle", _real_yield_check)
    monkeypatch.setattr(spin_module.select, "poll", _RecordingPoll)
    _RecordingPoll.timeouts = []
    pump, owner = Pump(lambda: [wire.channel], lambda _: False, SpinWait(10.0)), _Owner()
    busy = _busy(0.5)  # asks for the GIL: the pump's yields come back late
    threading.Timer(0.2, lambda: wire.theirs.sendall(_frame(b"told"))).start()
    pump.wait(owner, lambda: b"told" in wire.payloads(), 10.0)
    busy.join()
    assert any(t != 0 for t in _RecordingPoll.timeouts)  # it gave up polling and blocked
    pump.close()
