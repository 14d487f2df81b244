"""``Future``: pykka's set-once and get-hook rules, and futures that cross processes."""

from __future__ import annotations

import os
import queue
import signal
from pathlib import Path

import pykka
import pytest

from runtime import ActorDeadError, ActorSystem, Future

from .semantics_actors import Counter, Peer, SelfScheduling


def test_a_future_is_a_pykka_future() -> None:
    assert isinstance(Future(), pykka.Future)


def test_setting_a_future_twice_raises_queue_full() -> None:
    future: Future[int] = Future()
    future.set(1)
    with pytest.raises(queue.Full):
        future.set(2)
    assert future.get(timeout=0) == 1


def test_failing_a_future_that_has_a_value_raises_queue_full() -> None:
    future: Future[int] = Future()
    future.set(1)
    with pytest.raises(queue.Full):
        future.set_exception(ValueError("too late"))
    assert future.get(timeout=0) == 1


def test_setting_a_failed_future_raises_queue_full() -> None:
    future: Future[int] = Future()
    future.set_exception(ValueError("first"))
    with pytest.raises(queue.Full):
        future.set(1)
    with pytest.raises(ValueError, match="first"):
        future.get(timeout=0)


def test_setting_a_future_with_a_get_hook_raises_queue_full() -> None:
    future: Future[int] = Future()
    future.set_get_hook(lambda timeout: 5)
    with pytest.raises(queue.Full):
        future.set(1)
    with pytest.raises(queue.Full):
        future.set_exception(ValueError("no"))
    assert future.get(timeout=0) == 5


def test_a_get_hook_on_a_future_that_has_a_value_raises_queue_full() -> None:
    future: Future[int] = Future()
    future.set(1)
    with pytest.raises(queue.Full):
        future.set_get_hook(lambda timeout: 5)
    assert future.get(timeout=0) == 1


def test_a_get_hook_runs_once_even_when_it_returns_none() -> None:
    calls: list[float | None] = []
    future: Future[None] = Future()
    future.set_get_hook(calls.append)  # returns None
    assert future.get(timeout=1) is None
    assert future.get(timeout=2) is None
    assert calls == [1]


def test_get_of_an_unanswered_future_raises_pykka_timeout() -> None:
    with pytest.raises(pykka.Timeout):
        Future().get(timeout=0.01)


def test_a_future_sent_in_a_message_is_answered_once_by_its_receiver(
    system: ActorSystem,
) -> None:
    future: Future[int] = Future()
    peer = system.spawn(Peer, name="peer")
    assert peer.proxy().answer_twice(future).get(timeout=10) == "second refused"
    assert future.get(timeout=10) == 1


def test_a_future_an_actor_returns_from_its_proxy_to_itself_reaches_the_caller(
    system: ActorSystem,
) -> None:
    proxy = system.spawn(SelfScheduling, name="scheduling").proxy()
    inner = proxy.start_adding(4).get(timeout=10)
    assert isinstance(inner, pykka.Future)
    assert inner.get(timeout=10) == 4


def test_a_returned_future_carries_the_exception_of_the_deferred_work(
    system: ActorSystem,
) -> None:
    proxy = system.spawn(SelfScheduling, name="scheduling").proxy()
    inner = proxy.start_failing().get(timeout=10)
    with pytest.raises(ValueError, match="the deferred work failed"):
        inner.get(timeout=10)


def test_a_returned_future_of_a_mapped_future_gets_the_mapped_value(
    system: ActorSystem,
) -> None:
    proxy = system.spawn(SelfScheduling, name="scheduling").proxy()
    assert proxy.mapped(2).get(timeout=10).get(timeout=10) == 20


def test_a_future_of_an_ask_to_a_third_actor_reaches_the_caller(system: ActorSystem) -> None:
    counter = system.spawn(Counter, name="counter")
    peer = system.spawn(Peer, name="peer")
    inner = peer.proxy().add_through(counter, 6).get(timeout=10)
    assert inner.get(timeout=10) == 6


def test_a_returned_future_that_already_has_its_value_reaches_the_caller(
    system: ActorSystem,
) -> None:
    peer = system.spawn(Peer, name="peer")
    assert peer.proxy().answered_future("ready").get(timeout=10).get(timeout=10) == "ready"


def test_a_returned_future_that_is_answered_later_waits_for_its_value(
    system: ActorSystem, tmp_path: Path,
) -> None:
    release = tmp_path / "release"
    proxy = system.spawn(SelfScheduling, name="scheduling").proxy()
    inner = proxy.start_waiting(str(release)).get(timeout=10)
    with pytest.raises(pykka.Timeout):
        inner.get(timeout=0.05)
    release.touch()
    assert inner.get(timeout=10) == "done"


def test_a_returned_future_fails_when_the_actor_process_dies_first(
    system: ActorSystem, tmp_path: Path,
) -> None:
    proxy = system.spawn(SelfScheduling, name="scheduling").proxy()
    pid = proxy.pid().get(timeout=10)
    inner = proxy.start_waiting(str(tmp_path / "never")).get(timeout=10)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ActorDeadError):
        inner.get(timeout=10)
