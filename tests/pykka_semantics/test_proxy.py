"""``ActorProxy``: pykka's proxy rules, for an actor in another process."""

from __future__ import annotations

import pickle

import pykka
import pytest

from runtime import ActorSystem
from runtime.testing import TraceEvents

from .semantics_actors import (
    Counter,
    ExposesItsOwnProxy,
    Introspected,
    Plain,
    SelfScheduling,
)


def test_proxy_is_a_pykka_actor_proxy(system: ActorSystem) -> None:
    proxy = system.spawn(Counter, name="counter").proxy()
    assert isinstance(proxy, pykka.ActorProxy)
    assert isinstance(proxy.add, pykka.CallableProxy)


def test_two_proxies_of_one_actor_are_equal_and_hash_alike(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter")
    first, second = ref.proxy(), ref.proxy()
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1


def test_proxies_of_two_actors_differ(system: ActorSystem) -> None:
    first = system.spawn(Counter, name="first").proxy()
    second = system.spawn(Counter, name="second").proxy()
    assert first != second


def test_nested_proxy_differs_from_its_parent(system: ActorSystem) -> None:
    proxy = system.spawn(Introspected, name="introspected").proxy()
    assert proxy.gauge != proxy
    assert proxy.gauge == proxy.gauge


def test_dir_of_a_proxy_lists_the_actor_attributes_and_the_proxy_own(
    system: ActorSystem,
) -> None:
    names = dir(system.spawn(Counter, name="counter").proxy())
    assert {"add", "count", "pid"} <= set(names)  # the actor's
    assert {"actor_ref", "__class__"} <= set(names)  # the proxy's own


def test_attribute_added_after_the_proxy_was_made_is_found(system: ActorSystem) -> None:
    proxy = system.spawn(Introspected, name="introspected").proxy()
    proxy.grow().get(timeout=10)
    assert proxy.added_later.get(timeout=10) == "new"


def test_unknown_attribute_error_names_the_proxy_as_pykka_does(system: ActorSystem) -> None:
    proxy = system.spawn(Counter, name="counter").proxy()
    with pytest.raises(AttributeError) as caught:
        proxy.no_such_thing
    assert str(caught.value).startswith(f"{proxy} has no attribute 'no_such_thing'")
    assert "Counter has no public attribute" in str(caught.value)


def test_making_a_proxy_runs_no_property_getter(system: ActorSystem) -> None:
    ref = system.spawn(Introspected, name="introspected")
    ref.proxy()
    ref.proxy()
    assert ref.ask("getter calls", timeout=10) == 0


def test_reading_a_property_through_the_proxy_runs_its_getter_once(
    system: ActorSystem,
) -> None:
    ref = system.spawn(Introspected, name="introspected")
    assert ref.proxy().expensive.get(timeout=10) == 42
    assert ref.ask("getter calls", timeout=10) == 1


def test_property_returning_a_traversable_object_is_read_as_a_value(
    system: ActorSystem,
) -> None:
    proxy = system.spawn(Introspected, name="introspected").proxy()
    wrapped = proxy.wrapped
    assert not isinstance(wrapped, pykka.ActorProxy)
    value = wrapped.get(timeout=10)
    assert isinstance(value, Plain) and value.label == "from a property"


def test_traversable_attribute_is_a_nested_proxy(system: ActorSystem) -> None:
    proxy = system.spawn(Introspected, name="introspected").proxy()
    assert isinstance(proxy.gauge, pykka.ActorProxy)
    assert proxy.gauge.read().get(timeout=10) == 3
    assert proxy.gauge.level.get(timeout=10) == 3


def test_object_answering_every_attribute_is_not_taken_for_traversable(
    system: ActorSystem,
) -> None:
    proxy = system.spawn(Introspected, name="introspected").proxy()
    assert not isinstance(proxy.mock, pykka.ActorProxy)  # a MagicMock: callable, no more
    assert isinstance(proxy.mock, pykka.CallableProxy)


def test_a_public_proxy_to_the_actor_itself_is_not_exposed(system: ActorSystem) -> None:
    proxy = system.spawn(ExposesItsOwnProxy, name="exposes").proxy()
    with pytest.raises(AttributeError):
        proxy.myself
    assert "myself" not in dir(proxy)
    assert proxy.value.get(timeout=10) == 7


def test_a_public_proxy_to_the_actor_itself_is_reported_in_the_trace(
    system: ActorSystem, trace_events: TraceEvents,
) -> None:
    system.spawn(ExposesItsOwnProxy, name="exposes").proxy()
    event = trace_events.wait_for("proxy.self_reference_skipped", timeout=10)
    assert event["attribute"] == "myself" and "_myself" in event["hint"]


def test_a_proxy_to_itself_kept_private_still_works_inside_the_actor(
    system: ActorSystem,
) -> None:
    proxy = system.spawn(SelfScheduling, name="scheduling").proxy()
    assert proxy.start_adding(5).get(timeout=10).get(timeout=10) == 5


def test_proxy_pickles_and_works_after_the_trip(system: ActorSystem) -> None:
    proxy = system.spawn(Counter, name="counter").proxy()
    copy = pickle.loads(pickle.dumps(proxy))
    assert copy == proxy
    assert copy.add(3).get(timeout=10) == 3
