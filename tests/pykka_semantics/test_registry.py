"""``pykka.ActorRegistry``: the system's spawned actors, seen from every process."""

from __future__ import annotations

import os
import pickle
import signal
from pathlib import Path
from typing import Any

import pykka

from runtime import ActorSystem, RestartPolicy
from runtime.testing import wait_until

from .semantics_actors import Counter, Double, OtherCounter, Peer, SeesRegistryAtStart


def _names(refs: list[Any]) -> list[str]:
    return sorted(ref.name for ref in refs)


def test_a_spawned_actor_is_in_the_service_registry(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter")
    assert ref in pykka.ActorRegistry.get_all()
    assert pykka.ActorRegistry.get_by_class_name("Counter") == [ref]
    assert pykka.ActorRegistry.get_by_urn(ref.actor_urn) == ref


def test_get_by_class_finds_subclasses_too(system: ActorSystem) -> None:
    plain = system.spawn(Counter, name="plain")
    sub = system.spawn(OtherCounter, name="sub")
    assert _names(pykka.ActorRegistry.get_by_class(Counter)) == _names([plain, sub])
    assert pykka.ActorRegistry.get_by_class(OtherCounter) == [sub]


def test_a_class_defined_in_a_function_is_found_by_class(system: ActorSystem) -> None:
    class Local(pykka.ThreadingActor):
        pass

    ref = system.spawn(Local, name="local")
    assert pykka.ActorRegistry.get_by_class(Local) == [ref]
    assert ref.actor_class is Local


def test_registered_refs_work_like_the_spawned_ones(system: ActorSystem) -> None:
    system.spawn(Counter, 5, name="counter")
    (found,) = pykka.ActorRegistry.get_by_class_name("Counter")
    assert found.ask("count", timeout=10) == 5
    assert found.proxy().add(1).get(timeout=10) == 6


def test_an_actor_process_sees_every_spawned_actor(system: ActorSystem) -> None:
    counter = system.spawn(Counter, name="counter")
    peer = system.spawn(Peer, name="peer")
    proxy = peer.proxy()
    assert proxy.class_names_registered().get(timeout=10) == ["Counter", "Peer"]
    assert proxy.find_by_urn(counter.actor_urn).get(timeout=10) == counter
    assert proxy.count_of_class(Counter).get(timeout=10) == 1


def test_an_actor_process_sees_actors_spawned_after_it(system: ActorSystem) -> None:
    peer = system.spawn(Peer, name="peer")
    system.spawn(Counter, 3, name="counter")
    assert peer.proxy().ask_by_class_name("Counter", "count").get(timeout=10) == [3]


def test_an_actor_sees_the_registry_in_its_constructor_and_on_start(
    system: ActorSystem,
) -> None:
    system.spawn(Counter, name="counter")
    proxy = system.spawn(SeesRegistryAtStart, name="sees").proxy()
    assert proxy.seen_in_init.get(timeout=10) == ["Counter", "SeesRegistryAtStart"]
    assert proxy.seen_in_on_start.get(timeout=10) == ["Counter", "SeesRegistryAtStart"]


def test_a_stopped_actor_leaves_the_registry_of_every_process(system: ActorSystem) -> None:
    counter = system.spawn(Counter, name="counter")
    peer = system.spawn(Peer, name="peer")
    counter.stop()
    assert pykka.ActorRegistry.get_by_urn(counter.actor_urn) is None
    wait_until(lambda: peer.proxy().class_names_registered().get(timeout=10) == ["Peer"],
               timeout=10)


def test_a_killed_actor_leaves_the_registry_of_every_process(system: ActorSystem) -> None:
    counter = system.spawn(Counter, name="counter")
    peer = system.spawn(Peer, name="peer")
    os.kill(counter.proxy().pid().get(timeout=10), signal.SIGKILL)
    wait_until(lambda: pykka.ActorRegistry.get_by_urn(counter.actor_urn) is None, timeout=10)
    wait_until(lambda: peer.proxy().class_names_registered().get(timeout=10) == ["Peer"],
               timeout=10)


def test_a_restarted_actor_is_registered_again_under_the_same_urn(
    system: ActorSystem,
) -> None:
    counter = system.spawn(Counter, name="counter",
                           restart=RestartPolicy(max_restarts=2, backoff=0.05))
    peer = system.spawn(Peer, name="peer")
    first_pid = counter.proxy().pid().get(timeout=10)
    os.kill(first_pid, signal.SIGKILL)
    wait_until(lambda: counter.is_alive() and counter.proxy().pid().get(timeout=10) != first_pid,
               timeout=20)
    # Its registration comes on its own connection to the service, an answer to an ask
    # may come first on the service's connection to it: registered again, soon.
    wait_until(lambda: pykka.ActorRegistry.get_by_urn(counter.actor_urn) == counter, timeout=10)
    wait_until(lambda: peer.proxy().find_by_urn(counter.actor_urn).get(timeout=10) == counter,
               timeout=10)


def test_broadcast_tells_every_actor_of_a_class(system: ActorSystem) -> None:
    first = system.spawn(Counter, name="first")
    second = system.spawn(Counter, name="second")
    other = system.spawn(Peer, name="peer")
    pykka.ActorRegistry.broadcast(10, target_class=Counter)
    assert first.ask("count", timeout=10) == 10
    assert second.ask("count", timeout=10) == 10
    assert other.is_alive()


def test_broadcast_from_an_actor_process_reaches_actors_by_class_name(
    system: ActorSystem,
) -> None:
    counter = system.spawn(Counter, name="counter")
    peer = system.spawn(Peer, name="peer")
    peer.proxy().broadcast(4, "Counter").get(timeout=10)
    # Told by the peer, asked by us: two senders, so the ask may come first.
    wait_until(lambda: counter.ask("count", timeout=10) == 4, timeout=10)


def test_stop_all_in_the_service_stops_every_spawned_actor(system: ActorSystem) -> None:
    refs = [system.spawn(Counter, name=f"counter-{i}") for i in range(3)]
    assert pykka.ActorRegistry.stop_all(timeout=10) == [True, True, True]
    assert not any(ref.is_alive() for ref in refs)
    assert pykka.ActorRegistry.get_all() == []


def test_the_system_own_actors_are_not_in_the_registry(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter")
    system.map(Double, [1], execution_id="registry-1").result(timeout=60)  # starts them
    assert pykka.ActorRegistry.get_all() == [ref]


def test_shutdown_takes_the_system_actors_out_of_the_registry(tmp_path: Path) -> None:
    with ActorSystem(store=f"sqlite:///{tmp_path / 'state.db'}") as system:
        system.spawn(Counter, name="counter")
        assert len(pykka.ActorRegistry.get_all()) == 1
    assert pykka.ActorRegistry.get_all() == []


def test_an_actor_that_left_the_registry_leaves_no_class_behind() -> None:
    from runtime.processes import Entry, Mirror
    from runtime.remote import _actor_ref as refs

    gone = refs.ActorRef(system_id="sys-test", address="/nowhere", actor_id="a1", name="gone",
                         class_name="Counter")
    mirror = Mirror()
    mirror.add(Entry(gone, pickle.dumps(Counter)))
    assert gone.actor_class is Counter
    mirror.remove("a1")
    assert ("sys-test", "a1") not in refs._classes and ("sys-test", "a1") not in refs._class_sources
    assert gone.actor_class.__name__ == "Counter"  # a stand-in now
