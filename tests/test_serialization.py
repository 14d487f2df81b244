"""What travels by reference and what by value across the process boundary (pure logic)."""

from __future__ import annotations

import pickle
from typing import Any

from runtime import serialization

from actors_for_tests import Counter


def _by_value(obj: Any) -> bool:
    """True when ``obj``'s pickle carries its code (cloudpickle), not an import path."""
    return b"cloudpickle" in serialization.dumps(obj)


def test_an_importable_class_travels_by_reference_every_time() -> None:
    first, second = serialization.dumps(Counter), serialization.dumps(Counter)
    assert first == second == pickle.dumps(Counter, protocol=5)
    assert Counter in serialization._known_by_reference


def test_a_closure_travels_by_value_every_time_not_only_the_first() -> None:
    def make(n: int) -> Any:
        return lambda: n

    for n in (1, 2, 3):
        fn = make(n)
        assert _by_value(fn)
        assert serialization.loads(serialization.dumps(fn))() == n
    assert not any(getattr(o, "__name__", "") == "<lambda>"
                   for o in serialization._known_by_reference)


def test_a_class_made_in_a_function_travels_by_value() -> None:
    def make() -> type:
        class Local:
            value = 7
        return Local

    cls = make()
    assert _by_value(cls)
    assert serialization.loads(serialization.dumps(cls)).value == 7
    assert cls not in serialization._known_by_reference
