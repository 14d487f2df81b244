"""Typed errors of the runtime; each says what happened and what to do."""

from __future__ import annotations

import pykka

from actors.errors import (
    CheckpointError,
    DurableActorsError,
    SerializationError,
    StepTimeoutError,
)


class ActorDeadError(DurableActorsError, pykka.ActorDeadError):
    """The actor is stopped, crashed, or its process is gone.

    Also a ``pykka.ActorDeadError``, so code written for pykka catches it unchanged.
    """


class Timeout(DurableActorsError, pykka.Timeout):
    """A blocking call did not complete in time (also a ``pykka.Timeout``)."""


class MailboxFullError(Timeout):
    """The receiver did not take messages fast enough and the send timed out.

    Raised at the sender after ``SystemConfig.send_timeout`` seconds of waiting for
    room in the receiver's mailbox window: slow the producer or speed up the actor.
    """


class RemoteError(DurableActorsError):
    """An actor raised an exception that could not be pickled back to the caller.

    ``type_name`` is the qualified name of the original exception type and
    ``remote_traceback`` its traceback as text.
    """

    def __init__(self, type_name: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.remote_traceback = remote_traceback

    def __reduce__(self) -> tuple[object, ...]:
        text = str(self).split(": ", 1)[-1]
        return (type(self), (self.type_name, text, self.remote_traceback))


class ConfigurationError(DurableActorsError, ValueError):
    """A ``SystemConfig`` value or an ``ActorSystem`` argument is wrong."""


class ProcessFaultError(DurableActorsError):
    """A framework process of the system could not be kept alive.

    ``process`` names it ("checkpoint", "scheduler", "worker-0"...); the message
    says how it kept ending (e.g. "crashed 11 times in 60 s: last exit SIGBUS
    before it was ready"). The system keeps trying to restart it; executions
    stay resumable and go on once it stays up.
    """

    def __init__(self, process: str, message: str) -> None:
        super().__init__(message)
        self.process = process

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.process, str(self)))


class SpawnError(DurableActorsError):
    """An actor's process could not be started or did not report ready in time."""


__all__ = [
    "ActorDeadError",
    "CheckpointError",
    "ConfigurationError",
    "DurableActorsError",
    "MailboxFullError",
    "ProcessFaultError",
    "RemoteError",
    "SerializationError",
    "SpawnError",
    "StepTimeoutError",
    "Timeout",
]
