"""A suspension as the scheduler tracks it: its state, where it is parked, its span.

    DEFERRED --delay ends--> APPLYING --written--> EVICTED --resumed--> RESUMED
        \\--resumed in place (nothing written, or not waited for)--> RESUMED
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from actors import spans
from actors.protocol._scheduler import Suspend, SuspensionKey
from actors.records._status import OpKind


class SuspensionState(Enum):
    """Where a suspension is on its way from parked to resumed."""

    DEFERRED = "deferred"  # parked; its checkpoint waits for the delay
    APPLYING = "applying"  # parked; its checkpoint is being written
    EVICTED = "evicted"  # durable; its run unwound; a replay resumes it
    RESUMED = "resumed"  # over: resumed in place or by a replay, or released


class ParkSite(NamedTuple):
    """Where a branch is parked: a worker, on a thread or as a coroutine (bounded apart)."""

    worker_id: str
    coroutine: bool


_NOWHERE = ParkSite("", False)  # a branch evicted before this scheduler started


@dataclass(eq=False)
class Suspension:
    """One branch's current suspension, as the scheduler tracks it."""

    key: SuspensionKey
    op_id: str
    state: SuspensionState
    suspend: Suspend | None = None  # None for a branch evicted before this scheduler started
    parked_on: ParkSite = _NOWHERE  # where it is parked, while it is
    span: spans.Span | None = None  # from the suspension to its resume, when traced

    @property
    def parked(self) -> bool:
        """Whether its run still waits on a worker for the verdict."""
        return self.state in (SuspensionState.DEFERRED, SuspensionState.APPLYING)


# A suspension's span is named for what it waits on: "wait cool", "retry fetch", ...
_SPAN_KINDS = {OpKind.WAIT: "wait", OpKind.STEP: "retry", OpKind.CONDITION: "condition",
               OpKind.CHILDREN: "children", OpKind.CALLBACK: "callback"}


def suspension_span(message: Suspend) -> spans.Span | None:
    """The span of a suspension, from its start to its resume; None when not traced."""
    if message.trace is None:
        return None
    op, kind = message.op, _SPAN_KINDS.get(message.op.kind, message.op.kind.value.lower())
    attributes: spans.Attributes = {
        "durable.execution.id": op.execution_id,
        "durable.branch.id": op.branch_id,
        "durable.operation.id": op.op_id,
        "durable.operation.name": op.name,
        "durable.suspension.kind": kind,
        "durable.run.epoch": message.key.epoch,
        "durable.suspension.delay_s": message.delay,
        "durable.suspension.applied": False,
    }
    if op.due_at is not None:
        attributes["durable.suspension.due_at"] = op.due_at
    return spans.start(f"{kind} {op.name}", message.trace, attributes)


def span_ended(suspension: Suspension, outcome: str) -> None:
    """How the suspension ended: resumed in place, resumed by a replay, or released."""
    span, suspension.span = suspension.span, None
    if span is not None:
        span.attributes["durable.suspension.outcome"] = outcome
        spans.finish(span)

