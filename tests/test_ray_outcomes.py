"""What an ask's answer becomes on its way back over Ray (``runtime.raybackend.outcomes``)."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from runtime.errors import RemoteError, SerializationError
from runtime.future import Future
from runtime.raybackend.outcomes import outcome, settle


class Unrebuildable(Exception):
    """Pickles, but its constructor needs two arguments the pickle does not keep."""

    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a}/{b}")


def _settled(data: bytes) -> Future[Any]:
    future: Future[Any] = Future()
    settle(future, data)
    return future


def test_a_value_comes_back_as_it_was() -> None:
    assert _settled(outcome(True, {"total": 3})).get(timeout=0) == {"total": 3}


def test_an_exception_comes_back_with_its_type_and_the_remote_traceback() -> None:
    try:
        raise KeyError("missing")
    except KeyError as exc:
        data = outcome(False, exc)

    with pytest.raises(KeyError, match="missing") as raised:
        _settled(data).get(timeout=0)
    assert any("Remote traceback" in note for note in raised.value.__notes__)


def test_an_exception_that_cannot_be_rebuilt_comes_back_as_a_remote_error() -> None:
    with pytest.raises(RemoteError, match="Unrebuildable") as raised:
        _settled(outcome(False, Unrebuildable("x", "y"))).get(timeout=0)
    assert raised.value.type_name.endswith("Unrebuildable")


def test_a_value_that_cannot_be_pickled_comes_back_as_a_serialization_error() -> None:
    with socket.socket() as sock, pytest.raises(SerializationError, match="plain data"):
        _settled(outcome(True, sock)).get(timeout=0)


def test_a_future_answered_already_keeps_its_first_answer() -> None:
    future: Future[Any] = Future()
    settle(future, outcome(True, 1))
    settle(future, outcome(True, 2))

    assert future.get(timeout=0) == 1


def test_an_unpicklable_lock_in_an_exception_does_not_lose_the_answer() -> None:
    error = RuntimeError("held")
    error.lock = threading.Lock()  # type: ignore[attr-defined]

    with pytest.raises(RemoteError, match="held"):
        _settled(outcome(False, error)).get(timeout=0)
