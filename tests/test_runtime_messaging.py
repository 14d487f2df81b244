"""Actors in processes of their own, spoken to with pykka's vocabulary."""

from __future__ import annotations

import os
import pickle
import threading

import pykka
import pytest

from runtime import ActorRef, ActorSystem, Future, get_all

from actors_for_tests import Counter, GroupAnswerer, Relay


def test_spawned_actor_runs_in_a_process_of_its_own(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter")
    assert ref.ask("pid", timeout=10) != os.getpid()


def test_tell_is_handled_before_a_later_ask(system: ActorSystem) -> None:
    ref = system.spawn(Counter, 5, name="counter")
    ref.tell(3)
    assert ref.ask("count", timeout=10) == 8


def test_ask_without_blocking_returns_a_future(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter")
    future = ref.ask(2, block=False)
    assert isinstance(future, Future)
    assert isinstance(future, pykka.Future)
    assert future.get(timeout=10) == 2


def test_get_all_collects_futures_in_order(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter")
    assert get_all([ref.ask(1, block=False) for _ in range(5)], timeout=10) == [1, 2, 3, 4, 5]


def test_future_map_and_join(system: ActorSystem) -> None:
    ref = system.spawn(Counter, 10, name="counter")
    doubled = ref.ask("count", block=False).map(lambda n: n * 2)
    assert doubled.get(timeout=10) == 20
    joined = ref.ask("count", block=False).join(ref.ask("pid", block=False))
    count, pid = joined.get(timeout=10)
    assert count == 10 and pid != os.getpid()


def test_proxy_calls_methods_and_reads_attributes(system: ActorSystem) -> None:
    proxy = system.spawn(Counter, 1, name="counter").proxy()
    assert proxy.add(4).get(timeout=10) == 5
    assert proxy.count.get(timeout=10) == 5


def test_proxy_unknown_attribute_raises_attribute_error(system: ActorSystem) -> None:
    proxy = system.spawn(Counter, name="counter").proxy()
    with pytest.raises(AttributeError, match="no_such_thing"):
        proxy.no_such_thing


def test_actor_defined_in_a_closure_can_be_spawned(system: ActorSystem) -> None:
    greeting = "hello from a closure"

    class Local(pykka.ThreadingActor):
        def greet(self) -> str:
            return greeting

    assert system.spawn(Local).proxy().greet().get(timeout=10) == greeting


def test_ref_pickles_and_is_usable_from_another_actor(system: ActorSystem) -> None:
    counter = system.spawn(Counter, name="counter")
    relay = system.spawn(Relay, name="relay")
    assert pickle.loads(pickle.dumps(counter)) == counter
    assert relay.proxy().call(counter, 7).get(timeout=10) == 7
    assert counter.ask("count", timeout=10) == 7


def test_messages_between_actors_go_directly_not_through_the_service(
    system: ActorSystem,
) -> None:
    counter = system.spawn(Counter, name="counter")
    relay = system.spawn(Relay, name="relay")
    relay.proxy().call(counter, 1).get(timeout=10)
    # The counter's process holds a connection from the relay's own process.
    assert relay.address in counter.proxy().peers().get(timeout=10)


def test_future_builds_no_waiter_until_someone_blocks() -> None:
    future: Future[int] = Future()
    future.set(3)
    assert future.get(timeout=1) == 3
    assert future._waiter is None


def test_spawn_rejects_a_class_that_is_not_an_actor(system: ActorSystem) -> None:
    from runtime import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"pykka\.ThreadingActor"):
        system.spawn(dict)  # type: ignore[type-var]


def test_spawn_rejects_a_duplicate_name(system: ActorSystem) -> None:
    from runtime import ConfigurationError

    system.spawn(Counter, name="same")
    with pytest.raises(ConfigurationError, match="already exists"):
        system.spawn(Counter, name="same")


def test_ref_survives_a_round_trip_through_an_actor(system: ActorSystem) -> None:
    counter = system.spawn(Counter, name="counter")
    relay = system.spawn(Relay, name="relay")
    returned: ActorRef[Counter] = relay.proxy().hand_back(counter).get(timeout=10)
    assert returned == counter
    assert returned.ask(1, timeout=10) == 1


def test_threads_asking_one_actor_at_once_each_get_their_own_replies(
    system: ActorSystem,
) -> None:
    # Lone asks are written by their threads, pipelined ones by the writer thread: mixed
    # on one connection, every reply must still reach its own asker.
    proxy = system.spawn(Relay).proxy()
    wrong: list[object] = []

    def asker(thread: int) -> None:
        try:
            for i in range(100):
                if i % 10 == 0:
                    burst = [(thread, i, k) for k in range(5)]
                    answers = get_all([proxy.hand_back(value) for value in burst], timeout=10)
                    wrong.extend(a for a, b in zip(answers, burst, strict=True) if a != b)
                elif proxy.hand_back((thread, i)).get(timeout=10) != (thread, i):
                    wrong.append((thread, i))
        except Exception as exc:  # a lost or late reply: the test must see it, not the thread
            wrong.append(exc)

    threads = [threading.Thread(target=asker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert wrong == []


def test_replies_answered_as_a_group_reach_every_asker_in_one_frame(system: ActorSystem) -> None:
    from runtime.wire._framing import REPLIES

    ref = system.spawn(GroupAnswerer)
    futures: list[Future[int]] = [Future() for _ in range(5)]
    frames: list[int] = []
    node = system.host._node  # white-box: the service process's node
    dispatcher = node._dispatcher
    dispatch = dispatcher.dispatch

    def counting(peer: object, record: tuple[object, ...]) -> None:
        frames.append(record[0])  # type: ignore[arg-type]
        dispatch(peer, record)  # type: ignore[arg-type]

    dispatcher.dispatch = counting  # type: ignore[method-assign]
    try:
        ref.tell((futures, [10, 11, 12, 13, 14]))
        assert get_all(futures, timeout=10) == [10, 11, 12, 13, 14]
    finally:
        dispatcher.dispatch = dispatch  # type: ignore[method-assign]
    assert frames.count(REPLIES) == 1


def test_an_unpicklable_answer_in_a_group_fails_only_its_own_asker(system: ActorSystem) -> None:
    from runtime import SerializationError

    ref = system.spawn(GroupAnswerer)
    futures: list[Future[object]] = [Future() for _ in range(3)]
    ref.tell((futures, [1, "a lock", 3]))
    assert futures[0].get(timeout=10) == 1
    with pytest.raises(SerializationError):
        futures[1].get(timeout=10)
    assert futures[2].get(timeout=10) == 3
