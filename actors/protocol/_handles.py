"""Reply handles with behaviour: continuations that turn an answer into a message.

A handle is a ``ReplyTo`` (``actors.replies``) that, once answered, tells an
actor what happened, so that no thread waits for the answer. A handle with a
``reply_group`` is answered with its group's others in one message by
``set_group``; whoever answers them (the checkpoint actor's ``CheckpointBatcher``)
hands it at most ``BatchingPolicy.bundle_limit`` at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from actors.branches._spec import BranchSpec
from actors.bundles import bundle
from actors.protocol._coordinator import Answered, BranchAborted, BranchRan, Durable
from actors.protocol._worker import RunBranch
from actors.replies import ActorLike, exception_of
from actors.spans import TraceContext


class LogDelivery:
    """A reply handle that hands a fetched log straight to a worker as ``RunBranch``.

    The coordinator resumes a branch by sending its empty checkpoint with this as
    ``reply_to``: no thread waits for the log, so a whole wave of resumes is in
    flight at once and the checkpoint actor answers it with one store call.
    """

    __slots__ = ("coordinator", "epoch", "spec", "trace", "worker")

    def __init__(self, worker: ActorLike, coordinator: ActorLike, spec: BranchSpec,
                 epoch: int, trace: TraceContext | None = None) -> None:
        self.worker = worker
        self.coordinator = coordinator
        self.spec = spec
        self.epoch = epoch
        self.trace = trace  # the parent of the run's span

    def __reduce__(self) -> tuple[Any, ...]:
        return (LogDelivery, (self.worker, self.coordinator, self.spec, self.epoch, self.trace))

    @property
    def reply_group(self) -> Any:
        return self.worker

    def set(self, value: Any = None) -> None:
        self.set_group([(self, value)])

    @staticmethod
    def set_group(answers: Sequence[tuple[LogDelivery, Any]]) -> None:
        """Hand every log of ``answers`` (one worker's, one bundle's worth) in one message."""
        answers[0][0].worker.tell(bundle(
            [RunBranch(d.spec, d.epoch, log, d.trace) for d, log in answers]))

    def set_exception(self, exc_info: Any = None) -> None:
        error = exception_of(exc_info)
        self.coordinator.tell(BranchAborted(self.spec.branch_id, self.epoch, error))


class Forward:
    """A reply handle: tells ``target`` ``Durable(what)`` once the checkpoint is acknowledged."""

    __slots__ = ("target", "what")

    def __init__(self, target: ActorLike, *what: Any) -> None:
        self.target = target
        self.what = what

    def __reduce__(self) -> tuple[Any, ...]:
        return (Forward, (self.target, *self.what))

    def set(self, value: Any = None) -> None:
        self.target.tell(Durable(self.what))

    def set_exception(self, exc_info: Any = None) -> None:
        self.target.tell(Durable(self.what, exception_of(exc_info)))


class ReportWhenDurable:
    """A reply handle: once a branch's final status is durable, tell the coordinator how it ran.

    The worker's thread does not wait for that acknowledgement: it goes back to
    the pool, and the report follows as a continuation (or ``BranchAborted``).
    """

    __slots__ = ("coordinator", "report")

    def __init__(self, coordinator: ActorLike, report: BranchRan) -> None:
        self.coordinator = coordinator
        self.report = report

    def __reduce__(self) -> tuple[Any, ...]:
        return (ReportWhenDurable, (self.coordinator, self.report))

    @property
    def reply_group(self) -> Any:
        return self.coordinator

    def set(self, value: Any = None) -> None:
        self.set_group([(self, value)])

    @staticmethod
    def set_group(answers: Sequence[tuple[ReportWhenDurable, Any]]) -> None:
        """Tell the coordinator of ``answers`` (one bundle's worth) every report in one message."""
        answers[0][0].coordinator.tell(bundle([handle.report for handle, _ in answers]))

    def set_exception(self, exc_info: Any = None) -> None:
        self.coordinator.tell(BranchAborted(self.report.branch_id, self.report.epoch,
                                            exception_of(exc_info)))


class AnswerTo:
    """A reply handle: tells ``target`` ``Answered(what, value)`` (or the error) when answered.

        checkpoint.tell(ClaimExecution("nightly-1", AnswerTo(coordinator, "claimed", "nightly-1")))
    """

    __slots__ = ("target", "what")

    def __init__(self, target: ActorLike, *what: Any) -> None:
        self.target = target
        self.what = what

    def __reduce__(self) -> tuple[Any, ...]:
        return (AnswerTo, (self.target, *self.what))

    def set(self, value: Any = None) -> None:
        self.target.tell(Answered(self.what, value))

    def set_exception(self, exc_info: Any = None) -> None:
        self.target.tell(Answered(self.what, None, exception_of(exc_info)))
