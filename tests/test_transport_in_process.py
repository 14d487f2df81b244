"""``ActorRef``, ``Future`` and reply handles on the in-process transport: no sockets, no processes.

The transport seam promises the same behaviour whatever carries the bytes; these
tests hold the vocabulary above the seam to it with a transport whose actors
are one handler function (``runtime.transport.InProcessTransport``).
"""

from __future__ import annotations

import pickle
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import pytest
from pykka.messages import ProxyCall

from actors._compat.pykka import is_stop
from runtime import ActorRef, Future
from runtime.errors import ActorDeadError, RemoteError, SerializationError
from runtime.remote._introspection import Exposed
from runtime.transport import ActorAddress, InProcessReply, InProcessTransport, transport_for


class Unrebuildable(Exception):
    """Pickles, but cannot be built again from its pickle (it needs two arguments)."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}/{b}")


class Actors:
    """The handler: what the actors behind the refs do with each message."""

    def __init__(self) -> None:
        self.kept: list[Any] = []  # reply handles the actor answers later

    def __call__(self, to: ActorAddress, message: Any) -> Any:
        if is_stop(message):
            return None
        if isinstance(message, ProxyCall):
            return ("called", message.attr_path, message.args)
        if isinstance(message, tuple) and message[0] == "reply-to":
            handle = message[1]
            if message[2] == "later":
                self.kept.append(handle)
            else:
                handle.set(message[2])
            return None
        if message == "fail":
            raise KeyError("no such thing")
        if message == "fail oddly":
            raise Unrebuildable(1, 2)
        return (to.actor_id, message)


@pytest.fixture
def actors() -> Actors:
    return Actors()


@pytest.fixture
def transport(actors: Actors) -> Iterator[InProcessTransport]:
    def introspect(to: ActorAddress) -> dict[tuple[str, ...], Exposed]:
        return {("add",): Exposed(callable=True, traversable=False)}

    with InProcessTransport(actors, introspect=introspect) as found:
        yield found


def ref_on(transport: InProcessTransport, actor_id: str = "a1") -> ActorRef[Any]:
    return ActorRef(system_id=transport.system_id, address="in-process", actor_id=actor_id,
                    name="counter", class_name="Counter")


def test_a_ref_finds_its_transport_by_its_system(transport: InProcessTransport) -> None:
    assert transport_for(transport.system_id) is transport


def test_an_ask_returns_what_the_actor_answers(transport: InProcessTransport) -> None:
    assert ref_on(transport).ask("count", timeout=1) == ("a1", "count")


def test_an_ask_without_blocking_returns_a_future_of_the_answer(
        transport: InProcessTransport) -> None:
    future = ref_on(transport).ask("count", block=False)
    assert isinstance(future, Future)
    assert future.get(timeout=1) == ("a1", "count")


def test_a_tell_delivers_a_copy_of_the_message(transport: InProcessTransport) -> None:
    message = {"add": [1, 2]}
    ref_on(transport).tell(message)
    [(to, delivered)] = transport.sent
    assert to == ref_on(transport).to
    assert delivered == message and delivered is not message


def test_an_exception_the_actor_raises_reaches_the_asker_with_the_remote_traceback(
        transport: InProcessTransport) -> None:
    with pytest.raises(KeyError) as raised:
        ref_on(transport).ask("fail", timeout=1)
    assert any("Remote traceback" in note for note in raised.value.__notes__)


def test_an_exception_that_cannot_be_rebuilt_reaches_the_asker_as_a_remote_error(
        transport: InProcessTransport) -> None:
    with pytest.raises(RemoteError, match="Unrebuildable"):
        ref_on(transport).ask("fail oddly", timeout=1)


def test_an_unpicklable_message_fails_at_the_sender_naming_the_culprit_and_is_not_sent(
        transport: InProcessTransport) -> None:
    with pytest.raises(SerializationError, match=r"message\['lock'\] is a _thread.lock"):
        ref_on(transport).tell({"lock": threading.Lock()})
    assert transport.sent == []


def test_a_future_inside_a_message_arrives_as_a_reply_handle_that_answers_it(
        transport: InProcessTransport) -> None:
    reply: Future[str] = Future()
    ref_on(transport).tell(("reply-to", reply, "done"))
    [(_, delivered)] = transport.sent
    assert isinstance(delivered[1], InProcessReply)
    assert reply.get(timeout=1) == "done"


def test_a_reply_handle_answered_later_from_another_thread_wakes_the_waiter(
        transport: InProcessTransport, actors: Actors) -> None:
    reply: Future[str] = Future()
    ref_on(transport).tell(("reply-to", reply, "later"))
    assert not reply.done()
    threading.Timer(0.05, lambda: actors.kept[0].set("at last")).start()
    assert reply.get(timeout=10) == "at last"


def test_a_reply_handle_answered_twice_raises_queue_full(
        transport: InProcessTransport, actors: Actors) -> None:
    reply: Future[str] = Future()
    ref_on(transport).tell(("reply-to", reply, "later"))
    handle = actors.kept[0]
    handle.set("first")
    with pytest.raises(queue.Full):
        handle.set("second")
    assert reply.get(timeout=1) == "first"


def test_a_future_is_registered_only_when_its_message_is_sent(
        transport: InProcessTransport) -> None:
    reply: Future[str] = Future()
    with pytest.raises(SerializationError):
        ref_on(transport).tell(("reply-to", reply, threading.Lock()))
    assert transport._pending == {}  # the message never left: nothing waits for an answer


def test_a_future_pickled_outside_any_transport_says_to_send_its_value() -> None:
    with pytest.raises(SerializationError, match="send its value instead"):
        pickle.dumps(Future())


def test_closing_the_transport_fails_the_futures_still_waiting(actors: Actors) -> None:
    transport = InProcessTransport(actors).__enter__()
    reply: Future[str] = Future()
    ref_on(transport).tell(("reply-to", reply, "later"))
    transport.close()
    with pytest.raises(ActorDeadError, match="shut down"):
        reply.get(timeout=1)


def test_a_ref_of_a_system_with_no_transport_here_is_not_found() -> None:
    ref = ActorRef(system_id="no-such-system", address="x", actor_id="a", name="gone",
                   class_name="Gone")
    with pytest.raises(ActorDeadError, match="not found"):
        ref.tell("hello")
    with pytest.raises(ActorDeadError):
        ref.ask("hello", block=False).get(timeout=1)


def test_a_stopped_actor_refuses_later_messages_and_its_stopped_flag_is_set(
        transport: InProcessTransport) -> None:
    ref = ref_on(transport)
    assert ref.is_alive()
    assert ref.stop(timeout=1) is True
    assert ref.actor_stopped.wait(timeout=1)
    with pytest.raises(ActorDeadError, match="is stopped"):
        ref.tell("late")


def test_a_proxy_call_travels_as_an_ask(transport: InProcessTransport) -> None:
    assert ref_on(transport).proxy().add(2).get(timeout=1) == ("called", ("add",), (2,))


class _ReadsItsOwnReply:
    """A waiting strategy that answers the future on the waiting thread (as a Ray get would)."""

    def __init__(self, future: Future[Any], value: Any) -> None:
        self.future, self.value, self.waits = future, value, 0

    def wait(self, done: Callable[[], bool], timeout: float | None) -> bool:
        self.waits += 1
        self.future.set(self.value)
        return True

    def waiting(self) -> AbstractContextManager[None]:
        return nullcontext()


def test_a_future_waits_the_way_its_transport_says() -> None:
    future: Future[int] = Future()
    strategy = _ReadsItsOwnReply(future, 42)
    future.wait_through(strategy)
    assert future.get(timeout=1) == 42
    assert strategy.waits == 1
