"""Shape tests of pykka's private names in ``actors._compat.pykka``: each fails when one
changes (gone, another signature, another behaviour), before a hosted actor would."""

from __future__ import annotations

import gc
import inspect
import queue
import threading
from typing import Any

import pykka
import pykka.messages

from actors._compat import pykka as compat
from runtime.testing import wait_until


def test_the_envelope_is_a_class_taking_a_message_and_a_reply_to() -> None:
    envelope = compat.Envelope("hello", reply_to=None)
    assert (envelope.message, envelope.reply_to) == ("hello", None)
    assert list(inspect.signature(compat.Envelope).parameters) == ["message", "reply_to"]


def test_a_stop_message_is_pykkas_own_stop() -> None:
    assert compat.ActorStop is pykka.messages._ActorStop
    assert compat.is_stop(compat.stop_message())
    assert not compat.is_stop("stop")


class _Recorded(pykka.ThreadingActor):
    """Records what pykka puts in its inbox, through the documented inbox hook."""

    seen: queue.SimpleQueue[Any] = queue.SimpleQueue()

    @staticmethod
    def _create_actor_inbox() -> Any:
        inbox: queue.Queue[Any] = queue.Queue()
        put = inbox.put

        def recording_put(envelope: Any, *args: Any, **kwargs: Any) -> None:
            _Recorded.seen.put(envelope)
            put(envelope, *args, **kwargs)

        inbox.put = recording_put  # type: ignore[method-assign]
        return inbox


def test_actor_ref_stop_puts_the_stop_message_in_an_envelope() -> None:
    ref = _Recorded.start()
    ref.stop(timeout=10)
    envelope = _Recorded.seen.get(timeout=10)
    assert isinstance(envelope, compat.Envelope)
    assert compat.is_stop(envelope.message)


def test_the_implementor_hooks_are_there_with_their_signatures() -> None:
    actor = pykka.ThreadingActor
    assert inspect.signature(actor._create_actor_inbox).parameters == {}
    assert inspect.signature(actor._create_future).parameters == {}
    assert list(inspect.signature(actor._start_actor_loop).parameters) == ["self"]
    assert list(inspect.signature(actor._actor_loop).parameters) == ["self"]
    assert list(inspect.signature(actor.on_failure).parameters) == [
        "self", "exception_type", "exception_value", "traceback"]


class _OwnLoop(pykka.ThreadingActor):
    """Starts pykka's loop through ``run_actor_loop`` on a thread of its own, as the host does."""

    ended = threading.Event()
    stopped_by_hook = threading.Event()

    def _start_actor_loop(self) -> None:
        def run() -> None:
            try:
                compat.run_actor_loop(self)
            finally:
                _OwnLoop.ended.set()

        threading.Thread(target=run, daemon=True).start()

    def on_stop(self) -> None:
        _OwnLoop.stopped_by_hook.set()

    def on_receive(self, message: Any) -> Any:
        return message * 2


def test_start_runs_the_overridden_loop_hook_and_the_loop_serves_until_stopped() -> None:
    ref = _OwnLoop.start()
    assert ref.ask(21, timeout=10) == 42
    ref.stop(timeout=10)
    assert _OwnLoop.stopped_by_hook.wait(10)
    assert _OwnLoop.ended.wait(10)


class _Plain(pykka.ThreadingActor):
    pass


def test_a_local_ref_leads_to_its_actor_object_until_the_actor_is_gone() -> None:
    ref = _Plain.start()
    actor = compat.actor_of(ref)
    assert isinstance(actor, _Plain) and actor.actor_ref is ref
    ref.stop(timeout=10)
    del actor

    def gone() -> bool:
        gc.collect()
        return compat.actor_of(ref) is None

    wait_until(gone, timeout=10)
