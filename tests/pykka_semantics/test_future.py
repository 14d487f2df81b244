"""``Future``: pykka's set-once and get-hook rules, and futures that cross processes."""

from __future__ import annotations

import queue

import pykka
import pytest

from runtime import ActorSystem, Future

from .semantics_actors import Peer


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
