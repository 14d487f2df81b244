"""``ActorRef``: pykka's attributes and answers, for an actor in another process."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pykka
import pytest

from runtime import ActorDeadError, ActorSystem
from runtime.testing import wait_until

from .semantics_actors import Counter, Peer, SelfScheduling, StopsSlowly

URN = re.compile(r"^urn:uuid:[0-9a-f-]{36}$")


def test_ref_has_the_urn_the_actor_has_itself(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter")
    assert URN.match(ref.actor_urn)
    proxy = ref.proxy()
    assert proxy.actor_urn.get(timeout=10) == ref.actor_urn
    assert proxy.urn_seen_in_init.get(timeout=10) == ref.actor_urn  # already in __init__


def test_ref_urn_is_the_same_in_every_process(system: ActorSystem) -> None:
    counter = system.spawn(Counter, name="counter")
    peer = system.spawn(Peer, name="peer")
    assert peer.proxy().urn_of(counter).get(timeout=10) == counter.actor_urn


def test_refs_of_two_actors_have_different_urns(system: ActorSystem) -> None:
    first = system.spawn(Counter, name="first")
    second = system.spawn(Counter, name="second")
    assert first.actor_urn != second.actor_urn


def test_ref_reads_as_pykka_writes_it_class_then_urn(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter")
    assert str(ref) == f"Counter ({ref.actor_urn})"
    assert repr(ref).startswith(f"<ActorRef for Counter ({ref.actor_urn})")


def test_ref_is_a_pykka_actor_ref(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter")
    assert isinstance(ref, pykka.ActorRef)


def test_ref_received_in_another_process_is_a_pykka_actor_ref(system: ActorSystem) -> None:
    counter = system.spawn(Counter, name="counter")
    peer = system.spawn(Peer, name="peer")
    assert peer.proxy().is_pykka_ref(counter).get(timeout=10) is True


def test_actor_stopped_is_clear_while_the_actor_runs(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter")
    assert ref.actor_stopped.is_set() is False
    assert ref.actor_stopped.wait(timeout=0.05) is False


def test_actor_stopped_is_set_once_the_actor_stopped(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter")
    ref.stop()
    assert ref.actor_stopped.is_set() is True
    assert ref.actor_stopped.wait(timeout=10) is True


def test_actor_stopped_wait_returns_when_the_actor_stops_later(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter")
    stopped = ref.actor_stopped
    ref.stop(block=False)
    assert stopped.wait(timeout=10) is True


def test_actor_stopped_wait_returns_when_the_actor_process_is_killed(
    system: ActorSystem,
) -> None:
    ref = system.spawn(Counter, name="counter")
    os.kill(ref.proxy().pid().get(timeout=10), signal.SIGKILL)
    assert ref.actor_stopped.wait(timeout=10) is True
    assert ref.actor_stopped.is_set() is True


def test_actor_stopped_cannot_be_set_from_outside(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter")
    with pytest.raises(TypeError, match=r"ref\.stop\(\)"):
        ref.actor_stopped.set()
    assert ref.is_alive()


def test_tell_to_a_stopped_actor_raises_naming_the_ref_as_pykka_does(
    system: ActorSystem,
) -> None:
    ref = system.spawn(Counter, name="counter")
    ref.stop()
    with pytest.raises(pykka.ActorDeadError, match=rf"^{re.escape(str(ref))} not found"):
        ref.tell(1)


def test_ask_without_blocking_a_stopped_actor_gives_a_future_of_that_error(
    system: ActorSystem,
) -> None:
    ref = system.spawn(Counter, name="counter")
    ref.stop()
    future = ref.ask(1, block=False)
    with pytest.raises(ActorDeadError, match=rf"^{re.escape(str(ref))} not found"):
        future.get(timeout=10)


def test_stop_without_blocking_gives_false_for_an_actor_already_stopped(
    system: ActorSystem,
) -> None:
    ref = system.spawn(Counter, name="counter")
    assert ref.stop() is True
    assert ref.stop(block=False).get(timeout=10) is False


def test_stop_without_blocking_gives_false_while_the_stopped_actor_process_still_runs(
    system: ActorSystem, tmp_path: Path,
) -> None:
    release = tmp_path / "release"
    ref = system.spawn(StopsSlowly, str(release), name="slow")
    first = ref.stop(block=False)  # on_stop now waits: stopped, its process alive
    wait_until(lambda: not ref.is_alive(), timeout=10)
    assert ref.stop(block=False).get(timeout=10) is False
    release.touch()
    assert first.get(timeout=10) is True


def test_stop_from_another_process_without_blocking_gives_false_once_stopped(
    system: ActorSystem,
) -> None:
    counter = system.spawn(Counter, name="counter")
    peer = system.spawn(Peer, name="peer")
    assert peer.proxy().add_through(counter, 1).get(timeout=10).get(timeout=10) == 1
    counter.stop()
    assert peer.proxy().stop_without_blocking(counter).get(timeout=10) is False


def test_an_actor_can_hand_out_its_own_actor_ref(system: ActorSystem) -> None:
    ref = system.spawn(SelfScheduling, name="scheduling")
    handed: pykka.ActorRef[SelfScheduling] = ref.proxy().own_ref().get(timeout=10)
    assert handed == ref
    assert handed.proxy().add(2).get(timeout=10) == 2
