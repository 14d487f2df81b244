"""cloudpickle's private internals we rely on keep their shape (``actors._compat.cloudpickle``)."""

from __future__ import annotations

import inspect
import json
import threading

from cloudpickle import cloudpickle as cp

from actors._compat import cloudpickle as compat


def test_should_pickle_by_reference_still_takes_an_object_and_an_optional_name() -> None:
    params = list(inspect.signature(cp._should_pickle_by_reference).parameters.values())
    assert [p.name for p in params[:2]] == ["obj", "name"]
    assert params[1].default is None


def test_should_pickle_by_reference_tells_importable_names_from_local_definitions() -> None:
    def local() -> None:
        pass

    assert compat.should_pickle_by_reference(json.dumps) is True
    assert compat.should_pickle_by_reference(local) is False
    assert compat.should_pickle_by_reference(lambda: None) is False


def test_the_dynamic_class_tracker_lock_is_still_a_plain_lock() -> None:
    assert isinstance(cp._DYNAMIC_CLASS_TRACKER_LOCK, type(threading.Lock()))
    assert compat.dynamic_class_tracker_lock is cp._DYNAMIC_CLASS_TRACKER_LOCK
