"""cloudpickle's private internals, in one place (checked against cloudpickle 3.0 and 3.1.3).

* ``cloudpickle.cloudpickle._should_pickle_by_reference(obj, name=None) -> bool``:
  cloudpickle's own answer to "does this class or function travel by reference
  (an importable name) or by value?". The runtime's pickler
  (``runtime.serialization.Pickler``) keeps the C pickler for everything that
  travels by reference and hands cloudpickle only the rest; to agree with
  cloudpickle on every object it asks cloudpickle's own test.
* ``cloudpickle.cloudpickle._DYNAMIC_CLASS_TRACKER_LOCK`` (a ``threading.Lock``):
  the lock cloudpickle takes while pickling a class by value. The fork snapshot
  (``actors.refs``) holds it across ``fork()`` so the child never inherits it
  taken by another thread.

``tests/test_compat_cloudpickle.py`` fails when either changes shape; the
dependency's upper bound in ``pyproject.toml`` makes a new major version a
decision rather than a surprise.

    should_pickle_by_reference(json.dumps)        # True: importable by name
    with dynamic_class_tracker_lock: os.fork()
"""

from __future__ import annotations

from typing import Any

from cloudpickle import cloudpickle as _cloudpickle


def should_pickle_by_reference(obj: Any) -> bool:
    """Whether cloudpickle pickles the class or function ``obj`` by its importable name."""
    answer: bool = _cloudpickle._should_pickle_by_reference(obj)
    return answer


dynamic_class_tracker_lock: Any = _cloudpickle._DYNAMIC_CLASS_TRACKER_LOCK
"""The lock cloudpickle holds while it pickles a class by value (hold it across a fork)."""

__all__ = ["dynamic_class_tracker_lock", "should_pickle_by_reference"]
