"""pykka's private names this project relies on, in one place.

Checked against pykka 4.5.0 (``pyproject.toml`` bounds it below 4.6);
``tests/test_compat_pykka.py`` fails when one of them changes shape.

* ``pykka._envelope.Envelope(message, reply_to=None)``: the record pykka's inbox
  holds. A hosted actor's inbox carries the sender's trace context and identity
  on a subclass of it (``runtime.processes``), and the checkpoint actor's
  peekable inbox reads messages out of it.
* ``pykka.messages._ActorStop``: the message ``ActorRef.stop()`` puts in an
  inbox. Stops travel between processes as that message, so the receiving
  pykka loop handles them exactly as a local stop.
* ``Actor._start_actor_loop()``, ``Actor._create_actor_inbox()``,
  ``Actor._create_future()``: the hooks pykka documents for implementors of
  actor kinds (``ThreadingActor`` is one). A hosted actor is a subclass made
  once per class that overrides them; ``_start_actor_loop`` runs
  ``Actor._actor_loop`` (the loop itself, as ``ThreadingActor`` does) on a
  thread of ours so the host knows when the loop has handed over its last reply.
* ``ActorRef._actor_weakref``: the actor object behind a local ref, read only by
  the chaos campaign's hang report (``runtime/tools/chaos``) to describe what the
  coordinator holds from outside its thread.
"""

from __future__ import annotations

from typing import Any

import pykka
from pykka._envelope import Envelope
from pykka.messages import _ActorStop

ActorStop = _ActorStop
"""The message ``pykka.ActorRef.stop()`` sends (``pykka.messages._ActorStop``)."""


def stop_message() -> Any:
    """A new stop message, as ``pykka.ActorRef.stop()`` would put in the inbox."""
    return _ActorStop()


def is_stop(message: object) -> bool:
    """Whether ``message`` asks its actor to stop."""
    return isinstance(message, _ActorStop)


def run_actor_loop(actor: pykka.Actor) -> None:
    """Run ``actor``'s message loop on the calling thread until it stops (pykka's own loop)."""
    actor._actor_loop()


def actor_of(ref: pykka.ActorRef[Any]) -> pykka.Actor | None:
    """The actor object behind a ref of this process, or None once it is gone."""
    actor: pykka.Actor | None = ref._actor_weakref()
    return actor


__all__ = ["ActorStop", "Envelope", "actor_of", "is_stop", "run_actor_loop", "stop_message"]
