"""The system's own ``ActorRef`` and proxies on the Ray transport (``runtime.raybackend``).

The same vocabulary as on sockets, through the transport seam: tells, asks,
proxies, futures inside messages, stop, and the actor's exceptions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from runtime import ActorRef, Future
from runtime.errors import ActorDeadError
from runtime.raybackend.starting import spawn_on
from runtime.raybackend.transport import RayTransport
from runtime.transport import Transport

from ray_actors_for_tests import Counter
from ray_for_tests import RunningRay


@pytest.fixture
def transport(ray_local: RunningRay) -> Iterator[RayTransport]:
    with RayTransport() as found:
        yield found


@pytest.fixture
def counter(transport: RayTransport) -> Iterator[ActorRef[Any]]:
    to = spawn_on(transport, Counter, name="counter")
    ref: ActorRef[Any] = ActorRef(system_id=transport.system_id, address=to.process,
                                  actor_id=to.actor_id, name=to.name, class_name="Counter")
    yield ref
    if ref.is_alive():
        ref.stop(timeout=30)


def test_the_ray_transport_is_a_transport(transport: RayTransport) -> None:
    seam: Transport = transport  # mypy holds it to the protocol; this holds the names
    for call in ("tell", "tell_many", "ask", "control", "stopped"):
        assert callable(getattr(seam, call))


def test_an_actor_ref_tells_and_asks_an_actor_on_ray(counter: ActorRef[Any]) -> None:
    counter.tell(1)
    counter.tell(2)
    assert counter.ask("total", timeout=30) == 3
    assert counter.is_alive()


def test_a_proxy_calls_a_method_and_reads_an_attribute_of_an_actor_on_ray(
        counter: ActorRef[Any]) -> None:
    proxy = counter.proxy()
    assert proxy.add(2).get(timeout=30) == 2
    assert proxy.total.get(timeout=30) == 2


def test_a_future_inside_a_message_is_answered_through_the_ray_pickler(
        counter: ActorRef[Any]) -> None:
    reply: Future[int] = Future()
    counter.tell(("add-and-answer", 5, reply))
    assert reply.get(timeout=30) == 5


def test_the_actors_exception_reaches_the_asker_with_its_remote_traceback(
        counter: ActorRef[Any]) -> None:
    with pytest.raises(ValueError, match="no") as raised:
        counter.ask({"fail": "no"}, timeout=30)
    assert any("Remote traceback" in note for note in raised.value.__notes__)


def test_stopping_through_the_ref_stops_the_actor_and_ends_its_host(
        counter: ActorRef[Any]) -> None:
    assert counter.stop(timeout=30) is True
    assert counter.actor_stopped.wait(timeout=30)
    assert not counter.is_alive()
    with pytest.raises(ActorDeadError, match="is stopped"):
        counter.tell(1)
