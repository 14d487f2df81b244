"""What the coordinator was waiting for when an answer comes back.

The coordinator never waits on the checkpoint actor: each request carries a
reply handle (``AnswerTo`` or ``Forward``) naming its continuation, and the
answer comes back as ``Answered``/``Durable`` with that record, which the
coordinator routes on by type:

    checkpoint.tell(ClaimExecution(eid, AnswerTo(coordinator, Claimed(eid))))
    # ... later: Answered(what=(Claimed(eid),), value=claim)
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.records._status import ExecutionStatus


@dataclass(frozen=True, slots=True)
class Created:
    """``CreateExecution`` of ``execution_id`` answered: created, or what is stored."""

    execution_id: str


@dataclass(frozen=True, slots=True)
class Claimed:
    """``ClaimExecution`` of ``execution_id`` answered: a lease, or who holds it."""

    execution_id: str


@dataclass(frozen=True, slots=True)
class Renewed:
    """A lease round (``RenewLeases``) answered."""


@dataclass(frozen=True, slots=True)
class CancelWritten:
    """The CANCELLED status of an execution this system runs was written."""

    execution_id: str


@dataclass(frozen=True, slots=True)
class CancelledInStore:
    """A cancel of an execution another system runs, for the caller ``request``."""

    request: int


@dataclass(frozen=True, slots=True)
class Reopened:
    """``system.retry``'s reopening answered, for the caller ``request``."""

    request: int


@dataclass(frozen=True, slots=True)
class Deleted:
    """``system.delete`` of ``execution_id`` answered, for the caller ``request``."""

    execution_id: str
    request: int


Answer = Created | Claimed | Renewed | CancelWritten | CancelledInStore | Reopened | Deleted


@dataclass(frozen=True, slots=True)
class ExecutionResultWritten:
    """An execution's result (its top batch, ``key``) is durable: it SUCCEEDED or FAILED.

    ``failed``, not an ``ExecutionStatus``: an enum member costs microseconds to
    pickle and load, and this crosses two processes per execution.
    """

    key: str
    serial: int  # the batch under ``key`` it belongs to (a retry makes a new one)
    failed: bool

    @property
    def status(self) -> ExecutionStatus:
        """SUCCEEDED or FAILED."""
        return ExecutionStatus.FAILED if self.failed else ExecutionStatus.SUCCEEDED


@dataclass(frozen=True, slots=True)
class ChildrenResultWritten:
    """A child batch's result (the parent's ``CHILDREN`` operation) is durable."""

    key: str
    serial: int


ResultWritten = ExecutionResultWritten | ChildrenResultWritten
