"""Phase 1 of the Ray backend: a plain pykka actor hosted in a Ray actor (runtime.raybackend).

Asks and tells reach it from the service process and from another Ray actor, in
each sender's order; replies resolve ``runtime.remote.Future``s, also through a
future sent inside a message; failures come back as the local backend's errors.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from runtime import Future, get_all
from runtime.errors import ActorDeadError, SerializationError, SpawnError
from runtime.raybackend.ref import RayActorRef
from runtime.raybackend.starting import start_host

from ray_actors_for_tests import Counter, Refuses, Relay
from ray_for_tests import RunningRay


@pytest.fixture
def counter(ray_local: RunningRay) -> Iterator[RayActorRef]:
    ref = start_host(Counter, name="counter")
    yield ref
    ref.stop()


def test_a_hosted_actor_takes_tells_and_asks_from_the_service_process(
        counter: RayActorRef) -> None:
    for amount in (1, 2, 3):
        counter.tell(amount)

    assert counter.ask("total", timeout=30) == 6


def test_an_ask_without_blocking_is_a_runtime_future(counter: RayActorRef) -> None:
    future = counter.ask("total", block=False)

    assert isinstance(future, Future)
    assert future.get(timeout=30) == 0


def test_one_senders_tells_and_asks_reach_the_actor_in_the_order_sent(
        counter: RayActorRef) -> None:
    pending = []
    for number in range(600):
        counter.tell(number)
        if number % 10 == 0:  # asks travel in another concurrency group than tells
            pending.append(counter.ask("seen", block=False))

    seen = counter.ask("seen", timeout=60)

    assert seen == list(range(600))
    for number, future in zip(range(0, 600, 10), pending, strict=True):
        assert future.get(timeout=60) == list(range(number + 1))


def test_many_outstanding_asks_all_resolve(counter: RayActorRef) -> None:
    futures = [counter.ask(1, block=False) for _ in range(200)]  # more than the ask threads

    assert sorted(get_all(futures, timeout=120)) == list(range(1, 201))


def test_another_ray_actor_tells_and_asks_a_hosted_actor(counter: RayActorRef) -> None:
    relay = start_host(Relay, counter, name="relay")
    try:
        relay.ask(("tell", 5), timeout=30)
        assert relay.ask(("ask", "total"), timeout=30) == 5
    finally:
        relay.stop()


def test_a_future_sent_in_a_message_is_answered_in_the_service_process(
        counter: RayActorRef) -> None:
    reply: Future[Any] = Future()

    counter.tell(("add-and-answer", 10, reply))

    assert reply.get(timeout=30) == 10


def test_a_future_sent_in_a_message_is_answered_in_the_sending_ray_actor(
        counter: RayActorRef) -> None:
    relay = start_host(Relay, counter, name="relay")
    try:
        assert relay.ask(("ask-future", 7), timeout=30) == 7
    finally:
        relay.stop()


def test_the_actors_exception_is_raised_at_the_asker_with_its_type_and_remote_traceback(
        counter: RayActorRef) -> None:
    with pytest.raises(ValueError, match="boom") as raised:
        counter.ask({"fail": "boom"}, timeout=30)

    assert any("Remote traceback" in note for note in raised.value.__notes__)


def test_an_ask_to_an_actor_whose_process_was_killed_raises_actor_dead_error(
        counter: RayActorRef) -> None:
    pid = counter.ask("pid", timeout=30)
    assert pid != os.getpid()

    os.kill(pid, signal.SIGKILL)

    with pytest.raises(ActorDeadError, match="counter"):
        counter.ask("total", timeout=60)


def test_the_constructors_exception_is_raised_by_the_start(ray_local: RunningRay) -> None:
    with pytest.raises(RuntimeError, match="no store here"):
        start_host(Refuses, name="refuses")


def test_a_host_that_cannot_be_placed_fails_the_start_with_spawn_error(
        ray_local: RunningRay) -> None:
    with pytest.raises(SpawnError, match="not ready within"):
        start_host(Counter, name="nowhere", options={"resources": {"no-such-node": 1}},
                   spawn_timeout=2)


def test_a_message_that_cannot_be_pickled_fails_at_the_sender_and_names_it(
        counter: RayActorRef) -> None:
    with socket.socket() as sock, pytest.raises(SerializationError, match="socket"):
        counter.tell({"conn": sock})

    assert counter.ask("seen", timeout=30) == []  # nothing was sent
