"""What a caller hands the system is checked where it enters, before any actor sees it.

A framework actor that received an item it cannot pickle would die of it (the
coordinator did: every later call on the system then raised ``ActorDeadError``),
and a store URL or a timeout that makes no sense would fail far from the call
that gave it. So ``ActorSystem`` checks them at the call, and the caller gets a
typed error that says what is wrong and what to do:

    system.map(Resize, [1, 2, threading.Lock()])
    # SerializationError: item 2 of map(Resize) could not be pickled: item is a
    # _thread.lock (cannot pickle '_thread.lock' object); pass plain data ...
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from actors.branch import BranchSpec
from actors.policies import Completion
from runtime import serialization
from runtime.config import RestartPolicy
from runtime.errors import ConfigurationError, SerializationError

_ITEM_ADVICE = "pass plain data (or a Ref from ctx.save), or give the object a __reduce__"
_CLASS_ADVICE = ("define the branch class at module level, or create what it needs inside "
                 "run() instead of capturing it")


def check_store(store: object) -> str | None:
    """``store`` if it can name a store (``None``: the default), else ``ConfigurationError``.

    The scheme and the file are checked when the store is opened.
    """
    if store is None:
        return None
    if not isinstance(store, str):
        raise ConfigurationError(
            f"store must be a URL string such as 'sqlite:///state.db', got "
            f"{type(store).__name__} {store!r}"
        )
    if "\x00" in store:
        raise ConfigurationError(f"store URL {store!r} holds a NUL byte; no file can be named so")
    if not store.strip():
        raise ConfigurationError("store URL is blank; give a URL such as 'sqlite:///state.db', "
                                 "or None for ./.durable/durable.db")
    return store


def check_branches(kind: str, specs: Sequence[BranchSpec]) -> None:
    """Raise ``SerializationError`` for the first branch class or item that cannot be pickled.

    Everything is pickled once into nothing (no bytes kept); only when that fails
    are the parts pickled one by one, to name the culprit.
    """
    classes = list(dict.fromkeys(spec.branch_cls for spec in specs))
    call = _call(kind, classes)
    for cls in classes:
        try:
            serialization.check_picklable(cls)
        except Exception as exc:
            raise serialization.unpicklable_error(
                cls, f"branch class {cls.__qualname__} of {call}", exc, cls.__qualname__,
                _CLASS_ADVICE) from exc
    try:
        serialization.check_picklable([spec.input for spec in specs])
    except Exception as whole:
        for spec in specs:
            try:
                serialization.check_picklable(spec.input)
            except Exception as exc:
                raise serialization.unpicklable_error(
                    spec.input, f"item {spec.index} of {call}", exc, "item", _ITEM_ADVICE,
                ) from exc
        raise SerializationError(  # each alone pickles: too deep or too big together
            f"the items of {call} could not be pickled together ({whole!r}); pass fewer or "
            "flatter items") from whole


def check_concurrency(max_concurrency: object) -> None:
    """``max_concurrency`` is None (no limit) or an int >= 1, else ``ConfigurationError``."""
    if max_concurrency is None:
        return
    if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or (
            max_concurrency < 1):
        raise ConfigurationError(
            f"max_concurrency must be an int >= 1 or None (no limit), got {max_concurrency!r}"
        )


def check_completion(completion: object) -> None:
    """``completion`` is None (fail-fast) or a ``Completion``, else ``ConfigurationError``."""
    if completion is not None and not isinstance(completion, Completion):
        raise ConfigurationError(
            f"completion must be a Completion, such as Completion.all_completed(), got "
            f"{completion!r}"
        )


def check_actor_options(name: object, restart: object) -> None:
    """``spawn``'s ``name`` (None, or printable text) and ``restart`` (None, or a policy)."""
    if name is not None and (not isinstance(name, str) or not name.strip()
                             or not name.isprintable()):
        raise ConfigurationError(
            f"an actor's name must be printable, non-blank text (or None), got {name!r}")
    if restart is not None and not isinstance(restart, RestartPolicy):
        raise ConfigurationError(
            f"restart must be a RestartPolicy, such as RestartPolicy(max_restarts=3), got "
            f"{restart!r}")


def _call(kind: str, classes: Sequence[type]) -> str:
    names = ", ".join(cls.__qualname__ for cls in classes[:3])
    return f"{kind}({names}{', ...' if len(classes) > 3 else ''})"


def check_timeout(timeout: Any, what: str) -> float | None:
    """A blocking call's ``timeout``: None or ``inf`` wait forever; else seconds >= 0.

        check_timeout(float("nan"), "result()")   # ValueError that says what to give
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise ValueError(f"{what} timeout must be a number of seconds or None, got {timeout!r}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(
            f"{what} timeout={timeout!r}: give seconds >= 0, or None to wait without limit"
        )
    return None if math.isinf(timeout) else float(timeout)


__all__ = ["check_actor_options", "check_branches", "check_completion", "check_concurrency",
           "check_store", "check_timeout"]
