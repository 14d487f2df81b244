"""The ``BranchHost`` of one run of one branch on a worker: what its operations send.

A run's checkpoints go to the checkpoint actor (through the worker's outbox, or
its loop's for an async run), stamped with the run's epoch and held by a gate
while they name pending Refs; its suspensions go to the scheduler and park on
the ``Verdict``; its end is written after ``run`` returns and acknowledged as a
continuation; before each operation the worker's fences say whether the run is
still current.

    host = RunHost(worker, spec, epoch, trace)
    outcome = run_branch(spec, log, host)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import pykka

from actors.branches._host import BranchSuspended
from actors.branches._spec import BranchSpec
from actors.checkpointing._gate import CheckpointGate
from actors.checkpointing._outbox import CheckpointOutbox
from actors.clock import Clock
from actors.errors import CheckpointError
from actors.policies import Completion
from actors.protocol._checkpoint import Checkpoint
from actors.protocol._coordinator import StartChildren
from actors.protocol._handles import ReportWhenDurable
from actors.protocol._scheduler import Suspend, SuspensionKey
from actors.records._status import TERMINAL_BRANCH_STATUSES, BranchStatus
from actors.records._updates import BranchUpdate, OperationUpdate, Update
from actors.replies import ActorLike
from actors.scheduling import Resume, Unwind, Verdict
from actors.spans import TraceContext
from actors.spans import current as current_span
from actors.workers._fences import RunFences

# A send that raised one of these never left: its recipient is gone, or its mailbox stayed full.
UNSENT = (pykka.ActorDeadError, pykka.Timeout)


class WorkerServices(Protocol):
    """What a run's host needs of its worker (``WorkerActor`` provides it)."""

    fences: RunFences
    lease_wait: float  # seconds an operation waits for unconfirmed leases
    outbox: CheckpointOutbox
    scheduler_ref: ActorLike
    coordinator_ref: ActorLike
    clock: Clock
    name: str
    serialize: Callable[[object], bytes]
    deserialize: Callable[[bytes], Any]
    future_factory: Callable[[], Any]

    def checkpoint_lost(self) -> None: ...

    def delay_for(self, op: OperationUpdate) -> float: ...

    def count(self, counter: str, amount: int = 1) -> None: ...


