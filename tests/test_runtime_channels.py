"""Channels are local, private, authenticated and bounded."""

from __future__ import annotations

import os
import stat
import time

import psutil
import pytest
from multiprocess.connection import AuthenticationError, Client

from runtime import ActorSystem, MailboxFullError, SystemConfig

from actors_for_tests import Counter, Slow


def test_socket_directory_and_sockets_are_private_to_the_owner(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter")
    ref.ask("count", timeout=10)
    assert stat.S_IMODE(os.stat(system.host.scratch_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(ref.address).st_mode) == 0o600


def test_a_client_without_the_system_secret_is_rejected(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter")
    with pytest.raises(AuthenticationError):
        Client(ref.address, family="AF_UNIX", authkey=b"not the secret")
    assert ref.ask(1, timeout=10) == 1


def test_no_process_of_the_system_listens_on_tcp(system: ActorSystem) -> None:
    pid = system.spawn(Counter, name="counter").ask("pid", timeout=10)
    for proc in (psutil.Process(pid), *psutil.Process(pid).children(recursive=True)):
        assert proc.net_connections(kind="inet") == []


def test_a_sender_that_outruns_its_receiver_is_slowed_to_its_pace() -> None:
    window, delay, count = 16, 0.005, 200
    config = SystemConfig(workers=1, mailbox_window=window, send_timeout=10.0)
    with ActorSystem(config=config) as system:
        ref = system.spawn(Slow, delay, name="slow")
        started = time.monotonic()
        for _ in range(count):
            ref.tell(b"x")
        elapsed = time.monotonic() - started
        # Without back-pressure 200 tells take milliseconds; with it the sender
        # waits for the actor to take all but one window of them.
        assert elapsed >= (count - window) * delay * 0.9


def test_flooding_a_stuck_actor_raises_mailbox_full_and_memory_stays_bounded() -> None:
    window, payload = 8, b"x" * 1024 * 1024
    config = SystemConfig(workers=1, mailbox_window=window, send_timeout=0.3)
    with ActorSystem(config=config) as system:
        ref = system.spawn(Slow, 0.2, name="slow")  # credit every 2 messages = 0.4 s
        receiver = psutil.Process(_pid_of(system, ref))
        rss_before = receiver.memory_info().rss
        sent = 0
        with pytest.raises(MailboxFullError, match="'slow'"):
            for _ in range(100_000):  # 100 GB if nothing pushed back
                ref.tell(payload)
                sent += 1
        assert sent <= 2 * window
        grown = receiver.memory_info().rss - rss_before
        assert grown < 64 * 1024 * 1024, f"receiver grew by {grown / 1e6:.1f} MB"


def _pid_of(system: ActorSystem, ref: object) -> int:
    pid = system.host.pid_of(ref.actor_id)  # type: ignore[attr-defined]
    assert pid is not None
    return pid
