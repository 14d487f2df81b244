"""``InOrder``: each sender's messages reach the actor in the order it sent them."""

from __future__ import annotations

from runtime.raybackend.sequencing import InOrder


def test_items_in_order_are_released_at_once() -> None:
    order: InOrder[str] = InOrder()

    assert order.arrived("s", 0, "a") == ["a"]
    assert order.arrived("s", 1, "b") == ["b"]


def test_an_item_that_overtook_an_earlier_one_waits_for_it() -> None:
    order: InOrder[str] = InOrder()

    assert order.arrived("s", 1, "b") == []
    assert order.held("s") == 1
    assert order.arrived("s", 0, "a") == ["a", "b"]
    assert order.held("s") == 0


def test_senders_do_not_wait_for_each_other() -> None:
    order: InOrder[str] = InOrder()

    assert order.arrived("s1", 1, "s1-b") == []
    assert order.arrived("s2", 0, "s2-a") == ["s2-a"]


def test_a_duplicate_is_dropped() -> None:
    order: InOrder[str] = InOrder()
    order.arrived("s", 0, "a")

    assert order.arrived("s", 0, "a again") == []
    assert order.arrived("s", 2, "c") == []
    assert order.arrived("s", 2, "c again") == []
    assert order.arrived("s", 1, "b") == ["b", "c"]


def test_a_restarted_receiver_takes_each_stream_from_where_it_is() -> None:
    order: InOrder[str] = InOrder(resumed=True)

    assert order.arrived("s", 57, "after the crash") == ["after the crash"]
    assert order.arrived("s", 58, "next") == ["next"]