class RunHost:
    """The ``BranchHost`` of one run of one branch, on the worker's pool thread."""

    def __init__(self, worker: WorkerServices, spec: BranchSpec, epoch: int,
                 trace: TraceContext | None = None) -> None:
        self._worker = worker
        self._spec = spec
        self.epoch = epoch  # branch contexts stamp their updates with it
        self.trace = trace  # the parent of the run's span (None: the execution is not traced)
        self.worker_id = worker.name
        self._suspensions = 0  # numbers this run's suspensions (SuspensionKey.seq)
        self.final: BranchUpdate | None = None  # the branch's end, written once the run returns
        self._final_trace: TraceContext | None = None
        # Holds checkpoints that name Refs still pending until their blobs are durable.
        self._gate = CheckpointGate(spec.branch_id)
        # Where this run's checkpoints and suspensions go (an async run's: its loop's outbox).
        self.to_checkpoint: Callable[[Any], None] = worker.outbox.send
        self.to_scheduler: Callable[[Any], None] = worker.scheduler_ref.tell

    def ensure_current(self, wait: float | None = None) -> None:
        """Raise ``CheckpointError`` if this run must not start another operation.

        The run was superseded or its execution fenced (see ``actors.workers``), or
        the system's leases stay unconfirmed past ``wait`` (default ``lease_wait``):
        nothing it would do now could be written, and another system may run it.
        """
        spec = self._spec
        reason = self._worker.fences.check(spec.execution_id, spec.branch_id, self.epoch,
                                           self._worker.lease_wait if wait is None else wait)
        if reason is not None:
            raise CheckpointError(
                f"run {self.epoch} of branch {spec.branch_id!r} stops before its next "
                f"operation: {reason}"
            )

    def _stamped(self, update: Update) -> Update:
        """This run's epoch on an update of its own branch: the checkpoint actor fences by it."""
        if (isinstance(update, OperationUpdate | BranchUpdate) and update.epoch is None
                and update.branch_id == self._spec.branch_id):
            return dataclasses.replace(update, epoch=self.epoch)
        return update

    def checkpoint(self, update: Update, *, sync: bool) -> None:
        reply = self.send_checkpoint(update, sync=sync)
        if reply is not None:
            try:
                reply.get()
            except CheckpointError:
                raise
            except Exception as exc:  # the checkpoint actor is gone: nothing was acknowledged
                raise self.not_acknowledged(exc) from exc

    def send_checkpoint(self, update: Update, *, sync: bool) -> Any:
        """Send ``update``; the reply that says it is durable, if ``sync``, else None."""
        worker = self._worker
        update = self._stamped(update)
        if isinstance(update, BranchUpdate) and update.status in TERMINAL_BRANCH_STATUSES:
            # The branch's end: written after the run returns, acknowledged as a continuation
            # (ReportWhenDurable), so this thread does not wait for it.
            self.final = update
            self._final_trace = current_span()
            return None
        if not sync:
            self._send(Checkpoint(self._spec.branch_id, update, trace=current_span()),
                       self.to_checkpoint, "a checkpoint")
            return None
        reply = worker.future_factory()
        self._send(Checkpoint(self._spec.branch_id, update, reply_to=reply, trace=current_span()),
                   self.to_checkpoint, "a checkpoint")
        return reply

    def not_acknowledged(self, exc: Exception) -> CheckpointError:
        if isinstance(exc, pykka.ActorDeadError):
            self._worker.checkpoint_lost()
        return CheckpointError(
            f"checkpoint of branch {self._spec.branch_id!r} was not acknowledged: {exc}", exc
        )

    def send_final(self, reply_to: ReportWhenDurable) -> None:
        assert self.final is not None
        self._send(Checkpoint(self._spec.branch_id, self.final, reply_to=reply_to,
                              trace=self._final_trace), self.to_checkpoint, "its end")

    def _send(self, message: Any, deliver: Callable[[Any], None], what: str) -> None:
        """``deliver`` through the gate; a recipient that is gone or full is a CheckpointError.

        Nothing of an unsent message is durable, so the run must not go on as if it
        were, nor be failed for it: ``run_branch`` lets a ``CheckpointError`` through,
        and the coordinator replays the branch from its log (as after a shutdown).
        """
        try:
            self._gate.send(message, deliver)
        except UNSENT as exc:
            raise CheckpointError(
                f"{what} of branch {self._spec.branch_id!r} was not sent ({type(exc).__name__}: "
                f"{exc}); nothing of it is durable, and the branch is replayed from its log",
                exc,
            ) from exc

    def suspend(self, op: OperationUpdate) -> bytes | None:
        op, verdict = self.send_suspension(op)
        try:
            answer = verdict.get()  # parked: this thread waits for the scheduler
        except Exception as exc:  # the scheduler is gone: nothing says the suspension is durable
            raise self.unanswered(exc) from exc
        return self.take_verdict(op, answer)

    def send_suspension(self, op: OperationUpdate, *,
                        coroutine: bool = False) -> tuple[OperationUpdate, Any]:
        """Send ``op``'s suspension to the scheduler: the stamped op and the verdict's reply."""
        spec, worker = self._spec, self._worker
        op = self._stamped(op)  # type: ignore[assignment]
        key = SuspensionKey(spec.branch_id, self.epoch, self._suspensions)
        self._suspensions += 1
        verdict = worker.future_factory()
        # Through the gate: a suspension is a checkpoint too, and may name a pending Ref.
        self._send(Suspend(key, op, worker.delay_for(op), worker.name, verdict, coroutine,
                           current_span()), self.to_scheduler, "the suspension")
        return op, verdict

    def unanswered(self, exc: Exception) -> CheckpointError:
        return CheckpointError(
            f"the suspension of branch {self._spec.branch_id!r} was not answered: {exc}", exc
        )

    def take_verdict(self, op: OperationUpdate, verdict: Verdict) -> bytes | None:
        """Go on in place (the payload); unwind the run, evicted (the suspension is durable);
        or stop it, aborted (``UNWIND``: nothing of the suspension is durable)."""
        if isinstance(verdict, Resume):
            return verdict.payload
        if isinstance(verdict, Unwind):
            raise CheckpointError(
                f"the suspension of branch {self._spec.branch_id!r} was not made durable (the "
                "checkpoint process restarted, or a newer run took over, while it was parked); "
                "the branch is replayed from its log")
        self._worker.count("branch.evictions")
        raise BranchSuspended(op)

    def start_children(self, parent: OperationUpdate, children: Sequence[BranchSpec], *,
                       max_concurrency: int | None, completion: Completion) -> None:
        self.checkpoint(self.create_children(parent, children), sync=True)
        self.announce_children(parent, children, max_concurrency, completion)

    def create_children(self, parent: OperationUpdate,
                        children: Sequence[BranchSpec]) -> OperationUpdate:
        """Send the children's creation; ``parent``, whose sync checkpoint makes them durable."""
        for child in children:
            self.checkpoint(
                BranchUpdate(child.execution_id, child.branch_id, BranchStatus.PENDING,
                             child.parent_branch_id, child.parent_op_id, child.index,
                             input=self.serialize(child.input), create_only=True),
                sync=False,
            )
        return parent

    def announce_children(self, parent: OperationUpdate, children: Sequence[BranchSpec],
                          max_concurrency: int | None, completion: Completion) -> None:
        """Once the children are durable: have the coordinator schedule them."""
        self._send(StartChildren(parent, tuple(children), max_concurrency, completion,
                                 current_span()),
                   self._worker.coordinator_ref.tell, "the start of its children")

    def now(self) -> float:
        return self._worker.clock.time()

    def serialize(self, obj: object) -> bytes:
        with self._gate.tracking():  # pending Refs inside become tokens the gate patches
            return self._worker.serialize(obj)

    def deserialize(self, data: bytes) -> Any:
        return self._worker.deserialize(data)

